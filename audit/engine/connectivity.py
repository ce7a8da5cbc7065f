"""Every allowed connection between workloads, and between workloads and outside address ranges.

Lines read `src => dst : connections`, workloads as `ns/name[Kind]`, outside addresses as
`first-last` ranges cut at every boundary of every address block a policy names, connections
as `All Connections` or `TCP 80,443,UDP 53`; the ingress controller as `{ingress-controller}`
(see audit.engine.ingress). Pairs of pod classes are found from the rules (see `ClassGraph`), not by
comparing every class with every other, so the work follows the number of allowed connections.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Iterator, NamedTuple

from audit.engine.analysis import Analysis, Endpoint, PodClass
from audit.engine.ingress import SOURCE as INGRESS_SOURCE
from audit.engine.ingress import ingress_ports
from audit.engine.kinds.networkpolicy import DIRECTIONS, Direction, IPNetwork, Policy
from audit.engine.kinds.calico import CalicoPolicy
from audit.engine.ports import ALL, NONE, PortSet, rule_ports



class Connection(NamedTuple):
    """One allowed connection (a tuple: millions of them stream through `connectivity`)."""

    src: str
    dst: str
    conns: PortSet

    def __str__(self) -> str:
        return f"{self.src} => {self.dst} : {self.conns}"


@dataclass(frozen=True)
class BlastRadius:
    """What a compromised pod of a namespace can reach: other workloads, other namespaces, outside."""

    namespace: str
    workloads: int
    namespaces: int
    outside: bool


@dataclass(frozen=True)
class Segment:
    """A range of outside addresses that every ipBlock treats alike."""

    version: int
    first: int
    last: int

    @cached_property
    def probe(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.first) if self.version == 4 else ipaddress.IPv6Address(self.first)

    def text(self) -> str:
        make = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        return f"{make(self.first)}-{make(self.last)}"


def _networks(analysis: Analysis) -> Iterator[IPNetwork]:
    """Every address block a policy of any kind names (ipBlock cidr and except, ANP networks, CIDRs, nets)."""
    for policy in analysis.policies:
        for direction in policy.types:
            for rule in policy.rules(direction):
                for peer in rule.peers:
                    if peer.ip_block is not None:
                        yield peer.ip_block.cidr
                        yield from peer.ip_block.excepts
    for admin in analysis.anps + analysis.banps:
        for direction in DIRECTIONS:
            for arule in admin.rules(direction):
                for apeer in arule.peers:
                    yield from apeer.networks
    for cilium in analysis.cilium_policies:
        for direction in DIRECTIONS:
            for crule in cilium.rules(direction):
                for cpeer in crule.peers:
                    for block in cpeer.blocks:
                        yield block.cidr
                        yield from block.excepts
    for calico in analysis.calico_policies:
        for direction in DIRECTIONS:
            for krule in calico.rules(direction):
                for entity in (krule.source, krule.destination):
                    yield from entity.nets
                    yield from entity.not_nets


def segments(analysis: Analysis) -> list[Segment]:
    """IPv4 space (and IPv6 when a policy uses it) cut at every boundary of every block a policy names.

    Each segment is one line of output, as np-guard's netpol-analyzer prints its disjoint IP
    blocks: adjacent segments are not merged even when they get the same connections.
    """
    cuts: dict[int, set[int]] = {4: {0}, 6: set()}
    for net in _networks(analysis):
        cuts.setdefault(net.version, set()).update((int(net.network_address), int(net.broadcast_address) + 1))
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


def _rule_ports(analysis: Analysis, rule, dst_ports) -> PortSet:
    """``rule_ports``, memoized on the analysis (a rule's ports resolve alike for equal container ports)."""
    key = (id(rule), dst_ports)
    hit = analysis.memo.get(key)
    if hit is None:
        hit = analysis.memo[key] = rule_ports(rule, dst_ports)
    return hit


def _np_ports(analysis: Analysis, policies: list[Policy], direction: Direction, other: Endpoint, dst_ports) -> PortSet:
    """What NetworkPolicies allow towards or from ``other``: the union of the rules that name it."""
    allowed = NONE
    for policy in policies:
        for rule in policy.rules(direction):
            if analysis.peer_admits(policy, rule, other):
                allowed = allowed | _rule_ports(analysis, rule, dst_ports)
    return allowed


def _side(analysis: Analysis, subject: PodClass, direction: Direction, other: Endpoint, dst_ports) -> PortSet:
    """The ports one side allows: ANP rules first, then NetworkPolicy, else the BANP (see audit.engine.kinds.admin)."""
    policies = analysis.isolating(subject.id, direction)
    anps, banps = analysis.admin_for(subject.id)
    cilium = analysis.cilium_for(subject.id)
    if not (anps or banps or cilium or analysis.calico_policies and analysis.calico_for(subject.id)):
        return _np_ports(analysis, policies, direction, other, dst_ports) if policies else ALL  # NetworkPolicy alone
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
                ports = _np_ports(analysis, [item], direction, other, dst_ports)  # type: ignore[list-item]
                allowed = allowed | (ports & scope)
                scope = scope - ports
        return allowed | (cilium_allowed & scope)
    if policies or any(direction in p.enforces for p in cilium):
        np_allowed = cilium_allowed | _np_ports(analysis, policies, direction, other, dst_ports)
        return allowed | (np_allowed & scope)
    allowed, _, undecided = _admin_layer(analysis, banps, direction, other, dst_ports, scope, allowed)
    return allowed | undecided


class Candidates:
    """The union of the class sets that a side's rule peers select, kept as the sets themselves.

    Peers are memoized by the analysis and shared by many policies (every namespace's "from
    env=prod" peer is one set); a copied union per policy set would cost memory per namespace.
    """

    __slots__ = ("sets", "members")

    def __init__(self, sets: tuple[frozenset[int], ...], members: frozenset[int]):
        self.sets = sets
        self.members = members

    def __contains__(self, cid: int) -> bool:
        return cid in self.members and any(cid in s for s in self.sets)

    def __iter__(self) -> Iterator[int]:
        seen: set[int] = set()
        for group in self.sets:
            for cid in group:
                if cid in self.members and cid not in seen:
                    seen.add(cid)
                    yield cid


class ClassGraph:
    """Allowed connections between pod classes, found from each side's rules instead of pairwise.

    A class whose only policies are NetworkPolicies and that no policy isolates in a direction is
    *open* there. Open sources reach open destinations with every connection, a block that is
    never enumerated. Every other pair is a candidate only if the restricted side's rule peers
    name the other side (``Analysis.peer_classes``), and candidates get a full verdict. Classes
    under AdminNetworkPolicy, Cilium or Calico policies name every class as a candidate.
    """

    @classmethod
    def of(cls, analysis: Analysis) -> ClassGraph:
        """The analysis's graph, built once: checks, the blast radius and listings share its memos."""
        graph = analysis.memo.get(("class-graph",))
        if graph is None:
            graph = analysis.memo[("class-graph",)] = cls(analysis)
        return graph  # type: ignore[return-value]

    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.ids: list[int] = [c.id for c in analysis.real_classes() if c.governed]
        self._members = frozenset(self.ids)
        simple = {cid for cid in self.ids if not (any(analysis.admin_for(cid)) or analysis.cilium_for(cid) or analysis.calico_for(cid))}
        self.open_egress = frozenset(cid for cid in simple if not analysis.isolating(cid, "Egress"))
        self.open_ingress = frozenset(cid for cid in simple if not analysis.isolating(cid, "Ingress"))
        self._simple = frozenset(simple)
        self._egress_index: tuple[frozenset[int], dict[int, set[int]]] | None = None
        self._candidates: dict[tuple, Candidates | None] = {}
        self._egress_memo: dict[tuple, PortSet] = {}
        self._ingress_memo: dict[tuple, PortSet] = {}

    def candidates(self, cid: int, direction: Direction) -> Candidates | None:
        """Classes the rules of ``cid`` can name in ``direction``; None: possibly any."""
        if cid not in self._simple:
            return None
        policies = self.analysis.isolating(cid, direction)
        if not policies:
            return None
        key = (direction, tuple(map(id, policies)))  # the peers depend on the policies, not on the class
        if key in self._candidates:
            return self._candidates[key]
        found: dict[int, frozenset[int]] | None = {}
        for policy in policies:
            for rule in policy.rules(direction):
                if rule.all_peers:
                    found = None
                    break
                for peer in rule.peers:
                    classes = self.analysis.peer_classes(policy.namespace, peer)
                    if classes:
                        found[id(classes)] = classes
            if found is None:
                break
        hit = self._candidates[key] = None if found is None else Candidates(tuple(found.values()), self._members)
        return hit

    def _restricted_sources(self) -> tuple[frozenset[int], dict[int, set[int]]]:
        """Restricted sources whose rules may name any class, and per destination those that name it."""
        if self._egress_index is None:
            anywhere: set[int] = set()
            named: dict[int, set[int]] = {}
            for cid in self.ids:
                if cid in self.open_egress:
                    continue
                found = self.candidates(cid, "Egress")
                if found is None:
                    anywhere.add(cid)
                else:
                    for dst in found:
                        named.setdefault(dst, set()).add(cid)
            self._egress_index = (frozenset(anywhere), named)
        return self._egress_index

    def sources(self, dst: int, implicit: bool = False) -> list[tuple[int, PortSet]]:
        """Source classes that reach ``dst``, with the connections, sorted by class id.

        With ``implicit``, open sources of an open destination (all connections) are left out.
        """
        anywhere, named = self._restricted_sources()
        pool_to = named.get(dst, set())
        admitted = self.candidates(dst, "Ingress") if dst not in self.open_ingress else None
        if admitted is None:
            chosen = anywhere | pool_to
            if not implicit or dst not in self.open_ingress:
                chosen = chosen | self.open_egress
        else:
            chosen = set()
            for group in admitted.sets:  # set intersections run in C, from the smaller side
                for pool in (self.open_egress, anywhere, pool_to):
                    if pool:
                        chosen |= group & pool
        out = []
        ingress_key = self._ingress_key(dst)
        for src in sorted(chosen):
            conns = self.reaches(src, dst, ingress_key)
            if conns:
                out.append((src, conns))
        return out

    def reaches(self, src: int, dst: int, ingress_key: tuple | None = None) -> PortSet:
        """The connections class ``src`` can open to class ``dst``: both sides, every layer."""
        if src in self.open_egress:
            return ALL if dst in self.open_ingress else self.ingress(dst, src, ingress_key)
        egress = self.egress(src, dst)
        return egress if not egress or dst in self.open_ingress else egress & self.ingress(dst, src, ingress_key)

    def _ingress_key(self, dst: int) -> tuple | None:
        """What ``dst``'s ingress verdicts depend on besides the source (None: the class itself)."""
        if dst not in self._simple:
            return None
        return (tuple(map(id, self.analysis.isolating(dst, "Ingress"))), self.analysis.classes[dst].ports)

    def ingress(self, dst: int, src: int, key: tuple | None = None) -> PortSet:
        """What ``dst``'s ingress side allows from class ``src`` (shared by classes with the same policies and ports)."""
        analysis = self.analysis
        cls = analysis.classes[dst]
        key = key or self._ingress_key(dst)
        if key is None:
            return _side(analysis, cls, "Ingress", src, cls.ports)
        full = (key, src)
        hit = self._ingress_memo.get(full)
        if hit is None:
            hit = self._ingress_memo[full] = _side(analysis, cls, "Ingress", src, cls.ports)
        return hit

    def egress(self, src: int, dst: Endpoint) -> PortSet:
        """What ``src``'s egress side allows towards a class or an address (shared per egress signature)."""
        analysis = self.analysis
        dst_ports = analysis.classes[dst].ports if isinstance(dst, int) else None
        signature = analysis.egress_signature(src)
        if signature is None:
            return _side(analysis, analysis.classes[src], "Egress", dst, dst_ports)
        key = (signature, dst)
        hit = self._egress_memo.get(key)
        if hit is None:
            hit = self._egress_memo[key] = _side(analysis, analysis.classes[src], "Egress", dst, dst_ports)
        return hit

    def outside(self, cid: int, direction: Direction, segs: list[Segment], memo: dict) -> list[tuple[str, PortSet]]:
        """Outside ranges ``cid`` connects to (Egress) or from (Ingress), one per segment."""
        analysis = self.analysis
        cls = analysis.classes[cid]
        if cid in (self.open_egress if direction == "Egress" else self.open_ingress):
            key: tuple = ("open",)
        elif cid in self._simple:
            key = (tuple(map(id, analysis.isolating(cid, direction))), cls.ports if direction == "Ingress" else None)
        else:
            key = ("class", cid)
        key = (direction, key)
        hit = memo.get(key)
        if hit is None:
            ports = cls.ports if direction == "Ingress" else None
            hit = memo[key] = [(seg.text(), conns) for seg in segs
                               if (conns := _side(analysis, cls, direction, seg.probe, ports))]
        return hit


def connections(analysis: Analysis, namespaces: set[str] | None = None) -> Iterator[Connection]:
    """Allowed connections, one per (source, destination), sorted; produced one source at a time.

    With ``namespaces``, only connections from or to those namespaces. Memory holds the
    enumerated class pairs, not the workload lines, so a cluster's whole listing streams.
    """
    graph = ClassGraph.of(analysis)
    classes = analysis.classes

    def focus(cid: int) -> bool:
        return namespaces is None or classes[cid].namespace in namespaces

    explicit: dict[int, list[tuple[int, PortSet]]] = {}
    for dst in graph.ids:
        for src, conns in graph.sources(dst, implicit=True):
            if focus(src) or focus(dst):
                explicit.setdefault(src, []).append((dst, conns))
    refs: dict[int, list[str]] = {}

    def refs_of(cid: int) -> list[str]:
        hit = refs.get(cid)
        if hit is None:
            hit = refs[cid] = [w.pod_ref for w in classes[cid].workloads]
        return hit

    open_dsts = sorted(graph.open_ingress)
    segs = segments(analysis)
    memo: dict = {}
    by_ref: dict[str, list[int]] = {}
    for cid in graph.ids:
        for ref in refs_of(cid):
            by_ref.setdefault(ref, []).append(cid)
    from_outside: dict[str, dict[str, PortSet]] = {}
    for cid in graph.ids:
        if focus(cid):
            for text, conns in graph.outside(cid, "Ingress", segs, memo):
                lines = from_outside.setdefault(text, {})
                for ref in refs_of(cid):
                    lines[ref] = lines.get(ref, NONE) | conns
    # Open sources reach every open destination with all connections: one shared block of lines.
    block = dict.fromkeys(sorted(ref for dst in open_dsts for ref in refs_of(dst)), ALL)
    focus_block = block if namespaces is None else dict.fromkeys(
        sorted(ref for dst in open_dsts if focus(dst) for ref in refs_of(dst)), ALL)
    for src in sorted(set(by_ref) | set(from_outside)):
        if src in from_outside:
            lines = from_outside[src]
        else:
            lines = {}
            for cid in by_ref[src]:
                mine = focus(cid)
                if cid in graph.open_egress:
                    if lines:
                        for ref in block if mine else focus_block:
                            lines[ref] = ALL
                    else:
                        lines = dict(block if mine else focus_block)
                for dst, conns in explicit.get(cid, ()):
                    for ref in refs_of(dst):
                        lines[ref] = lines.get(ref, NONE) | conns
                if mine:
                    for text, conns in graph.outside(cid, "Egress", segs, memo):
                        lines[text] = lines.get(text, NONE) | conns
        for dst in sorted(lines):
            if dst != src and lines[dst]:
                yield Connection(src, dst, lines[dst])
    yield from _from_ingress_controller(analysis, focus)


def _from_ingress_controller(analysis: Analysis, focus) -> list[Connection]:
    """`{ingress-controller} => workload` lines (see audit.engine.ingress); they sort after every other source."""
    controller = analysis.ingress_controller
    if controller is None:
        return []
    source = analysis.classes[controller]
    lines: dict[str, PortSet] = {}
    for cid, ports in ingress_ports(analysis).items():
        if not focus(cid):
            continue
        cls = analysis.classes[cid]
        conns = ports & _side(analysis, source, "Egress", cid, cls.ports) & _side(analysis, cls, "Ingress", controller, cls.ports)
        for w in cls.workloads:
            lines[w.pod_ref] = lines.get(w.pod_ref, NONE) | conns
    return [Connection(INGRESS_SOURCE, dst, conns) for dst, conns in sorted(lines.items()) if conns]


def namespace_matrix(conns: Iterable[Connection], analysis: Analysis) -> tuple[list[str], dict[tuple[str, str], int]]:
    """Namespaces (plus `external`) and how many source/destination pairs connect between them."""
    def ns_of(name: str) -> str:
        return name.split("/", 1)[0] if "[" in name else "external"

    counts: dict[tuple[str, str], int] = {}
    for c in conns:
        key = (ns_of(c.src), ns_of(c.dst))
        counts[key] = counts.get(key, 0) + 1
    names = sorted({n for key in counts for n in key} | {c.namespace for c in analysis.real_classes() if c.governed})
    return names, counts


def blast_radius(analysis: Analysis, namespaces: set[str] | None = None) -> tuple[BlastRadius, ...]:
    """Per source namespace: how many workloads and other namespaces its pods can open
    connections to, and whether they reach outside addresses; worst first.

    Counted from class pairs (``ClassGraph``), never from the listing: what the lines of
    ``connections`` would show, without writing them. A workload reaching only itself does
    not count, as it has no line.
    """
    graph = ClassGraph.of(analysis)
    classes = analysis.classes
    refs = {cid: frozenset(w.pod_ref for w in classes[cid].workloads) for cid in graph.ids}
    open_refs = frozenset().union(*(refs[d] for d in graph.open_ingress))
    open_namespaces = {classes[d].namespace for d in graph.open_ingress}
    reached: dict[int, set[int]] = {}
    for dst in graph.ids:
        for src, _conns in graph.sources(dst, implicit=True):
            reached.setdefault(src, set()).add(dst)
    by_ns: dict[str, list[int]] = {}
    for cid in graph.ids:
        if namespaces is None or classes[cid].namespace in namespaces:
            by_ns.setdefault(classes[cid].namespace, []).append(cid)
    segs, memo = segments(analysis), {}
    rows = []
    for ns, members in by_ns.items():
        explicit: set[str] = set()
        open_sources: set[str] = set()
        for src in members:
            only = next(iter(refs[src])) if len(refs[src]) == 1 else None
            for dst in reached.get(src, ()):
                explicit.update(r for r in refs[dst] if r != only)
            if src in graph.open_egress:
                open_sources |= refs[src]
        workloads = set(explicit)
        count = len(explicit | open_refs) if open_sources else len(explicit)
        if len(open_sources) == 1:
            (alone,) = open_sources  # the only open source reaches every open destination but itself
            if alone in open_refs and alone not in explicit:
                count -= 1
        others = {r.split("/", 1)[0] for r in workloads} | (open_namespaces if open_sources else set())
        others.discard(ns)
        outside = any(graph.outside(cid, "Egress", segs, memo) for cid in members)
        if count or outside:
            rows.append(BlastRadius(ns, count, len(others), outside))
    return tuple(sorted(rows, key=lambda r: (-r.workloads, r.namespace)))
