"""Every allowed connection between workloads, and between workloads and outside address ranges.

Lines read `src => dst : connections`, workloads as `ns/name[Kind]`, outside addresses as
`first-last[External]` ranges (netpol-analyzer's form): the address space is cut at every boundary
of every address block a policy names, then adjacent ranges with the same connections to (or from)
the same workload are merged, so each line is a maximal range. Connections read `All Connections`
or `TCP 80,443,UDP 53`; the ingress controller is `{ingress-controller}` (see
audit.engine.ingress). Lines sort by source then destination: outside ranges first, in address
order (IPv4 before IPv6), then workloads by name, the ingress controller last. Pairs of pod classes are found from the rules (see `ClassGraph`), not by
comparing every class with every other, so the work follows the number of allowed connections.
"""

from __future__ import annotations

import contextlib
import ipaddress
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from audit.engine.addresses import IPNetwork
from audit.engine.analysis import Analysis, Endpoint
from audit.engine.cached import cached
from audit.engine.direction import Direction
from audit.engine.ingress import SOURCE as INGRESS_SOURCE
from audit.engine.ingress import ingress_ports
from audit.engine.ports import ALL, NONE, PortSet
from audit.engine.verdict import port_in
from audit.report.model import EXTERNAL

"""The suffix netpol-analyzer puts on outside address ranges; `--bare-ranges` drops it."""


class Connection(NamedTuple):
    """One allowed connection (a tuple: millions of them stream through `connectivity`)."""

    src: str
    dst: str
    conns: PortSet

    def __str__(self) -> str:
        return f"{self.src} => {self.dst} : {self.conns}"


def bare(conn: Connection) -> Connection:
    """``conn`` with outside ranges in the older bare `first-last` form."""
    return Connection(conn.src.removesuffix(EXTERNAL), conn.dst.removesuffix(EXTERNAL), conn.conns)


def with_suffix(name: str) -> str:
    """A saved end in the bare form (`10.0.0.0-10.255.255.255`) in today's `[External]` form."""
    if name.endswith(EXTERNAL) or "[" in name or name.startswith("{") or "-" not in name:
        return name
    return name + EXTERNAL


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

    @cached
    def probe(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.first) if self.version == 4 else ipaddress.IPv6Address(self.first)

    def text(self) -> str:
        make = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        return f"{make(self.first)}-{make(self.last)}{EXTERNAL}"


def merged(ranges: list[tuple[Segment, PortSet]]) -> list[tuple[Segment, PortSet]]:
    """Adjacent ranges with the same connections as one (in address order, IPv4 before IPv6)."""
    out: list[tuple[Segment, PortSet]] = []
    for seg, conns in sorted(ranges, key=lambda r: (r[0].version, r[0].first)):
        if out and out[-1][1] == conns and out[-1][0].version == seg.version and out[-1][0].last + 1 == seg.first:
            out[-1] = (Segment(seg.version, out[-1][0].first, seg.last), conns)
        else:
            out.append((seg, conns))
    return out


def order(name: str) -> tuple[int, int, int, str]:
    """How listings sort an end: outside ranges first, by address (IPv4 before IPv6), then by name."""
    if name.endswith(EXTERNAL):
        first = name[: -len(EXTERNAL)].split("-", 1)[0]
        with contextlib.suppress(ValueError):
            ip = ipaddress.ip_address(first)
            return 0, ip.version, int(ip), name
    return 1, 0, 0, name


def _networks(analysis: Analysis) -> Iterator[IPNetwork]:
    """Every address block a policy of any kind names (ipBlock cidr and except, ANP networks, CIDRs, nets)."""
    for policy in analysis.policies:
        for rule in policy.rules:
            for peer in (*rule.peers, *((rule.own,) if rule.own is not None else ())):
                for block in peer.blocks:
                    yield block.cidr
                    yield from block.excepts
                yield from peer.not_blocks


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


def _simple(analysis: Analysis, cid: int, memo: dict[tuple[int, int], bool]) -> bool:
    """Only namespace-tier allow rules act on the class, naming peers whatever the class is: its
    verdicts are the union of those rules, and its peers can be listed from the rules. Memoized
    per pair of stacks (classes the same layers select share them, for the analysis's life)."""
    stacks = (analysis.stack_for(cid, "Ingress"), analysis.stack_for(cid, "Egress"))
    key = (id(stacks[0]), id(stacks[1]))
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = all(e.simple for stack in stacks for es in stack.values() for e in es)
    return hit


OutsideMemo = dict[tuple[object, ...], list[tuple[Segment, PortSet]]]
"""Outside lines per side's key, shared by classes whose policies treat addresses alike."""


class Candidates:
    """The union of the class sets that a side's rule peers select, kept as the sets themselves.

    Peers are memoized by the analysis and shared by many policies (every namespace's "from
    env=prod" peer is one set); a copied union per policy set would cost memory per namespace.
    """

    __slots__ = ("members", "sets")

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


_GRAPHS: weakref.WeakKeyDictionary[Analysis, ClassGraph] = weakref.WeakKeyDictionary()
"""Each analysis's graph, for as long as the analysis lives."""


class ClassGraph:
    """Allowed connections between pod classes, found from each side's rules instead of pairwise.

    A class that no policy isolates in a direction is *open* there. Open sources reach open destinations with every connection, a block that is
    never enumerated. Every other pair is a candidate only if the restricted side's rule peers
    name the other side (``Analysis.peer_classes``), and candidates get a full verdict. Classes
    under first-match tiers or rules that depend on their subject name every class as a candidate.
    """

    @classmethod
    def of(cls, analysis: Analysis) -> ClassGraph:
        """The analysis's graph, built once: checks, the blast radius and listings share its memos."""
        graph = _GRAPHS.get(analysis)
        if graph is None:
            graph = _GRAPHS[analysis] = cls(analysis)
        return graph

    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.ids: list[int] = [c.id for c in analysis.real_classes() if c.governed]
        self.members = frozenset(self.ids)
        """The governed real classes, as a set."""
        memo: dict[tuple[int, int], bool] = {}
        simple = {cid for cid in self.ids if _simple(analysis, cid, memo)}
        self.open_egress = frozenset(cid for cid in simple if not analysis.is_isolated(cid, "Egress"))
        self.open_ingress = frozenset(cid for cid in simple if not analysis.is_isolated(cid, "Ingress"))
        self._simple = frozenset(simple)
        self._egress_index: tuple[frozenset[int], dict[int, set[int]]] | None = None
        self._candidates: dict[tuple[object, ...], Candidates | None] = {}
        self._egress_memo: dict[tuple[object, ...], PortSet] = {}
        self._allows_memo: dict[tuple[object, ...], bool] = {}
        self._ingress_memo: dict[tuple[object, ...], PortSet] = {}

    def is_simple(self, cid: int) -> bool:
        """Only namespace-tier Allow rules that name peers whatever the class is act on ``cid``."""
        return cid in self._simple

    def candidates(self, cid: int, direction: Direction) -> Candidates | None:
        """Classes the rules of ``cid`` can name in ``direction``; None: possibly any."""
        if cid not in self._simple:
            return None
        policies = self.analysis.stack_for(cid, direction).get("namespace", ())
        if not policies:
            return None
        key = (direction, id(policies))  # the peers depend on the policies, not on the class; one tuple per content (see Analysis._build_stacks)
        if key in self._candidates:
            return self._candidates[key]
        found: dict[int, frozenset[int]] = {}
        anyone = False
        for policy in policies:
            for rule in policy.rules(direction):
                sets = self.analysis.rule_peer_sets(rule)
                if sets is None:
                    anyone = True
                    break
                for classes in sets:
                    if classes:
                        found[id(classes)] = classes
            if anyone:
                break
        hit = self._candidates[key] = None if anyone else Candidates(tuple(found.values()), self.members)
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
        chosen: set[int] | frozenset[int]
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
        ingress_key = self.ingress_key(dst)
        for src in sorted(chosen):
            conns = self.reaches(src, dst, ingress_key)
            if conns:
                out.append((src, conns))
        return out

    def reaches(self, src: int, dst: int, ingress_key: tuple[object, ...] | None = None) -> PortSet:
        """The connections class ``src`` can open to class ``dst``: both sides, every layer."""
        if src in self.open_egress:
            return ALL if dst in self.open_ingress else self.ingress(dst, src, ingress_key)
        egress = self.egress(src, dst)
        return egress if not egress or dst in self.open_ingress else egress & self.ingress(dst, src, ingress_key)

    def ingress_key(self, dst: int) -> tuple[object, ...] | None:
        """What ``dst``'s ingress verdicts depend on besides the source (None: the class itself)."""
        if dst not in self._simple:
            return None
        return (id(self.analysis.stack_for(dst, "Ingress").get("namespace", ())), self.analysis.classes[dst].ports)  # one tuple per content (see Analysis._build_stacks)

    def ingress(self, dst: int, src: int, key: tuple[object, ...] | None = None) -> PortSet:
        """What ``dst``'s ingress side allows from class ``src`` (shared by classes with the same policies and ports)."""
        analysis = self.analysis
        cls = analysis.classes[dst]
        key = key or self.ingress_key(dst)
        if key is None:
            return analysis.side_ports(cls.id, "Ingress", src, cls.ports)
        full = (key, src)
        hit = self._ingress_memo.get(full)
        if hit is None:
            hit = self._ingress_memo[full] = analysis.side_ports(cls.id, "Ingress", src, cls.ports)
        return hit

    def egress(self, src: int, dst: Endpoint) -> PortSet:
        """What ``src``'s egress side allows towards a class or an address (shared by the sources whose
        egress is alike in content: the ports do not depend on which policy object says it)."""
        analysis = self.analysis
        dst_ports = analysis.classes[dst].ports if isinstance(dst, int) else None
        signature = analysis.egress_content(src)
        if signature is None:
            return analysis.side_ports(src, "Egress", dst, dst_ports)
        key = (signature, dst)
        hit = self._egress_memo.get(key)
        if hit is None:
            hit = self._egress_memo[key] = analysis.side_ports(src, "Egress", dst, dst_ports)
        return hit

    def egress_allows(self, src: int, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """Whether ``src``'s egress side allows ``dst`` on one port: `egress`'s answer for the port,
        kept per egress content (the checks ask it of every class, and sources alike share it)."""
        signature = self.analysis.egress_content(src)
        if signature is None:
            return port_in(self.egress(src, dst), port, protocol)
        key = (signature, dst, port, protocol)
        hit = self._allows_memo.get(key)
        if hit is None:
            hit = self._allows_memo[key] = port_in(self.egress(src, dst), port, protocol)
        return hit

    def outside(self, cid: int, direction: Direction, segs: list[Segment], memo: OutsideMemo) -> list[tuple[Segment, PortSet]]:
        """Outside ranges ``cid`` connects to (Egress) or from (Ingress), one per segment."""
        analysis = self.analysis
        cls = analysis.classes[cid]
        if cid in (self.open_egress if direction == "Egress" else self.open_ingress):
            key: tuple[object, ...] = ("open",)
        elif cid in self._simple:
            key = (id(analysis.stack_for(cid, direction).get("namespace", ())), cls.ports if direction == "Ingress" else None)
        else:
            key = ("class", cid)
        key = (direction, key)
        hit = memo.get(key)
        if hit is None:
            ports = cls.ports if direction == "Ingress" else None
            hit = memo[key] = [(seg, conns) for seg in segs if (conns := analysis.side_ports(cls.id, direction, seg.probe, ports))]
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
    memo: OutsideMemo = {}
    by_ref: dict[str, list[int]] = {}
    for cid in graph.ids:
        for ref in refs_of(cid):
            by_ref.setdefault(ref, []).append(cid)
    # Outside sources: per destination workload, its ranges merged where they connect alike.
    into: dict[str, dict[Segment, PortSet]] = {}
    for cid in graph.ids:
        if focus(cid):
            for seg, conns in graph.outside(cid, "Ingress", segs, memo):
                for ref in refs_of(cid):
                    mine = into.setdefault(ref, {})
                    mine[seg] = mine.get(seg, NONE) | conns
    from_outside: dict[str, dict[str, PortSet]] = {}
    for ref, ranges in into.items():
        for seg, conns in merged(list(ranges.items())):
            from_outside.setdefault(seg.text(), {})[ref] = conns
    # Open sources reach every open destination with all connections: one shared block of lines.
    block = dict.fromkeys(sorted(ref for dst in open_dsts for ref in refs_of(dst)), ALL)
    focus_block = block if namespaces is None else dict.fromkeys(
        sorted(ref for dst in open_dsts if focus(dst) for ref in refs_of(dst)), ALL)
    for name in sorted(set(by_ref) | set(from_outside), key=order):
        if name in from_outside:
            lines = from_outside[name]
        else:
            lines = {}
            outside: dict[Segment, PortSet] = {}
            for cid in by_ref[name]:
                focused = focus(cid)
                if cid in graph.open_egress:
                    if lines:
                        for ref in block if focused else focus_block:
                            lines[ref] = ALL
                    else:
                        lines = dict(block if focused else focus_block)
                for dst, conns in explicit.get(cid, ()):
                    for ref in refs_of(dst):
                        lines[ref] = lines.get(ref, NONE) | conns
                if focused:
                    for seg, conns in graph.outside(cid, "Egress", segs, memo):
                        outside[seg] = outside.get(seg, NONE) | conns
            for seg, conns in merged(list(outside.items())):
                lines[seg.text()] = conns
        for target in sorted(lines, key=order):
            if target != name and lines[target]:
                yield Connection(name, target, lines[target])
    yield from _from_ingress_controller(analysis, focus)


def _from_ingress_controller(analysis: Analysis, focus: Callable[[int], bool]) -> list[Connection]:
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
        conns = ports & analysis.side_ports(source.id, "Egress", cid, cls.ports) & analysis.side_ports(cls.id, "Ingress", controller, cls.ports)
        for w in cls.workloads:
            lines[w.pod_ref] = lines.get(w.pod_ref, NONE) | conns
    return [Connection(INGRESS_SOURCE, dst, conns) for dst, conns in sorted(lines.items()) if conns]


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
    segs = segments(analysis)
    memo: OutsideMemo = {}
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
