"""Policies of every kind, compiled into one model: what the stack evaluates and checks judge.

A kind's module reads its objects in the kind's own terms and emits these: a subject (the pods
the policy governs), rules with their peers and ports, each carrying its field path in the
kind's own words (``spec.ingress[0].fromEntities[0]``, ``spec.egress[1].destination.nets[0]``),
and the layers it takes in the stack (a Cilium policy's deny rules sit before every allow).
Nothing downstream knows a kind by name: "admits every namespace" is one question whether the
rule says ``namespaceSelector: {}``, ``fromEntities: [cluster]`` or ``namespaceSelector: all()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from audit.engine.addresses import IPBlock, IPNetwork
from audit.engine.cached import cached
from audit.engine.direction import Direction
from audit.engine.ports import PROTOCOLS, PortEntry
from audit.engine.selection import Matcher, PodSelection
from audit.fastinit import fast_init
from audit.inventory import Labels, SourceRef

Tier = Literal["admin", "namespace", "baseline"]
DEFAULT_GROUP: tuple[float, str] = (1_000_000.0, "default")
"""Calico's default tier (order 1,000,000), where Kubernetes NetworkPolicy sits at order 1000."""
TIERS: tuple[Tier, ...] = ("admin", "namespace", "baseline")
Action = Literal["Allow", "Deny", "Pass"]


@fast_init
@dataclass(frozen=True, eq=False)
class CompiledPeer:
    """One peer of a rule: it names an endpoint when every part it has matches (absent parts
    do not narrow; a peer with no part names every pod and every address).

    ``pods``: only pods, those selected; ``blocks``: only addresses in them (and, where
    ``blocks_match_pods``, pods whose IPs are in them; otherwise no pod); ``not_blocks``: not
    those addresses; ``same_labels``/``not_same_labels``: pods of namespaces whose values of these
    labels equal (differ from) the subject's namespace's; ``unresolvable``: this audit cannot
    evaluate the peer from an inventory (DNS names, nodes, cloud groups) and it names nothing here.
    """

    field: str
    text: str
    pods: PodSelection | None = None
    blocks: tuple[IPBlock, ...] = ()
    not_blocks: tuple[IPNetwork, ...] = ()
    blocks_match_pods: bool = True
    same_labels: tuple[str, ...] = ()
    not_same_labels: tuple[str, ...] = ()
    unresolvable: str | None = None
    selectors: tuple[tuple[str, Matcher], ...] = ()
    """(field, matcher) of every selector it writes, for the empty-value check."""
    not_pods: PodSelection | None = None
    """Pods it never names (a global Calico notSelector alone: anything but those)."""
    names: tuple[str, ...] = ()
    """DNS names (Cilium's toFQDNs: lower-case patterns with the trailing dot): it names the addresses
    they resolve to, which only a question about a name can give (``audit.engine.dnsnames``)."""

    @cached
    def relative(self) -> bool:
        """What it names depends on the subject (sameLabels)."""
        return bool(self.same_labels or self.not_same_labels)

    @cached
    def everything(self) -> bool:
        """Every pod and every address."""
        return (self.pods is None and not self.blocks and not self.not_blocks and not self.relative
                and self.unresolvable is None and self.not_pods is None)

    @cached
    def every_namespace(self) -> bool:
        """It names pods in every namespace, present and future."""
        if self.unresolvable is not None or self.relative or (self.blocks and self.pods is None):
            return False
        return self.pods is None or self.pods.every_namespace

    @cached
    def every_pod(self) -> bool:
        """It names every pod of every namespace."""
        return (self.every_namespace and (self.pods is None or self.pods.every_pod) and not self.not_blocks and not self.blocks
                and self.not_pods is None)

    @cached
    def whole_address_space(self) -> bool:
        """It names every address of a family (0.0.0.0/0 or ::/0 without except)."""
        return self.everything or (self.pods is None and not self.not_blocks and any(b.is_everything for b in self.blocks))

    @cached
    def names_addresses(self) -> bool:
        """It names some outside addresses."""
        return self.unresolvable is None and self.pods is None and not self.relative


@dataclass(frozen=True)
class HttpRule:
    """One HTTP match: every part it gives must match the request (Cilium: RE2 expressions matched
    against the whole value, case-sensitive; headers by exact value or presence)."""

    field: str
    method: str | None = None
    path: str | None = None
    host: str | None = None
    headers: tuple[tuple[str, str | None], ...] = ()
    """(name, exact value); a value of None: the header must be present, with any value."""
    unknown: str | None = None
    """Why no request can be judged against it here (a header value held in a secret)."""

    @property
    def text(self) -> str:
        out = f"{self.method or 'any method'} {self.path or 'any path'}"
        if self.host:
            out += f" host {self.host}"
        if self.headers:
            out += " with " + ", ".join(f"{n}: {v}" if v is not None else n for n, v in self.headers)
        return out


@dataclass(frozen=True)
class L7:
    """What a port entry restricts above layer 4: the requests it lets through."""

    protocol: str
    """HTTP, Kafka, DNS or the name of another L7 parser."""
    field: str
    http: tuple[HttpRule, ...] = ()
    dns: tuple[str, ...] = ()
    """DNS name patterns (Cilium's matchName and matchPattern, lower-case, with the trailing dot)."""

    @property
    def text(self) -> str:
        if self.protocol == "HTTP":
            return ", ".join(r.text for r in self.http)
        if self.protocol == "DNS":
            return "DNS lookups of " + ", ".join(self.dns)
        return f"{self.protocol} messages as {self.field} allows"


@fast_init
@dataclass(frozen=True)
class CompiledPort:
    """One port entry: protocols with a number, a range, a name, or every port (``port`` None)."""

    field: str
    protocols: tuple[str, ...]
    port: int | str | None = None
    end: int | None = None
    l7: L7 | None = None
    """The requests it lets through above layer 4 (None: every one)."""

    def entry(self) -> PortEntry:
        return self.protocols, self.port, self.end

    def __str__(self) -> str:
        protocol = "/".join(self.protocols) if set(self.protocols) != set(PROTOCOLS) else "any"
        if self.port is None:
            return f"{protocol}/*"
        return f"{protocol}/{self.port}" + (f"-{self.end}" if self.end is not None and self.end != self.port else "")


@fast_init
@dataclass(frozen=True, eq=False)
class CompiledRule:
    """One rule in effect, in one direction.

    ``peers`` empty with ``all_peers``: every peer (every pod and every address); empty without
    it: no peer (Cilium's ``{}``). ``ports`` None: every port of every protocol; ``()``: no port
    (an ICMP-only rule); otherwise the entries, and ``not_ports`` what it excludes.
    """

    direction: Direction
    action: Action
    field: str
    label: str
    """How an explanation names it: ``prod/api ingress[0]``, ``CiliumNetworkPolicy/prod/x ingressDeny[0]``."""
    text: str
    peers: tuple[CompiledPeer, ...] = ()
    all_peers: bool = False
    ports: tuple[CompiledPort, ...] | None = None
    not_ports: tuple[CompiledPort, ...] = ()
    own: CompiledPeer | None = None
    """A constraint on the subject's own side (a Calico ingress rule's destination)."""
    limits: tuple[str, ...] = ()
    """What else restricts it that this audit judges at layer 4 only (HTTP rules, ...)."""
    index: int = 0
    """Its place in the list it is written in (``spec.egress[index]``)."""
    ip_family: int | None = None
    """It matches only traffic of this IP version (Calico's ipVersion, or the family of its nets)."""

    @cached
    def every_port(self) -> bool:
        """No port number narrows it (every port of the protocols it names, or of every protocol)."""
        if self.ports is None:
            return not self.not_ports
        return bool(self.ports) and not self.not_ports and all(
            p.port is None and p.protocols and set(p.protocols) <= set(PROTOCOLS) for p in self.ports)

    @cached
    def every_protocol_port(self) -> bool:
        """Every port of every protocol."""
        return self.ports is None and not self.not_ports

    @cached
    def names_every_peer(self) -> bool:
        """Every pod and every address."""
        return self.all_peers or any(p.everything for p in self.peers)

    @cached
    def names_every_pod(self) -> bool:
        """Every pod of the cluster (and maybe every address)."""
        return self.all_peers or any(p.every_pod for p in self.peers)

    @cached
    def everyone(self) -> bool:
        """It names every cluster pod on every port, whatever the subject: what a policy does to everyone."""
        return self.names_every_pod and self.every_protocol_port and self.own is None

    @cached
    def subject_dependent(self) -> bool:
        """Whether what it names also depends on the subject (not only on the peer)."""
        return self.own is not None or any(p.relative for p in self.peers)

    @cached
    def dns_only(self) -> bool:
        """It opens only port 53 (or the conventional named DNS ports)."""
        return bool(self.ports) and all(p.port in (53, "dns", "dns-tcp") and p.end is None for p in self.ports or ())

    @property
    def port_text(self) -> str:
        if self.ports is None:
            return "all ports"
        if not self.ports:
            return "no port (ICMP only)"
        return ", ".join(map(str, self.ports)) + (f" except {', '.join(map(str, self.not_ports))}" if self.not_ports else "")


@fast_init
@dataclass(frozen=True)
class CompiledSubject:
    """The pods a policy governs, and where the policy writes that."""

    field: str
    text: str
    selection: PodSelection
    missing: bool = False
    """The field is absent and defaults to everything (NetworkPolicy's podSelector)."""

    @property
    def whole_scope(self) -> bool:
        """It selects every pod of its namespace (a namespaced policy) or of the cluster."""
        return self.selection.every_pod and (self.selection.namespace is not None or self.selection.every_namespace)


@fast_init
@dataclass(frozen=True, eq=False)
class Layer:
    """What a policy puts in one place of the stack: a tier, an order there, and rules."""

    tier: Tier
    order: tuple[float, str]
    note: str
    """Why it decides where it does, for explanations: "(Calico order)"."""
    rules: tuple[tuple[Direction, tuple[CompiledRule, ...]], ...]
    isolates: tuple[Direction, ...] = ()
    """Directions in which selecting a pod closes the namespace tier for it (the rest is denied)."""
    ordered: bool = False
    """Its policies are walked in an order of their own, first match deciding: what none decided
    is denied at the end of the tier (an explanation says so)."""
    priority: int | None = None
    """The priority the kind writes (admin tiers): two layers of a tier with one priority have no defined order."""
    group: tuple[float, str] = DEFAULT_GROUP
    """Within the namespace tier, the CNI's own tier it sits in (Calico tiers: order, name); NetworkPolicy
    sits in the default one. Groups are walked in order, each closing on its own."""
    group_closes: bool = True
    """What the group does at its end to a pod one of its layers isolates: deny the rest (Calico's
    defaultAction Deny), or pass it on to the next group (defaultAction Pass)."""


@fast_init
@dataclass(frozen=True, eq=False)
class CompiledPolicy:
    """A valid policy object of any kind, compiled."""

    kind: str
    """The object's kind as written: ``NetworkPolicy``, ``CiliumNetworkPolicy``, ``GlobalNetworkPolicy``."""
    family: str
    """The kind declaration it belongs to (how reports group kinds): ``Cilium``, ``Calico``."""
    namespace: str | None
    name: str
    key: str
    subject: CompiledSubject
    rules: tuple[CompiledRule, ...]
    types: tuple[Direction, ...]
    """Directions it governs."""
    layers: tuple[Layer, ...]
    source: SourceRef = SourceRef()
    annotations: Labels = ()
    types_explicit: bool = True
    ignored: tuple[tuple[Direction, str], ...] = ()
    """Rules written but not in effect: (direction, why)."""
    notes: tuple[str, ...] = field(default=())
    """What the audit evaluates only in part for this policy, beyond its rules' limits."""
    api: str = ""
    """How reports name the kind with its group, when the kind name alone is ambiguous (Calico's NetworkPolicy)."""
    spec: Any = None
    """The spec as written, for fixes that edit the policy itself."""
    setting: bool = False
    """Not an object: a CNI setting that acts as a policy (``audit.engine.analysis.cni_setting_policy``)."""

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)

    def rules_in(self, direction: Direction) -> tuple[CompiledRule, ...]:
        """Its rules in ``direction``, in order (split once: every check asks)."""
        return self._rules_by_direction.get(direction, ())

    @cached
    def _rules_by_direction(self) -> dict[Direction, tuple[CompiledRule, ...]]:
        found: dict[Direction, list[CompiledRule]] = {}
        for rule in self.rules:
            found.setdefault(rule.direction, []).append(rule)
        return {d: tuple(rules) for d, rules in found.items()}

    @property
    def display_kind(self) -> str:
        return self.api or self.kind
