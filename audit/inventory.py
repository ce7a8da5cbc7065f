"""The compact, source-independent inventory that every source produces.

Sources (manifests, a live cluster, a saved inventory) reduce what they read to these
records; analysis reads nothing else. Records keep only the fields analysis needs so
that a 150k-pod cluster stays small in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.fastinit import fast_init

Labels = tuple[tuple[str, str], ...]
"""Labels as a sorted tuple of (key, value) pairs: hashable and ordered."""

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def freeze_labels(labels: Mapping[str, str] | None) -> Labels:
    """Return labels in their canonical hashable form."""
    return tuple(sorted((labels or {}).items()))


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where an object came from: a file and document (manifests) or the API."""

    file: str | None = None
    document: int | None = None
    line: int | None = None

    def describe(self) -> str:
        if self.file is None:
            return "cluster"
        parts = [self.file]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.document is not None:
            parts.append(f"document {self.document}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ContainerPort:
    """A container port as the API states it; ``name`` is what named policy ports resolve to."""

    port: int
    protocol: str = "TCP"
    name: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Labels
    declared: bool = True
    source: SourceRef = SourceRef()


@fast_init
@dataclass(frozen=True, slots=True)
class Workload:
    """Pods that share an owner and a pod template, counted rather than listed.

    A bare Pod is a workload of kind ``Pod`` with one pod. ``pods`` is the number of pods
    the record stands for (replicas for a template, running pods for a live owner).
    """

    namespace: str
    kind: str
    name: str
    labels: Labels
    ports: tuple[ContainerPort, ...] = ()
    host_network: bool = False
    pods: int = 1
    ips: tuple[str, ...] = ()
    source: SourceRef = SourceRef()
    controller: str | None = None  # "Kind/name" of the pods' own controller where the record names its owner (a ReplicaSet's Deployment)
    service_account: str = "default"
    """The pods' service account (`serviceAccountName`; the API server's default is `default`): some kinds select by it."""
    pod_names: tuple[str, ...] = ()
    """The pods' own names where the input gives them (Pod objects, a StatefulSet's ordinals): `reach ns/db-0`."""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}[{self.kind}]"

    @property
    def pod_ref(self) -> str:
        """The pods' own controller, as connectivity analyzers (np-guard) name live pods:
        `ns/web-5d78c9869d[ReplicaSet]` where reports say `ns/web[Deployment]`."""
        if self.controller is None:
            return self.ref
        kind, name = self.controller.split("/", 1)
        return f"{self.namespace}/{name}[{kind}]"


@fast_init
@dataclass(frozen=True, slots=True)
class PolicyObject:
    """A policy object of any kind (NetworkPolicy, AdminNetworkPolicy, Cilium, Calico, ...) as read,
    not yet parsed: parsing and validation are analysis. ``namespace`` is None for cluster-scoped kinds."""

    kind: str
    api_version: str
    namespace: str | None
    name: str
    spec: Any
    annotations: Labels = ()
    source: SourceRef = SourceRef()
    more: tuple[tuple[str, Any], ...] = ()
    """Other top-level fields some kinds have beside ``spec`` (Cilium's ``specs``)."""

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """(API group, kind, namespace, name): what `kubectl apply` replaces an object by."""
        group = self.api_version.rsplit("/", 1)[0] if "/" in self.api_version else ""
        return group, self.kind, self.namespace or "", self.name

    @property
    def ref(self) -> str:
        """``Kind ns/name`` (``Kind name`` when cluster-scoped)."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

@dataclass(frozen=True, slots=True)
class Container:
    name: str
    image: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    """Only the variables a CNI reads its settings from (``audit.engine.cni.ENV_NAMES``), with a
    literal value: never the rest, which may hold secrets."""


@dataclass(frozen=True, slots=True)
class DaemonSet:
    """A CNI's agent, or a controller it configures itself with (``kind`` Deployment): only what
    CNI detection needs."""

    namespace: str
    name: str
    labels: Labels
    containers: tuple[Container, ...]
    source: SourceRef = SourceRef()
    kind: str = "DaemonSet"


@dataclass(frozen=True, slots=True)
class ConfigObject:
    """An object a CNI reads its settings from (a ConfigMap, the Calico operator's Installation),
    with only the keys that decide what it enforces.

    ``state``: ``found``; ``missing`` (the server answered 404: the CNI runs on its defaults);
    ``unreadable`` (``reason`` says why: whatever it holds is unknown).
    """

    kind: str
    namespace: str | None
    name: str
    data: tuple[tuple[str, str], ...] = ()
    state: str = "found"
    reason: str = ""
    source: SourceRef = SourceRef()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A ServiceAccount's labels: Calico selects pods by them (`pcsa.*`)."""

    namespace: str
    name: str
    labels: Labels = ()
    source: SourceRef = SourceRef()


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of a Service: what clients ask for, and where on the pods it lands."""

    port: int
    target: int | str | None = None  # targetPort: a number or a container port name; None: as port
    name: str | None = None
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    selector: Labels | None  # None: no selector (endpoints kept by hand): not followed
    ports: tuple[ServicePort, ...] = ()
    source: SourceRef = SourceRef()
    labels: Labels = ()
    """The Service's own labels (Cilium's k8sServiceSelector selects Services by them)."""


@dataclass(frozen=True, slots=True)
class Backend:
    """A Service an Ingress or Route sends traffic to, and which of its ports."""

    service: str
    port: int | str | None = None  # a port number or name; None: every port of the service


@dataclass(frozen=True, slots=True)
class IngressRoute:
    """An Ingress or an OpenShift Route: where an ingress controller sends outside traffic."""

    kind: str
    namespace: str
    name: str
    backends: tuple[Backend, ...]
    source: SourceRef = SourceRef()


@dataclass(frozen=True, slots=True)
class CollectionIssue:
    """A resource that could not be read, and why: the report is partial.

    ``invalid``: an object the source holds but that is not valid (a wrong field type, a value the
    API server rejects); it was left out and the rest analysed.
    """

    resource: str
    reason: str
    core: bool = True
    invalid: bool = False


@dataclass(frozen=True)
class Collection:
    """Facts about how the inventory was collected."""

    source: str  # "manifests" | "cluster" | "inventory"
    inputs: tuple[str, ...] = ()
    cluster: str | None = None
    context: str | None = None
    server: str | None = None
    server_version: str | None = None
    started: str | None = None
    finished: str | None = None
    issues: tuple[CollectionIssue, ...] = ()
    notices: tuple[str, ...] = ()
    object_counts: tuple[tuple[str, int], ...] = ()
    skipped_kinds: tuple[tuple[str, int], ...] = ()
    api_requests: int = 0
    input_digests: tuple[tuple[str, str, int], ...] = ()
    """(file, SHA-256, bytes) of every manifest file read."""

    @property
    def complete(self) -> bool:
        return not any(issue.core for issue in self.issues)

    @property
    def invalid_objects(self) -> tuple[CollectionIssue, ...]:
        """The objects left out because they are invalid."""
        return tuple(issue for issue in self.issues if issue.invalid)


@dataclass(frozen=True)
class Inventory:
    """Everything a source read, in compact form."""

    namespaces: tuple[Namespace, ...]
    workloads: tuple[Workload, ...]
    policies: tuple[PolicyObject, ...]
    """Policy objects of every kind."""
    daemonsets: tuple[DaemonSet, ...] = ()
    node_hints: tuple[str, ...] = ()
    collection: Collection = field(default_factory=lambda: Collection(source="manifests"))
    services: tuple[Service, ...] = ()
    ingresses: tuple[IngressRoute, ...] = ()
    service_accounts: tuple[ServiceAccount, ...] = ()
    cni_config: tuple[ConfigObject, ...] = ()
    """What the CNIs read their settings from (``audit.engine.cni``)."""
