"""Every allowed connection between workloads, and between workloads and outside address ranges.

Lines read `src => dst : connections`, workloads as `ns/name[Kind]`, outside addresses as
`first-last` ranges cut at every ipBlock boundary the policies use, connections as
`All Connections` or `TCP 80,443,UDP 53`. Pod classes are compared pairwise, so the work
grows with the square of the number of classes: beyond `MAX_CLASSES`, narrow with a namespace.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from audit.analysis import Analysis, Endpoint, PodClass
from audit.errors import InputError
from audit.policy import Direction
from audit.calico import CalicoPolicy
from audit.ports import ALL, NONE, PortSet, rule_ports
from audit.report import BlastRadiusRow, ConnectionRow, ConnectivityInfo

MAX_CLASSES = 4000
REPORT_CLASSES = 300
"""Reports list connectivity up to this many pod classes; beyond, the command does it per namespace."""


@dataclass(frozen=True)
class Connection:
    src: str
    dst: str
    conns: PortSet

    def __str__(self) -> str:
        return f"{self.src} => {self.dst} : {self.conns}"


@dataclass(frozen=True)
class Segment:
    """A range of outside addresses that every ipBlock treats alike."""

    version: int
    first: int
    last: int

    @property
    def probe(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.first) if self.version == 4 else ipaddress.IPv6Address(self.first)

    def text(self, last: int | None = None) -> str:
        make = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        return f"{make(self.first)}-{make(self.last if last is None else last)}"


def segments(analysis: Analysis) -> list[Segment]:
    """IPv4 space (and IPv6 when a policy uses it) cut at every ipBlock and except boundary."""
    cuts: dict[int, set[int]] = {4: {0}, 6: set()}
    for policy in analysis.policies:
        for direction in policy.types:
            for rule in policy.rules(direction):
                for peer in rule.peers:
                    if peer.ip_block is None:
                        continue
                    for net in (peer.ip_block.cidr, *peer.ip_block.excepts):
                        bound = cuts.setdefault(net.version, set())
                        bound.update((int(net.network_address), int(net.broadcast_address) + 1))
    out = []
    for version, top in ((4, 2**32), (6, 2**128)):
        if not cuts[version]:
            continue
        points = sorted(p for p in cuts[version] | {0} if p < top)
        for start, end in zip(points, points[1:] + [top]):
            out.append(Segment(version, start, end - 1))
    return out


def _admin_layer(analysis: Analysis, policies, direction: Direction, other: Endpoint, dst_ports, scope: PortSet,
                 allowed: PortSet) -> tuple[PortSet, PortSet, PortSet]:
    """Walk admin rules in order over the ports still undecided: (allowed, passed, undecided)."""
    passed = NONE
    for policy in policies:
        for rule in policy.rules(direction):
            if not scope:
                return allowed, passed, scope
            if any(analysis.admin_peer_has(peer, other) for peer in rule.peers):
                ports = rule.port_set(dst_ports) & scope
                if rule.action == "Allow":
                    allowed = allowed | ports
                elif rule.action == "Pass":
                    passed = passed | ports
                scope = scope - ports
    return allowed, passed, scope


def _side(analysis: Analysis, subject: PodClass, direction: Direction, other: Endpoint, dst_ports) -> PortSet:
    """The ports one side allows: ANP rules first, then NetworkPolicy, else the BANP (see audit.admin)."""
    policies = analysis.isolating(subject.id, direction)
    anps, banps = analysis.admin_for(subject.id)
    cilium = analysis.cilium_for(subject.id)
    allowed, passed, undecided = _admin_layer(analysis, anps, direction, other, dst_ports, ALL, NONE)
    scope = undecided | passed
    denied = NONE  # Cilium deny rules win over every NetworkPolicy and Cilium allow
    cilium_allowed = NONE
    for policy in cilium:
        for crule in policy.rules(direction):
            if analysis.cilium_rule_has(crule, other):
                if crule.deny:
                    denied = denied | crule.port_set(dst_ports)
                else:
                    cilium_allowed = cilium_allowed | crule.port_set(dst_ports)
    scope = scope - denied
    walk = analysis.calico_order(subject.id, direction, policies) if analysis.calico_policies else []
    if any(isinstance(item[2], CalicoPolicy) for item in walk):
        # Calico's ordered walk (NetworkPolicy at order 1000): the first matching rule decides
        # each port; Pass hands the port to the namespace default (allow); the rest is denied.
        for _order, _name, item in walk:
            if isinstance(item, CalicoPolicy):
                for crule in item.rules(direction):
                    if crule.action == "Log" or not analysis.calico_rule_has(item, crule, subject.id, other):
                        continue
                    ports = crule.port_set(dst_ports) & scope
                    if crule.action in ("Allow", "Pass"):
                        allowed = allowed | ports
                    scope = scope - ports
            else:
                ports = NONE
                for rule in item.rules(direction):  # type: ignore[attr-defined]
                    if analysis.peer_admits(item, rule, other):  # type: ignore[arg-type]
                        ports = ports | rule_ports(rule, dst_ports)
                allowed = allowed | (ports & scope)
                scope = scope - ports
        return allowed | (cilium_allowed & scope)
    if policies or any(direction in p.enforces for p in cilium):
        np_allowed = cilium_allowed
        for policy in policies:
            for rule in policy.rules(direction):
                if analysis.peer_admits(policy, rule, other):
                    np_allowed = np_allowed | rule_ports(rule, dst_ports)
        return allowed | (np_allowed & scope)
    allowed, _, undecided = _admin_layer(analysis, banps, direction, other, dst_ports, scope, allowed)
    return allowed | undecided


def connections(analysis: Analysis, namespaces: set[str] | None = None) -> list[Connection]:
    """Allowed connections, one per (source, destination), sorted."""
    classes = [c for c in analysis.real_classes() if c.governed]
    focus = [c for c in classes if namespaces is None or c.namespace in namespaces]
    if len(focus) * len(classes) > MAX_CLASSES * MAX_CLASSES:
        raise InputError(f"connectivity over {len(focus)} x {len(classes)} pod classes is too large for pairwise "
                         f"analysis; narrow it with --namespace")
    pairs: dict[tuple[str, str], PortSet] = {}

    def add(src: str, dst: str, conns: PortSet) -> None:
        if conns and src != dst:
            pairs[(src, dst)] = pairs.get((src, dst), NONE) | conns

    for src in classes:
        for dst in classes:
            if namespaces is not None and src.namespace not in namespaces and dst.namespace not in namespaces:
                continue
            egress = _side(analysis, src, "Egress", dst.id, dst.ports)
            if not egress:
                continue
            conns = egress & _side(analysis, dst, "Ingress", src.id, dst.ports)
            for s in src.workloads:
                for d in dst.workloads:
                    add(s.ref, d.ref, conns)
    outside = segments(analysis)
    for cls in focus:
        for direction in ("Egress", "Ingress"):
            runs: list[tuple[Segment, int, PortSet]] = []  # merged adjacent segments with equal connections
            for seg in outside:
                conns = _side(analysis, cls, direction, seg.probe, cls.ports if direction == "Ingress" else None)
                if runs and runs[-1][2] == conns and runs[-1][0].version == seg.version and runs[-1][1] + 1 == seg.first:
                    runs[-1] = (runs[-1][0], seg.last, conns)
                else:
                    runs.append((seg, seg.last, conns))
            for seg, last, conns in runs:
                for w in cls.workloads:
                    if direction == "Egress":
                        add(w.ref, seg.text(last), conns)
                    else:
                        add(seg.text(last), w.ref, conns)
    return [Connection(s, d, c) for (s, d), c in sorted(pairs.items())]


def namespace_matrix(conns: list[Connection], analysis: Analysis) -> tuple[list[str], dict[tuple[str, str], int]]:
    """Namespaces (plus `external`) and how many source/destination pairs connect between them."""
    def ns_of(name: str) -> str:
        return name.split("/", 1)[0] if "[" in name else "external"

    names = sorted({ns_of(c.src) for c in conns} | {ns_of(c.dst) for c in conns}
                   | {c.namespace for c in analysis.real_classes() if c.governed})
    counts: dict[tuple[str, str], int] = {}
    for c in conns:
        key = (ns_of(c.src), ns_of(c.dst))
        counts[key] = counts.get(key, 0) + 1
    return names, counts


def render_dot(conns: list[Connection]) -> str:
    """Graphviz: workloads grouped by namespace, outside ranges apart."""
    nodes: dict[str, set[str]] = {}
    external: set[str] = set()
    for c in conns:
        for name in (c.src, c.dst):
            if "[" in name:
                nodes.setdefault(name.split("/", 1)[0], set()).add(name)
            else:
                external.add(name)

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph {"]
    for i, (ns, members) in enumerate(sorted(nodes.items())):
        lines.append(f"\tsubgraph cluster_{i} {{")
        for name in sorted(members):
            lines.append(f"\t\t{q(name)} [label={q(name.split('/', 1)[1])} color=\"blue\" fontcolor=\"blue\"]")
        lines.append(f"\t\tlabel={q(ns)}")
        lines.append("\t}")
    for name in sorted(external):
        lines.append(f"\t{q(name)} [label={q(name)} color=\"red2\" fontcolor=\"red2\"]")
    for c in conns:
        lines.append(f"\t{q(c.src)} -> {q(c.dst)} [label={q(str(c.conns))} color=\"gold2\" fontcolor=\"darkgreen\"]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def report_connectivity(analysis: Analysis) -> ConnectivityInfo:
    """The connectivity section of a report: listed for small clusters, pointed to for large ones."""
    count = sum(1 for c in analysis.real_classes() if c.governed)
    if count > REPORT_CLASSES:
        return ConnectivityInfo(False, f"{count} pod classes: too many to list in a report; run "
                                       "`netpol-audit connectivity -n NAMESPACE` (or -f matrix)", ())
    conns = connections(analysis)
    rows = tuple(ConnectionRow(c.src, c.dst, str(c.conns)) for c in conns)
    return ConnectivityInfo(True, f"{len(rows)} allowed connections between {count} pod classes and outside address ranges",
                            rows, blast_radius(conns))


def blast_radius(conns: list[Connection]) -> tuple[BlastRadiusRow, ...]:
    """Per source namespace: the workloads and namespaces its pods can open connections to."""
    reach: dict[str, tuple[set[str], set[str], list[bool]]] = {}
    for c in conns:
        if "[" not in c.src:
            continue  # outside sources have no namespace
        ns = c.src.split("/", 1)[0]
        workloads, namespaces, outside = reach.setdefault(ns, (set(), set(), [False]))
        if "[" in c.dst:
            workloads.add(c.dst)
            if c.dst.split("/", 1)[0] != ns:
                namespaces.add(c.dst.split("/", 1)[0])
        else:
            outside[0] = True
    return tuple(BlastRadiusRow(ns, len(w), len(n), o[0]) for ns, (w, n, o) in
                 sorted(reach.items(), key=lambda kv: (-len(kv[1][0]), kv[0])))
