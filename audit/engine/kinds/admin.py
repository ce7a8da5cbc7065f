"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io v1alpha1, and the
v1beta1 shape of the domain text): parsing, validation and matching.

Evaluation order for one side of a connection: AdminNetworkPolicies whose subject selects the
pod, lowest priority number first, rules in order; the first matching rule decides (Allow,
Deny, or Pass to the next layer). Then NetworkPolicy, when it isolates the pod. Otherwise the
BaselineAdminNetworkPolicy's first matching rule (Allow or Deny); no match allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from audit.inventory import ContainerPort, ExtendedPolicy, SourceRef
from audit.engine.kinds.networkpolicy import PROTOCOLS, Direction, IPAddress, IPNetwork, parse_cidr, port_name_error
from audit.engine.ports import ALL, PortSet, resolve_ports
from audit.engine.selectors import FieldError, Selector, parse_selector

ANP = "AdminNetworkPolicy"
BANP = "BaselineAdminNetworkPolicy"
Action = Literal["Allow", "Deny", "Pass"]


@dataclass(frozen=True)
class AdminPeer:
    """One from/to entry: namespaces, pods (namespace AND pod selector), networks or nodes."""

    namespaces: Selector | None = None
    pod_namespaces: Selector | None = None
    pods: Selector | None = None
    networks: tuple[IPNetwork, ...] = ()
    nodes: Selector | None = None

    def __str__(self) -> str:
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

    def port_set(self, dst_ports: tuple[ContainerPort, ...] | None) -> PortSet:
        if not self.ports:
            return ALL
        return resolve_ports((port.entry() for port in self.ports), dst_ports)

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

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def rules(self, direction: Direction) -> tuple[AdminRule, ...]:
        return self.ingress if direction == "Ingress" else self.egress


@dataclass(frozen=True)
class ParsedAdmin:
    obj: ExtendedPolicy
    policy: AdminPolicy | None
    errors: tuple[FieldError, ...]


def parse_admin(obj: ExtendedPolicy) -> ParsedAdmin:
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
    subject = spec.get("subject")
    sub_ns = sub_pod_ns = sub_pods = None
    if not isinstance(subject, dict) or len([k for k in ("namespaces", "pods") if k in subject]) != 1:
        errors.append(FieldError("spec.subject", "exactly one of namespaces or pods is required"))
    elif "namespaces" in subject:
        sub_ns, errs = parse_selector(subject["namespaces"] or {}, "spec.subject.namespaces")
        errors += errs
    else:
        pods = subject["pods"] if isinstance(subject["pods"], dict) else {}
        sub_pod_ns, errs = parse_selector(pods.get("namespaceSelector") or {}, "spec.subject.pods.namespaceSelector")
        errors += errs
        sub_pods, errs = parse_selector(pods.get("podSelector") or {}, "spec.subject.pods.podSelector")
        errors += errs
    ingress = _rules(spec.get("ingress"), "Ingress", obj.kind, errors)
    egress = _rules(spec.get("egress"), "Egress", obj.kind, errors)
    if errors:
        return ParsedAdmin(obj, None, tuple(errors))
    return ParsedAdmin(obj, AdminPolicy(obj.kind, obj.name, priority, sub_ns, sub_pod_ns, sub_pods, ingress, egress, obj.source), ())


def _rules(raw: Any, direction: Direction, kind: str, errors: list[FieldError]) -> tuple[AdminRule, ...]:
    base = f"spec.{direction.lower()}"
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 100:
        errors.append(FieldError(base, "must be a list of at most 100 rules"))
        return ()
    actions = ("Allow", "Deny", "Pass") if kind == ANP else ("Allow", "Deny")
    peer_field = "from" if direction == "Ingress" else "to"
    rules = []
    for i, item in enumerate(raw):
        path = f"{base}[{i}]"
        if not isinstance(item, dict):
            errors.append(FieldError(path, "must be an object"))
            continue
        action = item.get("action")
        if action not in actions:
            errors.append(FieldError(f"{path}.action", f"{action!r} must be one of {', '.join(actions)}"))
        raw_peers = item.get(peer_field)
        if not isinstance(raw_peers, list) or not raw_peers:
            errors.append(FieldError(f"{path}.{peer_field}", "required, a non-empty list of peers"))
            raw_peers = []
        peers = [p for j, rp in enumerate(raw_peers) if (p := _peer(rp, f"{path}.{peer_field}[{j}]", direction, errors))]
        ports = []
        raw_ports = item.get("ports")
        if raw_ports is not None:
            if not isinstance(raw_ports, list) or not raw_ports:
                errors.append(FieldError(f"{path}.ports", "must be a non-empty list when given"))
            else:
                ports = [p for j, rp in enumerate(raw_ports) if (p := _port(rp, f"{path}.ports[{j}]", errors))]
        if action in actions:
            rules.append(AdminRule(direction, i, str(item.get("name", "")), action, tuple(peers), tuple(ports)))
    return tuple(rules)


def _peer(raw: Any, path: str, direction: Direction, errors: list[FieldError]) -> AdminPeer | None:
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
        # v1alpha1 before v0.1.6 nested it as namespaces.namespaceSelector; both are read.
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
    return AdminPeer(nodes=sel)


def _port(raw: Any, path: str, errors: list[FieldError]) -> AdminPort | None:
    if not isinstance(raw, dict) or len(raw) != 1:
        errors.append(FieldError(path, "exactly one of portNumber, portName or portRange is required"))
        return None
    if "portName" in raw:
        name = raw["portName"]
        if not isinstance(name, str) or port_name_error(name):
            errors.append(FieldError(f"{path}.portName", f"{name!r} is not a valid port name"))
            return None
        return AdminPort(name=name)
    key = "portNumber" if "portNumber" in raw else "portRange" if "portRange" in raw else None
    value = raw.get(key) if key else None
    if not isinstance(value, dict):
        errors.append(FieldError(path, "exactly one of portNumber, portName or portRange is required"))
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
        return AdminPort(protocol, port, port)
    start, end = value.get("start"), value.get("end")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535 for v in (start, end)) or end < start:
        errors.append(FieldError(f"{path}.portRange", f"start {start!r} and end {end!r} must be ports with start <= end"))
        return None
    return AdminPort(protocol, start, end)


def network_contains(peer: AdminPeer, ip: IPAddress) -> bool:
    return any(ip.version == net.version and ip in net for net in peer.networks)

