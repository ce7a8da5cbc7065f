"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io v1alpha1, and the
v1beta1 shape of the domain text): parsing, validation and matching.

Evaluation order for one side of a connection: AdminNetworkPolicies whose subject selects the
pod, lowest priority number first, rules in order; the first matching rule decides (Allow,
Deny, or Pass to the next layer). Then NetworkPolicy, when it isolates the pod. Otherwise the
BaselineAdminNetworkPolicy's first matching rule (Allow or Deny); no match allows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from audit.engine.addresses import IPBlock, IPNetwork, parse_cidr
from audit.engine.compiled import Action, CompiledPeer, CompiledPolicy, CompiledPort, CompiledRule, CompiledSubject, Layer, Tier
from audit.engine.direction import DIRECTIONS, Direction, peer_word
from audit.engine.kinds.base import Compiled, KindDeclaration, Resource, Support
from audit.engine.ports import PROTOCOLS, port_name_error
from audit.engine.selection import PodSelection
from audit.engine.selectors import FieldError, Selector, parse_selector
from audit.inventory import Inventory, Labels, PolicyObject, SourceRef

GROUP = "policy.networking.k8s.io"
ANP = "AdminNetworkPolicy"
BANP = "BaselineAdminNetworkPolicy"


@dataclass(frozen=True)
class AdminPeer:
    """One from/to entry: namespaces, pods (namespace AND pod selector), networks or nodes."""

    namespaces: Selector | None = None
    pod_namespaces: Selector | None = None
    pods: Selector | None = None
    networks: tuple[IPNetwork, ...] = ()
    nodes: Selector | None = None
    same_labels: tuple[str, ...] = ()
    """v1alpha1 before v0.1.5: namespaces whose values of these labels equal the subject's."""
    not_same_labels: tuple[str, ...] = ()
    unresolvable: str | None = None
    """A peer this audit cannot evaluate from an inventory (nodes, domainNames): it matches nothing."""

    def __str__(self) -> str:
        if self.unresolvable:
            return f"{self.unresolvable} (not evaluated)"
        if self.same_labels or self.not_same_labels:
            return f"namespaces[sameLabels={','.join(self.same_labels)} notSameLabels={','.join(self.not_same_labels)}]"
        if self.namespaces is not None:
            return f"namespaces[{self.namespaces}]"
        if self.pods is not None:
            return f"namespaces[{self.pod_namespaces}] AND pods[{self.pods}]"
        if self.networks:
            return "networks " + ", ".join(map(str, self.networks))
        return f"nodes[{self.nodes}]"


@dataclass(frozen=True)
class AdminPort:
    protocol: str = "TCP"
    start: int | None = None
    end: int | None = None
    name: str | None = None

    def entry(self) -> tuple[tuple[str, ...], int | str | None, int | None]:
        """As a port entry: a name matches the destination's container port of any protocol."""
        if self.name is not None:
            return PROTOCOLS, self.name, None
        return (self.protocol,), self.start, self.end

    def __str__(self) -> str:
        if self.name is not None:
            return f"named {self.name}"
        return f"{self.protocol}/{self.start}" + (f"-{self.end}" if self.end and self.end != self.start else "")


@dataclass(frozen=True)
class AdminRule:
    direction: Direction
    index: int
    name: str
    action: Action
    peers: tuple[AdminPeer, ...]
    ports: tuple[AdminPort, ...]

    def describe(self) -> str:
        word = "from" if self.direction == "Ingress" else "to"
        ports = ", ".join(map(str, self.ports)) if self.ports else "all ports"
        return f"{self.action} {word} {' OR '.join(map(str, self.peers))} on {ports}"


@dataclass(frozen=True)
class AdminPolicy:
    kind: str
    name: str
    priority: int | None
    subject_namespaces: Selector | None
    subject_pod_namespaces: Selector | None
    subject_pods: Selector | None
    ingress: tuple[AdminRule, ...]
    egress: tuple[AdminRule, ...]
    source: SourceRef = SourceRef()
    tier: Tier = "admin"
    family: str = "AdminNetworkPolicy / BaselineAdminNetworkPolicy"
    annotations: Labels = ()
    spec: Any = None

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def rules(self, direction: Direction) -> tuple[AdminRule, ...]:
        return self.ingress if direction == "Ingress" else self.egress


@dataclass(frozen=True)
class ParsedAdmin:
    obj: PolicyObject
    policy: AdminPolicy | None
    errors: tuple[FieldError, ...]


def parse_admin(obj: PolicyObject) -> ParsedAdmin:
    """Validate an ANP or BANP as the API server's schema would; errors name the field."""
    errors: list[FieldError] = []
    spec = obj.spec if isinstance(obj.spec, dict) else {}
    if not isinstance(obj.spec, dict):
        errors.append(FieldError("spec", "required, an object"))
    priority = None
    if obj.kind == ANP:
        priority = spec.get("priority")
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000:
            errors.append(FieldError("spec.priority", f"{priority!r} must be an integer from 0 to 1000"))
            priority = None
    sub_ns, sub_pod_ns, sub_pods = parse_subject(spec.get("subject"), errors)
    ingress = _rules(spec.get("ingress"), "Ingress", obj.kind, errors)
    egress = _rules(spec.get("egress"), "Egress", obj.kind, errors)
    if errors:
        return ParsedAdmin(obj, None, tuple(errors))
    tier: Tier = "admin" if obj.kind == ANP else "baseline"
    return ParsedAdmin(obj, AdminPolicy(obj.kind, obj.name, priority, sub_ns, sub_pod_ns, sub_pods, ingress, egress, obj.source, tier,
                                        annotations=obj.annotations, spec=obj.spec), ())


def parse_subject(subject: Any, errors: list[FieldError], strict: bool = False
                  ) -> tuple[Selector | None, Selector | None, Selector | None]:
    """(namespaces, pods' namespaces, pods) of a subject: exactly one of ``namespaces`` or ``pods``.
    ``strict`` (ClusterNetworkPolicy): no other field, and ``pods`` needs its ``podSelector``."""
    if (not isinstance(subject, dict) or len([k for k in ("namespaces", "pods") if k in subject]) != 1
            or (strict and len(subject) != 1)):
        errors.append(FieldError("spec.subject", "exactly one of namespaces or pods is required"))
        return None, None, None
    if "namespaces" in subject:
        sub_ns, errs = parse_selector(subject["namespaces"] or {}, "spec.subject.namespaces")
        errors += errs
        return sub_ns, None, None
    pods = subject["pods"] if isinstance(subject["pods"], dict) else {}
    sub_pod_ns, errs = parse_selector(pods.get("namespaceSelector") or {}, "spec.subject.pods.namespaceSelector")
    errors += errs
    if strict and "podSelector" not in pods:
        errors.append(FieldError("spec.subject.pods.podSelector", "required"))
    sub_pods, errs = parse_selector(pods.get("podSelector") or {}, "spec.subject.pods.podSelector")
    errors += errs
    return None, sub_pod_ns, sub_pods


def rule_items(raw: Any, direction: Direction, limit: int, errors: list[FieldError]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """The (index, field path, object) of each rule of `spec.ingress`/`spec.egress`, shared by
    every admin-tier kind; a list longer than `limit` or an item that is not an object is an error."""
    base = f"spec.{direction.lower()}"
    if raw is None:
        return
    if not isinstance(raw, list) or len(raw) > limit:
        errors.append(FieldError(base, f"must be a list of at most {limit} rules"))
        return
    for i, item in enumerate(raw):
        path = f"{base}[{i}]"
        if not isinstance(item, dict):
            errors.append(FieldError(path, "must be an object"))
            continue
        yield i, path, item


def _rules(raw: Any, direction: Direction, kind: str, errors: list[FieldError]) -> tuple[AdminRule, ...]:
    actions = ("Allow", "Deny", "Pass") if kind == ANP else ("Allow", "Deny")
    peer_field = "from" if direction == "Ingress" else "to"
    rules = []
    for i, path, item in rule_items(raw, direction, 100, errors):
        action = item.get("action")
        if action not in actions:
            errors.append(FieldError(f"{path}.action", f"{action!r} must be one of {', '.join(actions)}"))
        raw_peers = item.get(peer_field)
        if not isinstance(raw_peers, list) or not raw_peers:
            errors.append(FieldError(f"{path}.{peer_field}", "required, a non-empty list of peers"))
            raw_peers = []
        peers = [p for j, rp in enumerate(raw_peers) if (p := parse_peer(rp, f"{path}.{peer_field}[{j}]", direction, errors))]
        ports: list[AdminPort] = []
        raw_ports = item.get("ports")
        if raw_ports is not None:
            if not isinstance(raw_ports, list) or not raw_ports:
                errors.append(FieldError(f"{path}.ports", "must be a non-empty list when given"))
            else:
                ports = [port for j, rp in enumerate(raw_ports) if (port := _port(rp, f"{path}.ports[{j}]", errors))]
        if any(p.name is not None for p in ports) and any(p.networks or p.nodes is not None for p in peers):
            errors.append(FieldError(path, "networks/nodes peer cannot be set with namedPorts since there are no namedPorts for networks/nodes"))
        if action in actions:
            rules.append(AdminRule(direction, i, str(item.get("name", "")), action, tuple(peers), tuple(ports)))  # type: ignore[arg-type]  # checked: one of actions
    return tuple(rules)


def parse_peer(raw: Any, path: str, direction: Direction, errors: list[FieldError]) -> AdminPeer | None:
    if not isinstance(raw, dict):
        errors.append(FieldError(path, "must be an object"))
        return None
    allowed = {"namespaces", "pods"} | ({"networks", "nodes"} if direction == "Egress" else set())
    present = [k for k in raw if raw.get(k) is not None]
    if len(present) != 1 or present[0] not in allowed:
        errors.append(FieldError(path, f"exactly one of {', '.join(sorted(allowed))} is required"))
        return None
    key = present[0]
    value = raw[key]
    if key == "namespaces":
        # v1alpha1 before v0.1.5 nested it as namespaces.namespaceSelector, or sameLabels /
        # notSameLabels (exactly one of the three); both shapes are read.
        if isinstance(value, dict) and {"sameLabels", "notSameLabels"} & set(value):
            same = _label_keys(value.get("sameLabels"), f"{path}.namespaces.sameLabels", errors)
            not_same = _label_keys(value.get("notSameLabels"), f"{path}.namespaces.notSameLabels", errors)
            if len([k for k in ("namespaceSelector", "sameLabels", "notSameLabels") if k in value]) != 1:
                errors.append(FieldError(f"{path}.namespaces", "exactly one of namespaceSelector, sameLabels or notSameLabels is allowed"))
            return AdminPeer(namespaces=Selector(), same_labels=same, not_same_labels=not_same)
        if isinstance(value, dict) and "namespaceSelector" in value:
            value = value["namespaceSelector"]
        sel, errs = parse_selector(value or {}, f"{path}.namespaces")
        errors.extend(errs)
        return AdminPeer(namespaces=sel)
    if key == "pods":
        value = value if isinstance(value, dict) else {}
        ns_raw = value.get("namespaceSelector", value.get("namespaces", {}))
        if isinstance(ns_raw, dict) and "namespaceSelector" in ns_raw:
            ns_raw = ns_raw["namespaceSelector"]
        ns_sel, errs = parse_selector(ns_raw or {}, f"{path}.pods.namespaceSelector")
        errors.extend(errs)
        pod_sel, errs = parse_selector(value.get("podSelector") or {}, f"{path}.pods.podSelector")
        errors.extend(errs)
        return AdminPeer(pod_namespaces=ns_sel, pods=pod_sel)
    if key == "networks":
        nets = []
        for k, cidr in enumerate(value if isinstance(value, list) else [None]):
            net = parse_cidr(cidr)
            if net is None:
                errors.append(FieldError(f"{path}.networks[{k}]", f"{cidr!r} is not a valid CIDR"))
            else:
                nets.append(net)
        return AdminPeer(networks=tuple(nets))
    sel, errs = parse_selector(value or {}, f"{path}.nodes")
    errors.extend(errs)
    return AdminPeer(nodes=sel, unresolvable="nodes")


def _port(raw: Any, path: str, errors: list[FieldError]) -> AdminPort | None:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("portNumber", "namedPort", "portRange"):
        errors.append(FieldError(path, "exactly one of portNumber, namedPort or portRange is required"))
        return None
    if "namedPort" in raw:
        name = raw["namedPort"]
        if not isinstance(name, str) or port_name_error(name):
            errors.append(FieldError(f"{path}.namedPort", f"{name!r} is not a valid port name"))
            return None
        return AdminPort(name=name)
    key = next(iter(raw))
    value = raw[key]
    if not isinstance(value, dict):
        errors.append(FieldError(f"{path}.{key}", "must be an object"))
        return None
    protocol = value.get("protocol") or "TCP"
    if protocol not in PROTOCOLS:
        errors.append(FieldError(f"{path}.{key}.protocol", f"{protocol!r}: supported values: TCP, UDP, SCTP"))
        return None
    if key == "portNumber":
        port = value.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            errors.append(FieldError(f"{path}.portNumber.port", f"{port!r} must be between 1 and 65535"))
            return None
        return AdminPort(protocol, port)
    start, end = value.get("start"), value.get("end")
    if not (isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool) and not isinstance(end, bool)
            and 1 <= start < end <= 65535):
        errors.append(FieldError(f"{path}.portRange", f"start {start!r} and end {end!r} must be ports with start < end"))
        return None
    return AdminPort(protocol, start, end)


def _label_keys(raw: Any, path: str, errors: list[FieldError]) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(k, str) and k for k in raw):
        errors.append(FieldError(path, "must be a list of label keys"))
        return ()
    return tuple(raw)


def compile_admin(policy: AdminPolicy, ports_field: str = "ports") -> CompiledPolicy:
    """An admin-tier policy in the compiled model: one layer in its tier at its priority; the first
    rule that names the peer decides, and what none decides goes on to the next tier."""
    rules = tuple(_compile_rule(policy, rule, ports_field) for d in DIRECTIONS for rule in policy.rules(d))
    if policy.subject_namespaces is not None:
        subject = CompiledSubject("spec.subject.namespaces", f"subject namespaces {policy.subject_namespaces}",
                                  PodSelection(namespaces=policy.subject_namespaces))
    else:
        subject = CompiledSubject("spec.subject.pods", f"subject namespaces [{policy.subject_pod_namespaces}] AND pods [{policy.subject_pods}]",
                                  PodSelection(namespaces=policy.subject_pod_namespaces, pods=policy.subject_pods))
    kind = policy.kind if policy.kind != "ClusterNetworkPolicy" else f"ClusterNetworkPolicy, {policy.tier.capitalize()} tier"
    layer = Layer(policy.tier, (float(policy.priority or 0), policy.name), _NOTES[policy.tier].format(kind=kind),
                  tuple((d, tuple(r for r in rules if r.direction == d)) for d in DIRECTIONS), priority=policy.priority)
    types = tuple(d for d in DIRECTIONS if policy.rules(d))
    return CompiledPolicy(policy.kind, policy.family, None, policy.name, policy.key, subject, rules, types, (layer,), policy.source,
                          policy.annotations, spec=policy.spec)


def _compile_rule(policy: AdminPolicy, rule: AdminRule, ports_field: str) -> CompiledRule:
    field = f"spec.{rule.direction.lower()}[{rule.index}]"
    word = peer_word(rule.direction)
    peers = tuple(_compile_peer(peer, f"{field}.{word}[{j}]") for j, peer in enumerate(rule.peers))
    ports = None if not rule.ports else tuple(
        CompiledPort(f"{field}.{ports_field}[{j}]", *port.entry()) for j, port in enumerate(rule.ports))
    label = f"{policy.key} {rule.direction.lower()}[{rule.index}]" + (f" ({rule.name})" if rule.name else "")
    return CompiledRule(rule.direction, rule.action, field, label, rule.describe(), peers, False, ports, index=rule.index)


def _compile_peer(peer: AdminPeer, field: str) -> CompiledPeer:
    if peer.unresolvable:
        return CompiledPeer(field, str(peer), unresolvable=peer.unresolvable)
    if peer.same_labels or peer.not_same_labels:
        return CompiledPeer(field, str(peer), PodSelection(), same_labels=peer.same_labels, not_same_labels=peer.not_same_labels)
    if peer.namespaces is not None:
        return CompiledPeer(field, f"namespaces {peer.namespaces}", PodSelection(namespaces=peer.namespaces),
                            selectors=((f"{field}.namespaces", peer.namespaces),))
    if peer.pods is not None:
        return CompiledPeer(field, f"pods namespaces[{peer.pod_namespaces}] AND pods[{peer.pods}]",
                            PodSelection(namespaces=peer.pod_namespaces, pods=peer.pods),
                            selectors=tuple((f"{field}.pods.{name}", sel) for name, sel in
                                            (("namespaceSelector", peer.pod_namespaces), ("podSelector", peer.pods)) if sel is not None))
    return CompiledPeer(field, str(peer), blocks=tuple(IPBlock(n) for n in peer.networks))


_NOTES = {"admin": "{kind}, before any NetworkPolicy", "baseline": "{kind}"}


def admin_subject(obj: PolicyObject) -> PodSelection | None:
    """An admin-tier object's subject on its own, or None when it cannot be read."""
    errors: list[FieldError] = []
    spec = obj.spec if isinstance(obj.spec, dict) else {}
    namespaces, pod_namespaces, pods = parse_subject(spec.get("subject"), errors)
    if errors:
        return None
    return PodSelection(namespaces=namespaces) if namespaces is not None else PodSelection(namespaces=pod_namespaces, pods=pods)


class _AdminKind:
    declaration = KindDeclaration(
        "AdminNetworkPolicy / BaselineAdminNetworkPolicy",
        (Resource(ANP, GROUP, ("v1alpha1", "v1beta1"), "adminnetworkpolicies", namespaced=False),
         Resource(BANP, GROUP, ("v1alpha1", "v1beta1"), "baselineadminnetworkpolicies", namespaced=False)),
        # Sources in the README's enforcement matrix.
        enforced_by={
            "ovn-kubernetes": (Support(switch="enable-admin-network-policy", source="OVN-Kubernetes go-controller/pkg/config"),),
            "antrea": (Support(since="1.13", switch="AdminNetworkPolicy", source="Antrea docs/admin-network-policy.md"),),
            "kube-network-policies": (
                Support((ANP,), switch="admin-network-policy", source="kube-network-policies cmd/kube-network-policies"),
                Support((BANP,), switch="baseline-admin-network-policy", source="kube-network-policies cmd/kube-network-policies")),
            **{calico: (Support((ANP,), since="3.29", until="3.32", switch="kubernetes-datastore", source="Calico v3.29 and v3.32 release notes"),
                        Support((BANP,), since="3.30", until="3.32", switch="kubernetes-datastore", source="Calico v3.30 and v3.32 release notes"))
               for calico in ("calico", "canal")},
            "kube-ovn": (Support(since="1.13", switch="enable-anp", source="Kube-OVN pkg/controller/config.go"),),
        },
        summary="subject (namespaces, pods), priority, Allow/Deny/Pass rules, peers (namespaces, pods, networks, sameLabels, "
                "notSameLabels), ports (number, range, named); nodes peers match nothing here")

    def subject(self, obj: PolicyObject) -> PodSelection | None:
        return admin_subject(obj)

    def compile(self, objects: Sequence[PolicyObject], inventory: Inventory) -> Compiled:
        parsed = tuple(parse_admin(o) for o in objects)
        return Compiled(tuple(compile_admin(p.policy) for p in parsed if p.policy is not None),
                        tuple((p.obj, p.errors) for p in parsed if p.policy is None))


KIND = _AdminKind()
