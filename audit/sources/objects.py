"""Reduce Kubernetes objects (as plain dicts) to inventory records.

Shared by every source, so that a live cluster, a ``kubectl get -o yaml`` dump and a folder
of templates give the same inventory for the same objects.
"""

from __future__ import annotations

import bisect
import configparser
import operator
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from audit.engine.cni import ENV_NAMES, kept_keys
from audit.engine.kinds import Resource, resource_of
from audit.errors import InputError
from audit.gcpause import gc_paused
from audit.inventory import (
    NAMESPACE_NAME_LABEL,
    Backend,
    Collection,
    CollectionIssue,
    ConfigObject,
    Container,
    ContainerPort,
    DaemonSet,
    IngressRoute,
    Inventory,
    Labels,
    Namespace,
    PolicyObject,
    Service,
    ServiceAccount,
    ServicePort,
    SourceRef,
    Workload,
    freeze_labels,
)
from audit.sources import slim

DEFAULT_NAMESPACE = "default"

# kind -> path to the pod template in its spec, and the field that counts pods.
TEMPLATE_KINDS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "Deployment": (("spec", "template"), "replicas"),
    "StatefulSet": (("spec", "template"), "replicas"),
    "ReplicaSet": (("spec", "template"), "replicas"),
    "ReplicationController": (("spec", "template"), "replicas"),
    "DaemonSet": (("spec", "template"), None),
    "Job": (("spec", "template"), "parallelism"),
    "CronJob": (("spec", "jobTemplate", "spec", "template"), None),
}

CONFIG_KINDS = {("", "ConfigMap"): "ConfigMap", ("operator.tigera.io", "Installation"): "Installation"}
"""Objects CNIs read their settings from: kept only when a CNI reads one of that name (``audit.engine.cni``)."""
CONTROLLER_KINDS = ("Deployment",)
"""Workloads a CNI reads settings from besides its agent (kube-ovn-controller's flags)."""
STATEFULSET_POD_NAME, POD_INDEX = "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index"
MAX_ORDINALS = 1000
"""A StatefulSet template with more replicas stays one record (its pods then answer together)."""

ROUTING_KINDS = {("", "Service"), ("networking.k8s.io", "Ingress"), ("extensions", "Ingress"), ("route.openshift.io", "Route")}

# Node annotation/label prefixes that reveal the CNI when its DaemonSet cannot be read.
NODE_CNI_HINTS = ("flannel.alpha.coreos.com", "projectcalico.org", "io.cilium", "network.cilium.io",
                  "kube-router.io", "node.antrea.io", "k8s.ovn.org")


class ObjectError(InputError):
    """A malformed object; the message names the object and the field."""


def _fail(where: str, field: str, problem: str) -> ObjectError:
    return ObjectError(f"{where}: {field}: {problem}")


def _mapping(value: Any, where: str, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, field, f"must be an object, got {type(value).__name__}")
    return value


_FINISHED = ("Succeeded", "Failed")
"""Pod phases of pods that run nothing any more."""


def _optional_str(value: Any, where: str, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail(where, field, f"must be a string, got {value!r}")
    return value


def _int(value: Any, where: str, field: str, default: int, low: int = -(2**31), high: int = 2**31 - 1) -> int:
    """An int32 as the API's schema has it (replicas, ports), within ``low``..``high``."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, field, f"must be an integer, got {_short(value)}")
    if not low <= value <= high:
        raise _fail(where, field, f"{value} is out of range ({low} to {high})")
    return value


def _bool(value: Any, where: str, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _fail(where, field, f"must be true or false, got {_short(value)} (a quoted \"false\" is a string)")
    return value


def _list(value: Any, where: str, field: str) -> list[Any]:
    # An empty mapping where a list belongs (`ports: {}`, in netpol-analyzer's published pod
    # lists) can only mean "none": read as empty, like an absent field.
    if value is None or (type(value) is dict and not value):
        return []
    if not isinstance(value, list):
        raise _fail(where, field, f"must be a list, got {_short(value)}")
    return value


def _name(name: str) -> str:
    """An object's name as an error message shows it (a hostile one is cut)."""
    return name if len(name) <= 80 else name[:80] + f"... ({len(name)} characters)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def api_group(api_version: str | None) -> str:
    if not api_version or "/" not in api_version:
        return ""
    return api_version.split("/", 1)[0]


def _dig(obj: Mapping[str, Any], path: tuple[str, ...], where: str) -> Any:
    cur: Any = obj
    walked: list[str] = []
    for key in path:
        walked.append(key)
        cur = _mapping(cur, where, ".".join(walked[:-1]) or "object").get(key)
        if cur is None:
            return None
    return cur


_PORTS: dict[tuple[int, str, str | None], ContainerPort] = {}
_PROTOCOLS = ("TCP", "UDP", "SCTP")


def _container_port(number: int, protocol: str, name: str | None) -> ContainerPort:
    """One shared record per distinct port: a cluster has few, repeated across many pods."""
    key = (number, protocol, name)
    port = _PORTS.get(key)
    if port is None:
        port = _PORTS[key] = ContainerPort(number, str(protocol), name)
    return port


def service_account_of(spec: Mapping[str, Any], where: str, field: str) -> str:
    """A pod's service account: `serviceAccountName`, else the deprecated `serviceAccount`, else
    `default` (what the API server's admission sets)."""
    for key in ("serviceAccountName", "serviceAccount"):
        value = spec.get(key)
        if value is not None and value != "":
            if type(value) is not str:
                raise _fail(where, f"{field}.{key}", f"must be a string, got {_short(value)}")
            return value
    return "default"


def _env(raw: Any, where: str, field: str) -> tuple[tuple[str, str], ...]:
    """The variables a CNI reads settings from, with literal values: never any other (they may hold secrets)."""
    out = []
    for i, item in enumerate(_list(raw, where, field)):
        name = item.get("name") if type(item) is dict else None
        if name is not None and type(name) is not str:  # the API requires a string (a list is not even hashable)
            raise _fail(where, f"{field}[{i}].name", f"must be a string, got {_short(name)}")
        if name in ENV_NAMES:
            value = item.get("value")
            if value is not None and type(value) is not str:
                raise _fail(where, f"{field}[{i}].value", f"must be a string, got {_short(value)}")
            if value is not None:
                out.append((name, value))
    return tuple(out)


def config_object(obj: Mapping[str, Any], kind: str, namespace: str | None, name: str, source: SourceRef) -> ConfigObject:
    """What the CNIs read of a ConfigMap or operator object named ``name``: only the declared keys."""
    refs = kept_keys(kind, name)
    data: dict[str, str] = {}
    problems: list[str] = []
    raw = obj.get("data") if kind == "ConfigMap" else obj
    if raw is not None and not isinstance(raw, dict):
        return ConfigObject(kind, namespace, name, (), "unreadable", f"{'data' if kind == 'ConfigMap' else 'the object'} is not a mapping", source)
    raw = raw or {}
    documents: dict[tuple[str, str], Any] = {}
    for ref in refs:
        for key in ref.keys:
            value = _config_value(raw, key, kind, documents, problems)
            if value is not None:
                data[key] = value
    if problems:
        return ConfigObject(kind, namespace, name, tuple(sorted(data.items())), "unreadable", "; ".join(dict.fromkeys(problems)), source)
    return ConfigObject(kind, namespace, name, tuple(sorted(data.items())), "found", "", source)


def _config_value(raw: Mapping[str, Any], key: str, kind: str, documents: dict[tuple[str, str], Any], problems: list[str]) -> str | None:
    if kind != "ConfigMap":
        found: Any = raw
        for part in key.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return None if found is None or isinstance(found, (dict, list)) else _text(found)
    if not key.startswith(("yaml:", "ini:")):
        value = raw.get(key)
        return None if value is None else _text(value)
    form, file, path = key.split(":", 2)
    if (form, file) not in documents:
        documents[(form, file)] = _document(form, raw.get(file), file, problems)
    doc = documents[(form, file)]
    if form == "ini":
        section, _, option = path.partition(".")
        return doc.get(section, option, fallback=None) if doc is not None else None
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return None if doc is None or isinstance(doc, (dict, list)) else _text(doc)


def _document(form: str, text: Any, file: str, problems: list[str]) -> Any:
    if text is None:
        return None
    if type(text) is not str:
        problems.append(f"data.{file} is not a string")
        return None
    if form == "ini":
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parser.read_string(text)
        except configparser.Error as exc:
            problems.append(f"data.{file} is not a valid INI file ({str(exc).splitlines()[0][:120]})")
            return None
        return parser
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problems.append(f"data.{file} is not valid YAML ({str(exc).splitlines()[0][:120]})")
        return None


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def pod_spec_facts(spec: Any, where: str, field: str, with_containers: bool = False
                   ) -> tuple[tuple[ContainerPort, ...], bool, tuple[Container, ...], str]:
    """Container ports, hostNetwork and (for CNI detection only) containers of a pod spec."""
    spec = _mapping(spec, where, field)
    ports: list[ContainerPort] = []
    containers: list[Container] = []
    for group in ("initContainers", "containers"):
        raw_list = spec.get(group) or []
        if not isinstance(raw_list, list):
            raise _fail(where, f"{field}.{group}", "must be a list")
        for i, c in enumerate(raw_list):
            if not isinstance(c, dict):
                raise _fail(where, f"{field}.{group}[{i}]", "must be an object")
            raw_ports = c.get("ports")
            for j, p in enumerate(raw_ports if type(raw_ports) is list else _list(raw_ports, where, f"{field}.{group}[{i}].ports")):
                number = p.get("containerPort") if type(p) is dict else None
                name = p.get("name") if type(p) is dict else None
                protocol = p.get("protocol", "TCP") if type(p) is dict else None
                if type(number) is not int or not 0 < number < 65536 or not (name is None or type(name) is str) or protocol not in _PROTOCOLS:
                    ppath = f"{field}.{group}[{i}].ports[{j}]"
                    p = _mapping(p, where, ppath)
                    if p.get("containerPort") is None:
                        raise _fail(where, f"{ppath}.containerPort", "required (1-65535)")
                    _int(p.get("containerPort"), where, f"{ppath}.containerPort", 0, 1, 65535)
                    if p.get("protocol", "TCP") not in _PROTOCOLS:
                        raise _fail(where, f"{ppath}.protocol", f"{_short(p.get('protocol'))}: supported values: TCP, UDP, SCTP")
                    raise _fail(where, f"{ppath}.name", f"must be a string, got {_short(name)}")
                ports.append(_container_port(number, protocol, name))
            if with_containers:
                # Only what CNI detection needs: never other variables, which may hold secrets.
                words = _list(c.get("command"), where, f"{field}.{group}[{i}].command") + _list(c.get("args"), where, f"{field}.{group}[{i}].args")
                if not all(type(w) is str for w in words):
                    raise _fail(where, f"{field}.{group}[{i}].command", "command and args must be lists of strings")
                containers.append(Container(str(c.get("name", "")), str(c.get("image", "")), tuple(words),
                                            _env(c.get("env"), where, f"{field}.{group}[{i}].env")))
    host_network = _bool(spec.get("hostNetwork"), where, f"{field}.hostNetwork")
    return _port_tuple(ports), host_network, tuple(containers), service_account_of(spec, where, field)


def _label(labels: Labels, key: str) -> str | None:
    """One label's value, found in the sorted labels (a dict per workload would cost more)."""
    i = bisect.bisect_left(labels, (key,))
    return labels[i][1] if i < len(labels) and labels[i][0] == key else None


def _sort_workloads(workloads: list[Workload]) -> None:
    """Sort by (namespace, kind, name, labels): one stable pass per name field from the last, then
    each run of one owner's workloads (a StatefulSet's pods differ in labels) by labels. A pass over
    strings compares them directly, where a tuple key compares namespaces and kinds again and again."""
    for attribute in ("name", "kind", "namespace"):
        workloads.sort(key=operator.attrgetter(attribute))
    start = 0
    for i in range(1, len(workloads) + 1):
        if i < len(workloads):
            a, b = workloads[i - 1], workloads[i]
            if a.name == b.name and a.kind == b.kind and a.namespace == b.namespace:
                continue
        if i - start > 1:
            workloads[start:i] = sorted(workloads[start:i], key=operator.attrgetter("labels"))
        start = i


def _owner_of(refs: Iterable[tuple[Any, Any, Any]], template_hash: Any) -> tuple[str, str] | None:
    """A pod's controlling owner from its (kind, name, controller) references, as
    netpol-analyzer names them: an owner without `kind` groups its pods under the owner's name
    as `[Pod]`; a Node's mirror pod is its own workload (None); a ReplicaSet named
    <deployment>-<pod-template-hash> belongs to its Deployment."""
    for ref_kind, ref_name, controller in refs:
        if controller is True and ref_name:
            kind, name = str(ref_kind or "Pod"), str(ref_name)
            if kind == "Node":
                return None
            if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
                return "Deployment", name[: -len(template_hash) - 1]
            return kind, name
    return None


class PodFacts(tuple):  # type: ignore[type-arg]
    """What the builder keeps of one typed pod (`InventoryBuilder.pod_facts`): namespace, name, the
    phase when it has finished (Succeeded, Failed; else None), labels, ports, hostNetwork, owner
    (kind, name; or None), addresses, service account. A tuple made without a Python call per pod
    (150,000 in a large cluster), named by its type so a reader can tell it from a decoded item."""

    __slots__ = ()


_facts = tuple.__new__


def _port_tuple(ports: list[ContainerPort]) -> tuple[ContainerPort, ...]:
    """A pod's ports as one canonical tuple (each once, sorted), so pods alike group together."""
    if len(ports) > 1:
        ports = sorted(set(ports), key=lambda p: (p.port, p.protocol, p.name or ""))
    return tuple(ports)


@dataclass
class InventoryBuilder:
    """Accumulates objects from any source and produces one Inventory.

    Real pods are grouped under their controlling owner; a template (Deployment, ...) is
    kept only when no pod of it was seen, so a dump with both does not count twice.
    """

    notices: list[str] = field(default_factory=list)
    invalid: list[CollectionIssue] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    _namespaces: dict[str, Namespace] = field(default_factory=dict)
    _pod_groups: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)
    _templates: dict[tuple[str, str, str], list[Workload]] = field(default_factory=dict)
    _owned_by: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    _policies: dict[tuple[str, str, str], PolicyObject] = field(default_factory=dict)
    _daemonsets: dict[tuple[str, str, str], DaemonSet] = field(default_factory=dict)
    _config: dict[tuple[str, str | None, str], ConfigObject] = field(default_factory=dict)
    _referenced: set[str] = field(default_factory=set)
    _seen_pods: set[tuple[str, str]] = field(default_factory=set)
    _repeated_pods: int = 0
    _node_hints: set[str] = field(default_factory=set)
    _services: dict[tuple[str, str], Service] = field(default_factory=dict)
    _ingresses: dict[tuple[str, str, str], IngressRoute] = field(default_factory=dict)
    _service_accounts: dict[tuple[str, str], ServiceAccount] = field(default_factory=dict)
    _typed_ports: dict[tuple[slim.PodPort, ...], tuple[ContainerPort, ...]] = field(default_factory=dict)

    _label_sets: dict[tuple[tuple[str, str], ...], Labels] = field(default_factory=dict)
    """Each distinct label set once, by its items as read: pods of one workload share theirs. Per
    builder, so a long-lived process (the Python API) keeps no label set after its inventory."""

    def _typed_labels(self, value: dict[str, str]) -> Labels:
        """`_labels` of labels known to be strings (msgspec checked them, or `_labels` did): sorted,
        each set once."""
        key = tuple(value.items())
        hit = self._label_sets.get(key)
        if hit is None:
            hit = self._label_sets[key] = tuple(sorted(key))
        return hit

    def _labels(self, value: Any, where: str, field: str) -> Labels:
        if type(value) is dict and all(type(k) is str and type(v) is str for k, v in value.items()):
            return self._typed_labels(value)
        labels = _mapping(value, where, field)
        for name, val in labels.items():
            if not isinstance(name, str):
                raise _fail(where, f"{field}", f"label key {name!r} must be a string")
            if not isinstance(val, str):
                raise _fail(where, f"{field}.{name}", f"label value {val!r} must be a string (quote it in YAML)")
        return freeze_labels(labels)

    def add(self, obj: Any, source: SourceRef, where: str) -> None:
        """Add one object (a dict as the API serves it, or a pod typed by audit.sources.slim);
        ``where`` prefixes error messages."""
        if type(obj) is slim.Pod:
            self.add_typed_pods((obj,), source)
            return
        if type(obj) is PodFacts:
            self.add_pod_facts((obj,), source)
            return
        if type(obj) is dict and obj.get("kind") == "Pod" and obj.get("apiVersion") == "v1":
            # Pods are most of a cluster: the checks below, done once for the common shape.
            meta = obj.get("metadata")
            if type(meta) is dict:
                name, ns = meta.get("name"), meta.get("namespace") or DEFAULT_NAMESPACE
                if type(name) is str and name and type(ns) is str:
                    self.counts["Pod"] += 1
                    try:
                        self._add_pod(obj, meta, ns, name, source, f"{where} Pod {_name(name)}")
                    except ObjectError as exc:
                        self._leave_out("Pod", ns, name, exc)
                    return
        if not isinstance(obj, dict):
            raise ObjectError(f"{where}: expected a Kubernetes object (a mapping), got {type(obj).__name__}")
        kind = obj.get("kind")
        if not kind or not isinstance(kind, str):
            raise _fail(where, "kind", "required")
        if not isinstance(obj.get("apiVersion"), str) or not obj["apiVersion"]:
            raise _fail(where, "apiVersion", f"required (a string such as v1 or apps/v1), got {_short(obj.get('apiVersion'))}")
        group = api_group(obj.get("apiVersion"))
        if (group, kind) in CONFIG_KINDS and not kept_keys(kind, str((obj.get("metadata") or {}).get("name") if isinstance(obj.get("metadata"), dict) else "")):
            self.skipped[kind] += 1  # a ConfigMap no CNI reads: never kept (it may hold anything)
            return
        if not self._handles(group, kind):
            # Kinds the audit does not read (Service, Kustomization, ...) are counted, not validated.
            self.skipped[kind] += 1
            return
        meta = _mapping(obj.get("metadata"), where, "metadata")
        name = meta.get("name")
        if not name or not isinstance(name, str):
            raise _fail(where, "metadata.name", "required (a non-empty string)")
        where = f"{where} {kind} {_name(name)}"
        ns = meta.get("namespace") or DEFAULT_NAMESPACE
        if not isinstance(ns, str):
            raise _fail(where, "metadata.namespace", "must be a string")
        policy = resource_of(group, kind)
        self.counts[policy[1].name if policy else kind] += 1
        if policy is not None:
            self._add_policy(obj, meta, policy[1], ns, name, source, where)
            return
        # Any other kind is context (pods, namespaces, workloads, routes): an invalid one is left
        # out and reported, and the rest is still analysed; an invalid policy is a finding instead.
        try:
            self._add_context(obj, meta, kind, ns, name, source, where)
        except ObjectError as exc:
            self._leave_out(kind, ns, name, exc)

    def _leave_out(self, kind: str, ns: str, name: str, exc: ObjectError) -> None:
        scope = "" if kind in ("Namespace", "Node") else f"{_name(ns)}/"
        self.invalid.append(CollectionIssue(f"{kind} {scope}{_name(name)}", str(exc), core=True, invalid=True))

    def _add_policy(self, obj: Mapping[str, Any], meta: Mapping[str, Any], resource: Resource, ns: str, name: str,
                    source: SourceRef, where: str) -> None:
        scope = ns if resource.namespaced else None
        if scope:
            self._referenced.add(scope)
        key = (resource.name, scope or "", name)
        if key in self._policies:
            self.notices.append(f"{resource.name} {f'{scope}/' if scope else ''}{name} appears twice; the later one ({source.describe()}) is used")
        annotations = freeze_labels({str(k): str(v) for k, v in _mapping(meta.get("annotations"), where, "metadata.annotations").items()})
        more = tuple((k, obj[k]) for k in sorted(obj) if k not in ("apiVersion", "kind", "metadata", "spec", "status"))
        self._policies[key] = PolicyObject(resource.kind, str(obj.get("apiVersion")), scope, name, obj.get("spec"), annotations, source, more)

    def _add_context(self, obj: Mapping[str, Any], meta: Mapping[str, Any], kind: str, ns: str, name: str,
                     source: SourceRef, where: str) -> None:
        if kind == "Pod":  # by far the most common object: first
            self._add_pod(obj, meta, ns, name, source, where)
            return
        group = api_group(obj.get("apiVersion"))
        if kind == "Namespace":
            labels = dict(self._labels(meta.get("labels"), where, "metadata.labels"))
            labels.setdefault(NAMESPACE_NAME_LABEL, name)
            self._namespaces[name] = Namespace(name, freeze_labels(labels), True, source)
            return
        if (group, kind) in ROUTING_KINDS:
            self._add_routing(obj, meta, kind, ns, name, source, where)
            return
        if kind == "ServiceAccount" and not group:
            self._service_accounts[(ns, name)] = ServiceAccount(ns, name, self._labels(meta.get("labels"), where, "metadata.labels"), source)
            return
        if (group, kind) in CONFIG_KINDS:
            scope = None if kind == "Installation" else ns
            self._config[(kind, scope, name)] = config_object(obj, kind, scope, name, source)
            return
        if kind == "Node":
            keys = list(_mapping(meta.get("annotations"), where, "metadata.annotations")) + list(_mapping(meta.get("labels"), where, "metadata.labels"))
            self._node_hints.update(h for h in NODE_CNI_HINTS for k in keys if isinstance(k, str) and k.startswith(h))
            return
        self._add_template(obj, meta, kind, ns, name, source, where)

    @staticmethod
    def _handles(group: str, kind: str) -> bool:
        if resource_of(group, kind) is not None:
            return True
        return kind in ("Namespace", "Pod", "Node") or kind in TEMPLATE_KINDS or (group, kind) in ROUTING_KINDS or (
            group, kind) == ("", "ServiceAccount") or (group, kind) in CONFIG_KINDS

    def _add_routing(self, obj: Mapping[str, Any], meta: Mapping[str, Any], kind: str, ns: str, name: str, source: SourceRef,
                     where: str) -> None:
        """Services, Ingresses and Routes: what an ingress controller can reach (see audit.engine.ingress)."""
        spec = _mapping(obj.get("spec"), where, "spec")
        if kind == "Service":
            selector = spec.get("selector")
            ports = []
            for i, raw in enumerate(_list(spec.get("ports"), where, "spec.ports")):
                port = _mapping(raw, where, f"spec.ports[{i}]")
                number = _int(port.get("port"), where, f"spec.ports[{i}].port", 0)
                if not 0 < number < 65536:
                    raise _fail(where, f"spec.ports[{i}].port", "required (1-65535)")
                target = port.get("targetPort")
                if (target is not None and not isinstance(target, (int, str))) or isinstance(target, bool):
                    raise _fail(where, f"spec.ports[{i}].targetPort", "must be a port number or name")
                ports.append(ServicePort(number, target, _optional_str(port.get("name"), where, f"spec.ports[{i}].name"),
                                         str(port.get("protocol") or "TCP")))
            self._services[(ns, name)] = Service(ns, name, None if selector is None else self._labels(selector, where, "spec.selector"),
                                                 tuple(ports), source, self._labels(meta.get("labels"), where, "metadata.labels"))
            return
        backends: list[Backend] = []
        if kind == "Route":
            target = _mapping(spec.get("port"), where, "spec.port").get("targetPort")
            for field_name, entry in [("spec.to", spec.get("to"))] + [
                    (f"spec.alternateBackends[{i}]", b) for i, b in enumerate(spec.get("alternateBackends") or [])]:
                ref = _mapping(entry, where, field_name)
                if ref.get("kind", "Service") == "Service" and ref.get("name"):
                    backends.append(Backend(str(ref["name"]), target))
        else:
            entries = [("spec.defaultBackend", spec.get("defaultBackend") or spec.get("backend"))]
            for i, rule in enumerate(spec.get("rules") or []):
                http = _mapping(_mapping(rule, where, f"spec.rules[{i}]").get("http"), where, f"spec.rules[{i}].http")
                entries += [(f"spec.rules[{i}].http.paths[{j}].backend", _mapping(path, where, f"spec.rules[{i}].http.paths[{j}]").get("backend"))
                            for j, path in enumerate(http.get("paths") or [])]
            for field_name, entry in entries:
                if entry is None:
                    continue
                backend = _mapping(entry, where, field_name)
                service = backend.get("service")
                if service is not None:  # networking.k8s.io/v1
                    service = _mapping(service, where, f"{field_name}.service")
                    port = _mapping(service.get("port"), where, f"{field_name}.service.port")
                    if service.get("name"):
                        backends.append(Backend(str(service["name"]), port.get("name") or port.get("number")))
                elif backend.get("serviceName"):  # the v1beta1 shape
                    backends.append(Backend(str(backend["serviceName"]), backend.get("servicePort")))
        self._ingresses[(kind, ns, name)] = IngressRoute(kind, ns, name, tuple(backends), source)

    def _owner(self, meta: Mapping[str, Any], where: str) -> tuple[str, str] | None:
        refs = meta.get("ownerReferences") or []
        if not isinstance(refs, list):
            raise _fail(where, "metadata.ownerReferences", "must be a list")
        raw_labels = meta.get("labels")
        template_hash = raw_labels.get("pod-template-hash") if isinstance(raw_labels, dict) else None
        return _owner_of(((r.get("kind"), r.get("name"), r.get("controller")) for r in refs if isinstance(r, dict)), template_hash)

    def _add_pod(self, obj: Mapping[str, Any], meta: Mapping[str, Any], ns: str, name: str, source: SourceRef, where: str) -> None:
        if not self._first_sight(ns, name):
            return
        status = _mapping(obj.get("status"), where, "status")
        if self._finished(ns, name, status.get("phase")):
            return
        labels = self._labels(meta.get("labels"), where, "metadata.labels")
        ports, host_network, _, account = pod_spec_facts(obj.get("spec"), where, "spec")
        owner = self._owner(meta, where) or ("Pod", name)
        ips: list[Any] = [p.get("ip") for p in _list(status.get("podIPs"), where, "status.podIPs") if isinstance(p, dict) and p.get("ip")]
        if not ips and status.get("podIP"):
            ips = [status["podIP"]]
        if not all(type(ip) is str for ip in ips):
            raise _fail(where, "status.podIPs", "addresses must be strings")
        self._record_pod(ns, labels, ports, host_network, owner, ips, source, account, name)

    def add_typed_pods(self, pods: Iterable[slim.Pod], source: SourceRef) -> None:
        """Pods whose every field msgspec has checked against the types `_add_pod` accepts."""
        self.add_pod_facts(self.pod_facts(pods), source)

    def pod_facts(self, pods: Iterable[slim.Pod]) -> list[PodFacts]:
        """What the builder keeps of typed pods, in one loop (nearly all of a cluster's objects: no
        per-object dispatch, no error context). It changes nothing the inventory shows (only the
        shared label sets and port lists grow): a JSON List read in pieces reduces each piece as
        it is decoded, and the pieces' pods are never all in memory at once."""
        typed_ports, typed_labels = self._typed_ports, self._typed_labels
        out: list[PodFacts] = []
        for pod in pods:
            meta, spec, status = pod.metadata, pod.spec, pod.status
            declared: list[slim.PodPort] | None = None
            host_network, account = False, "default"
            if spec is not None:
                containers = spec.containers
                if spec.initContainers is None and containers is not None and len(containers) == 1:
                    declared = containers[0].ports  # the common pod: one container
                else:
                    declared = []
                    for group in (spec.initContainers, containers):
                        for c in group or ():
                            if c.ports:
                                declared += c.ports
                host_network = bool(spec.hostNetwork)
                account = spec.serviceAccountName or spec.serviceAccount or "default"
            ports: tuple[ContainerPort, ...] = ()
            if declared:  # pods of one workload declare the same ports: made once per distinct list
                key = tuple(declared)
                hit = typed_ports.get(key)
                if hit is None:
                    hit = typed_ports[key] = _port_tuple([_container_port(p.containerPort, p.protocol, p.name) for p in key])
                ports = hit
            labels = meta.labels
            refs = meta.ownerReferences
            owner = _owner_of([(r.kind, r.name, r.controller) for r in refs], labels.get("pod-template-hash") if labels else None) \
                if refs else None
            ips: list[str] = []
            phase = None
            if status is not None:
                if status.podIPs:
                    ips = [p.ip for p in status.podIPs if p.ip]
                if not ips and status.podIP:
                    ips = [status.podIP]
                if status.phase in _FINISHED:
                    phase = status.phase
            out.append(_facts(PodFacts, (meta.namespace or DEFAULT_NAMESPACE, meta.name, phase, typed_labels(labels) if labels else (),
                                         ports, host_network, owner, ips, account)))
        return out

    def add_pod_facts(self, pods: Iterable[PodFacts], source: SourceRef) -> None:
        """Add pods as `pod_facts` reduced them."""
        first_sight, record = self._first_sight, self._record_pod
        counted = 0
        for ns, name, phase, labels, ports, host_network, owner, ips, account in pods:
            counted += 1
            if not first_sight(ns, name):
                continue
            if phase is not None and self._finished(ns, name, phase):
                continue
            record(ns, labels, ports, host_network, owner or ("Pod", name), ips, source, account, name)
        self.counts["Pod"] += counted

    def _first_sight(self, ns: str, name: str) -> bool:
        """False for a pod read before (a restarted list after 410 Gone, a repeated manifest): counted once."""
        if (ns, name) in self._seen_pods:
            self._repeated_pods += 1
            return False
        self._seen_pods.add((ns, name))
        return True

    def _finished(self, ns: str, name: str, phase: Any) -> bool:
        """A pod that has finished runs nothing: left out, with a notice."""
        if phase in _FINISHED:
            self.notices.append(f"Pod {ns}/{name} has finished ({phase}) and is left out")
            return True
        return False

    def _record_pod(self, ns: str, labels: Labels, ports: tuple[ContainerPort, ...], host_network: bool,
                    owner: tuple[str, str], ips: list[str], source: SourceRef, account: str = "default", name: str = "") -> None:
        """One running pod, however it was read: grouped under its owner with the pods alike."""
        if ns not in self._referenced:
            self._referenced.add(ns)
        # Pods of one owner that differ in labels, ports or service account (a rollout in progress) are kept apart.
        key = (ns, owner[0], owner[1], labels, ports, host_network, account)
        group = self._pod_groups.get(key)
        if group is None:
            group = self._pod_groups[key] = [0, [], source, []]
        group[0] += 1
        group[1].extend(ips)
        group[3].append(name)

    def _add_template(self, obj: Mapping[str, Any], meta: Mapping[str, Any], kind: str, ns: str, name: str, source: SourceRef, where: str) -> None:
        path, count_field = TEMPLATE_KINDS[kind]
        self._referenced.add(ns)
        template = _mapping(_dig(obj, path, where), where, ".".join(path))
        tmeta = _mapping(template.get("metadata"), where, ".".join(path) + ".metadata")
        labels = self._labels(tmeta.get("labels"), where, ".".join(path) + ".metadata.labels")
        controller = kind in CONTROLLER_KINDS and bool(kept_keys(kind, name))
        ports, host_network, containers, account = pod_spec_facts(template.get("spec"), where, ".".join(path) + ".spec",
                                                                  kind == "DaemonSet" or controller)
        spec = _mapping(obj.get("spec"), where, "spec")
        pods = _int(spec.get(count_field), where, f"spec.{count_field}", 1, 0) if count_field else 1
        if kind == "DaemonSet" or controller:
            self._daemonsets[(kind, ns, name)] = DaemonSet(ns, name, self._labels(meta.get("labels"), where, "metadata.labels"), containers, source,
                                                           kind)
        owner = self._owner(meta, where)
        if owner:
            # A ReplicaSet of a Deployment, a Job of a CronJob: the owner stands for it.
            self._owned_by[(ns, kind, name)] = owner
            kind, name = owner
            if (ns, kind, name) in self._templates:
                return
        if kind == "StatefulSet" and 0 < pods <= MAX_ORDINALS:
            # The StatefulSet controller names its pods by ordinal and labels each with its name and
            # index: a policy may select one of them.
            self._templates[(ns, kind, name)] = [
                Workload(ns, kind, name, freeze_labels({**dict(labels), STATEFULSET_POD_NAME: f"{name}-{i}", POD_INDEX: str(i)}), ports,
                         host_network, 1, (), source, service_account=account, pod_names=(f"{name}-{i}",)) for i in range(pods)]
        else:
            self._templates[(ns, kind, name)] = [Workload(ns, kind, name, labels, ports, host_network, pods, (), source,
                                                          service_account=account)]

    @gc_paused()  # 100k+ workloads made at once would set off full collections
    def build(self, collection: Collection) -> Inventory:
        workloads: list[Workload] = []
        live_owners: set[tuple[str, str, str]] = set()
        for (ns, kind, name, labels, ports, host_network, account), (count, ips, source, names) in self._pod_groups.items():
            live_owners.add((ns, kind, name))
            # Live pods of a Deployment are owned by its ReplicaSet <name>-<pod-template-hash> (see _owner).
            template_hash = _label(labels, "pod-template-hash") if kind == "Deployment" else None
            controller = f"ReplicaSet/{name}-{template_hash}" if template_hash else None
            # Most groups are one pod: one address, one name, nothing to sort.
            workloads.append(Workload(ns, kind, name, labels, ports, host_network, count,
                                      (ips[0],) if len(ips) == 1 else tuple(sorted(set(ips))), source, controller,
                                      account, (names[0],) if len(names) == 1 else tuple(sorted(names))))
        for key, templates in self._templates.items():
            if key not in live_owners:
                workloads.extend(templates)
        namespaces = dict(self._namespaces)
        for ns in sorted(self._referenced - set(namespaces)):
            namespaces[ns] = Namespace(ns, ((NAMESPACE_NAME_LABEL, ns),), declared=False)
            self.notices.append(
                f"namespace {ns!r} is used but not declared; assumed to exist with only the label {NAMESPACE_NAME_LABEL}={ns}"
            )
        _sort_workloads(workloads)
        if self._repeated_pods:
            self.notices.append(f"{self._repeated_pods} pod(s) were read twice and counted once")
        collection_with_counts = Collection(
            **{
                **collection.__dict__,
                "notices": tuple(collection.notices) + tuple(self.notices),
                "issues": tuple(collection.issues) + tuple(self.invalid),
                "object_counts": tuple(sorted(self.counts.items())),
                "skipped_kinds": tuple(sorted(self.skipped.items())),
            }
        )
        return Inventory(
            namespaces=tuple(namespaces[n] for n in sorted(namespaces)),
            workloads=tuple(workloads),
            policies=tuple(self._policies[k] for k in sorted(self._policies)),
            daemonsets=tuple(self._daemonsets[k] for k in sorted(self._daemonsets)),
            node_hints=tuple(sorted(self._node_hints)),
            collection=collection_with_counts,
            services=tuple(self._services[k] for k in sorted(self._services)),
            ingresses=tuple(self._ingresses[k] for k in sorted(self._ingresses)),
            service_accounts=tuple(self._service_accounts[k] for k in sorted(self._service_accounts)),
            cni_config=tuple(self._config[k] for k in sorted(self._config, key=lambda k: (k[0], k[1] or "", k[2]))),
        )

    def agents(self) -> tuple[DaemonSet, ...]:
        """The DaemonSets (and CNI controllers) read so far."""
        return tuple(self._daemonsets.values())

    def add_config(self, item: ConfigObject) -> None:
        """A CNI settings object as a live scan found it (or found it missing, or could not read it)."""
        self._config[(item.kind, item.namespace, item.name)] = item

