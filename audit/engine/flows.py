"""Policies against observed traffic: what breaks, what is never used, where traffic is unsegmented.

Flows are mapped to the analysis's pod classes (by namespace and pod name, else by IP through
the inventory, else as outside addresses) and aggregated per (source, destination, port,
protocol) before anything is evaluated, so a million flows cost one verdict per distinct pair.
Outside addresses aggregate per connectivity segment (address ranges every ipBlock treats
alike), so aggregation is bounded by the policies, not by the number of addresses seen.
Unmapped flows are counted per reason and listed, never dropped.
"""

from __future__ import annotations

import bisect
import heapq
import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from audit.engine.analysis import Analysis, Endpoint
from audit.engine.compiled import CompiledRule
from audit.engine.connectivity import ClassGraph, Segment, segments
from audit.engine.direction import Direction
from audit.engine.labelsfilter import identity_label
from audit.engine.pairs import MAX_IPS as MAX_IPS
from audit.engine.pairs import End as End
from audit.engine.pairs import Key, Pairs, Verdicts, encode, stamp_micros
from audit.engine.pairs import Outside as Outside
from audit.engine.pairs import Tally as Tally
from audit.engine.verdict import Verdict, port_in
from audit.gcpause import gc_paused
from audit.observed import TOP, Flow, FlowEnd, FlowGroups

T = TypeVar("T")
MAX_UNMAPPED = 50
MAX_PLACED = 500_000
MAX_EXPLAINED = 1000
"""Denied rows that carry their rule chain (most flows first): an explanation costs a full walk of both sides."""


@dataclass
class Traffic:
    """Observed flows, aggregated and mapped; what could not be mapped, counted and sampled."""

    pairs: Pairs = field(default_factory=Pairs)
    total: Tally = field(default_factory=Tally)
    """Every flow read, placed or not: the window."""
    unmapped: dict[str, int] = field(default_factory=dict)
    """Flows not placed, by reason."""
    unmapped_examples: list[str] = field(default_factory=list)
    outside_only: int = 0
    """Flows between two outside addresses: no pod of the cluster is on either end."""
    answers: dict[tuple[object, ...], tuple[Analysis, FlowMapper, Any]] = field(default_factory=dict)
    """Each answer computed once per (analysis, mapper): the checks and the report ask alike (see ``_answer``)."""

    @property
    def flows(self) -> int:
        return self.total.count

    @property
    def dropped(self) -> int:
        return self.total.dropped

    @property
    def first(self) -> str | None:
        return self.total.first

    @property
    def last(self) -> str | None:
        return self.total.last


class FlowMapper:
    """Places capture ends on the analysis's pod classes or outside segments (indexes built once)."""

    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.by_name: dict[tuple[str, str], list[int]] = {}
        self.by_ip: dict[str, int] = {}
        for cls in analysis.real_classes():
            if not cls.governed:
                continue
            for w in cls.workloads:
                names = {w.name} | ({w.controller.split("/", 1)[1]} if w.controller else set())
                for name in names:
                    ids = self.by_name.setdefault((cls.namespace, name), [])
                    if cls.id not in ids:
                        ids.append(cls.id)
                for ip in w.ips:
                    self.by_ip.setdefault(_canonical(ip), cls.id)
        self.segments: list[Segment] = segments(analysis)
        if not any(s.version == 6 for s in self.segments):
            # No policy names an IPv6 block: every IPv6 address is treated alike, one range (the
            # connectivity listing leaves it out; a dual-stack capture still has such flows).
            self.segments.append(Segment(6, 0, 2**128 - 1))
        self._starts = {v: [s.first for s in self.segments if s.version == v] for v in (4, 6)}
        self._index = {v: [i for i, s in enumerate(self.segments) if s.version == v] for v in (4, 6)}
        self._placed: dict[FlowEnd, tuple[list[End], str | None]] = {}
        self._names: dict[int, str] = {}
        self._shown: dict[int, frozenset[tuple[str, str]]] = {}

    def place(self, end: FlowEnd) -> tuple[list[End], str | None]:
        """The ends a capture end stands for (usually one), or ([], why not); memoized: a capture
        names the same pods again and again."""
        hit = self._placed.get(end)
        if hit is None:
            hit = self._placed[end] = self.locate(end)
            # Bounded: a capture of many distinct outside addresses.
            if len(self._placed) > MAX_PLACED:
                self._placed.clear()
        return hit

    def forget(self) -> None:
        """Drop the ends placed so far: a capture is read once, and its distinct ends with their
        labels (150,000 at 150,000 pods: about 190 MB) would outlive it for nothing."""
        self._placed.clear()

    def locate(self, end: FlowEnd) -> tuple[list[End], str | None]:
        """``place`` without the memo: for ends met once (a grouping engine's distinct ends)."""
        if end.namespace and (end.name or end.workload):
            ids = self._workload_classes(end)
            if ids:
                return list(ids), None
            dns = self._dns(end)
            if dns is not None:
                return [dns], None
            if end.ip is None or _canonical(end.ip) not in self.by_ip:
                # A pod by the capture's word, not in the inventory (stale, or another cluster): never an outside address.
                return [], f"no pod or workload {end.namespace}/{end.name or end.workload} in the inventory"
        if end.ip:
            cid = self.by_ip.get(_canonical(end.ip))
            if cid is not None:
                return [cid], None
            try:
                ip = ipaddress.ip_address(end.ip)
            except ValueError:
                return [], f"{end.ip!r} is not an IP address"
            starts = self._starts[ip.version]
            at = bisect.bisect_right(starts, int(ip)) - 1
            if at < 0:
                return [], f"no segment holds {ip}"
            return [("outside", self._index[ip.version][at])], None
        return [], "neither a pod nor an IP address"

    def _dns(self, end: FlowEnd) -> int | None:
        """The cluster DNS pods when the inventory has none of its own (the analysis assumes them):
        a pod of the DNS namespace with the DNS labels, or named as CoreDNS and kube-dns pods are."""
        target = self.analysis.dns_target
        if end.namespace != target.namespace or not self.analysis.dns_classes:
            return None
        labels = dict(end.labels)
        named = (end.workload or end.name or "").startswith(("coredns", "kube-dns"))
        if named or (target.labels and all(labels.get(k) == v for k, v in target.labels)):
            return self.analysis.dns_classes[0]
        return None

    def _workload_classes(self, end: FlowEnd) -> list[int]:
        """Classes of the pod's workload (a pod name with its generated suffixes stripped), narrowed
        to the one whose labels the capture shows, or to the pod's IP, when it has several."""
        assert end.namespace is not None
        ids: list[int] = []
        for name in filter(None, (end.workload, end.name)):
            # <deployment>-<hash>-<id>, <statefulset>-<n>, <daemonset>-<id>: the name, then cut of its
            # last one and two "-" parts (never of all of them)
            ids = self.by_name.get((end.namespace, name), [])
            cut = name.rfind("-")
            if not ids and cut >= 0:
                ids = self.by_name.get((end.namespace, name[:cut]), [])
                cut = name.rfind("-", 0, cut)
                if not ids and cut >= 0:
                    ids = self.by_name.get((end.namespace, name[:cut]), [])
            if ids:
                break
        if len(ids) > 1 and end.labels:
            ids = self._fitting(ids, end.labels)
        if len(ids) > 1 and end.ip:
            cid = self.by_ip.get(_canonical(end.ip))
            if cid in ids:
                ids = [cid]
        return ids

    def _fitting(self, ids: list[int], labels: tuple[tuple[str, str], ...]) -> list[int]:
        """The classes of ``ids`` whose pods a capture showing ``labels`` may be.

        A capture shows a pod's identity labels (Cilium's label filter drops pod-template-hash,
        statefulset.kubernetes.io/pod-name, ...): a class fits when it has identity labels (a
        labelled pod is no pod of a class without) and the capture shows every one of them; of
        those, the classes that show the most are the pod's (all of ``ids`` when none fits). A
        label the capture repeats counts with its last value, as a mapping reads it."""
        shown = dict(labels).items()
        most, best = 0, []
        for c in ids:
            identity = self._identity(c)
            if identity and len(identity) >= most and identity <= shown:
                if len(identity) > most:
                    most, best = len(identity), [c]
                else:
                    best.append(c)
        return best or ids

    def _identity(self, cid: int) -> frozenset[tuple[str, str]]:
        """A class's identity labels (what a capture shows of its pods), once per class."""
        shown = self._shown.get(cid)
        if shown is None:
            shown = self._shown[cid] = frozenset((k, v) for k, v in self.analysis.classes[cid].label_map.items() if identity_label(k))
        return shown

    def endpoint(self, end: End) -> Endpoint:
        """What the engine evaluates for an end: the class, or the first address of the segment."""
        return end if isinstance(end, int) else self.segments[end[1]].probe

    def describe(self, end: End, tally: Tally | None = None, side: str = "") -> str:
        if isinstance(end, int):
            text = self._names.get(end)
            if text is None:
                text = self._names[end] = ", ".join(self.analysis.classes[end].refs[:3])
            return text
        seen = sorted(tally.seen(side)) if tally else []
        return ", ".join(seen[:3]) + (f" (+{len(seen) - 3})" if len(seen) > 3 else "") if seen else self.segments[end[1]].text()


def _canonical(ip: str) -> str:
    if ":" not in ip:
        return ip  # IPv4 has one written form (leading zeros are refused): parsing would give it back
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


@gc_paused()
def aggregate(mapper: FlowMapper, items: Iterable[Flow | FlowGroups]) -> Traffic:
    """Every flow placed and added to its (source, destination, port, protocol) tally: flows one by
    one, groups through their engine (each distinct end placed once here, the totals summed there)."""
    traffic = Traffic()
    examples: list[tuple[tuple[str, str, int, str], str]] = []
    for item in items:
        if isinstance(item, Flow):
            _add_flow(mapper, traffic, item, examples)
        else:
            _add_groups(mapper, traffic, item, examples)
    traffic.unmapped_examples = [text for _, text in sorted(set(examples))[:MAX_UNMAPPED]]
    mapper.forget()
    return traffic


def _example(examples: list[tuple[tuple[str, str, int, str], str]], src: FlowEnd, dst: FlowEnd, port: int, protocol: str, why: str) -> None:
    """Keep the unplaced flows that come first by (source, destination, port, protocol) as text:
    the same examples whatever order the flows are read in."""
    examples.append(((src.text(), dst.text(), port, protocol), f"{src.text()} -> {dst.text()} {port}/{protocol}: {why}"))
    if len(examples) > 4 * MAX_UNMAPPED:
        examples[:] = sorted(set(examples))[:MAX_UNMAPPED]


def _add_flow(mapper: FlowMapper, traffic: Traffic, flow: Flow, examples: list[tuple[tuple[str, str, int, str], str]]) -> None:
    start, end = stamp_micros(flow.first), stamp_micros(flow.last)
    dropped = flow.count if flow.dropped else 0
    traffic.total.merge_us(flow.count, dropped, start, end)
    srcs, why_src = mapper.place(flow.src)
    dsts, why_dst = mapper.place(flow.dst)
    if not srcs or not dsts:
        why = f"source {why_src}" if not srcs else f"destination {why_dst}"
        traffic.unmapped[why] = traffic.unmapped.get(why, 0) + flow.count
        _example(examples, flow.src, flow.dst, flow.port, flow.protocol, why)
        return
    if all(not isinstance(e, int) for e in srcs + dsts):
        traffic.outside_only += flow.count
        return
    for src in srcs:
        for dst in dsts:
            traffic.pairs.add(encode(src), encode(dst), flow.port, flow.protocol, flow.count, dropped, start, end,
                              (flow.src.ip,) if not isinstance(src, int) and flow.src.ip else (),
                              (flow.dst.ip,) if not isinstance(dst, int) and flow.dst.ip else ())


def _add_groups(mapper: FlowMapper, traffic: Traffic, groups: FlowGroups, examples: list[tuple[tuple[str, str, int, str], str]]) -> None:
    """Grouped flows: each distinct end placed once; the engine totals the groups per placed pair."""
    count, dropped, first, last = groups.total()
    traffic.total.merge(count, dropped, first, last)
    ends = groups.ends()
    placed = [mapper.locate(end) for end in ends]
    codes = [[encode(e) for e in targets] for targets, _ in placed]
    placement = groups.place(codes)
    for side, at, flows in placement.blamed:
        why = f"{side} {placed[at][1]}"
        traffic.unmapped[why] = traffic.unmapped.get(why, 0) + flows
    for se, de, port, protocol in placement.examples:
        why = f"source {placed[se][1]}" if not codes[se] else f"destination {placed[de][1]}"
        _example(examples, ends[se], ends[de], port, protocol, why)
    traffic.outside_only += placement.outside_only
    # Placed pairs are one row each: into an empty table they go in as columns, without a lookup.
    new = not traffic.pairs
    for batch in placement.pairs:
        if new:
            traffic.pairs.extend(batch)
            continue
        for src, dst, port, protocol, flows, dropped, start, end, src_ips, dst_ips in batch:
            traffic.pairs.add(src, dst, port, protocol, flows, dropped, start, end, tuple(src_ips or ()), tuple(dst_ips or ()))


# -- the questions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Denied:
    """Observed flows the policies deny, with what denies them."""

    src: str
    dst: str
    port: int
    protocol: str
    count: int
    dropped: int
    first: str | None
    last: str | None
    why: tuple[str, ...]


def allowed(analysis: Analysis, mapper: FlowMapper, traffic: Traffic) -> Verdicts:
    """Whether the policies allow each observed (source, destination, port, protocol), computed
    once per analysis: pod pairs from the class graph's port sets (shared per egress signature
    and ingress key), anything else from the stack's walk."""
    return _answer(traffic, analysis, mapper, ("allowed",), lambda: _allowed(analysis, mapper, traffic))


def _allowed(analysis: Analysis, mapper: FlowMapper, traffic: Traffic) -> Verdicts:
    graph = ClassGraph.of(analysis)
    pairs = traffic.pairs
    out = bytearray(len(pairs))  # a byte per row: a dict of millions of keys is hundreds of MB
    for at in range(len(pairs)):
        (src, dst, port, protocol), _ = pairs.row(at)
        if isinstance(src, int) and isinstance(dst, int) and src in graph.members and dst in graph.members:
            out[at] = port_in(graph.reaches(src, dst), port, protocol)
        else:
            out[at] = analysis.allowed(mapper.endpoint(src), mapper.endpoint(dst), port, protocol).allowed
    return Verdicts(pairs, out)


def _answer(traffic: Traffic, analysis: Analysis, mapper: FlowMapper, key: tuple[object, ...], compute: Callable[[], T]) -> T:
    """``compute()`` once per (analysis, mapper, key) for this traffic. The analysis and mapper are
    kept beside the answer: an id reused by a freed object never finds another's answer."""
    full = (*key, id(analysis), id(mapper))
    hit = traffic.answers.get(full)
    if hit is not None and hit[0] is analysis and hit[1] is mapper:
        answer: T = hit[2]
        return answer
    value = compute()
    traffic.answers[full] = (analysis, mapper, value)
    return value


def verdict(analysis: Analysis, mapper: FlowMapper, key: Key) -> Verdict:
    """The full verdict of one observed (source, destination, port, protocol), with what decided each side."""
    return analysis.allowed(mapper.endpoint(key[0]), mapper.endpoint(key[1]), key[2], key[3])


@dataclass(frozen=True, slots=True)
class WouldBreak:
    """Observed flows the policies deny: the rows (one per workload pair and port, most flows
    first, the first ``top`` when cut) and the totals over every row, kept or not."""

    rows: tuple[Denied, ...]
    total: int
    """Rows before the cut."""
    flows: int
    dropped: int


@gc_paused()
def would_break(analysis: Analysis, mapper: FlowMapper, traffic: Traffic, explained: int = MAX_EXPLAINED, top: int = TOP) -> WouldBreak:
    """Observed flows that ``analysis``'s policies deny, one row per workload pair and port, most
    flows first, the first ``top`` of them (0: every one) with the totals of all; the first
    ``explained`` rows carry the rule chain of each side (as `reach` explains it), the rest say
    how to ask for it."""
    return _answer(traffic, analysis, mapper, ("would_break", explained, top), lambda: _would_break(analysis, mapper, traffic, explained, top))


def _would_break(analysis: Analysis, mapper: FlowMapper, traffic: Traffic, explained: int, top: int) -> WouldBreak:
    # A row is a text pair, port and protocol (two classes of one workload are one row), named by
    # one number while the rows are counted: a capture of random pairs denies millions of rows,
    # and only the first ``top`` are ever written out. Two passes over the denied pairs: the
    # first counts each row's flows, the second totals the rows kept.
    ids: dict[str, int] = {}
    texts: list[str] = []
    protocols: list[str] = []

    def text_id(text: str) -> int:
        at = ids.get(text)
        if at is None:
            at = ids[text] = len(texts)
            texts.append(text)
        return at

    pairs = traffic.pairs
    judged = allowed(analysis, mapper, traffic).by_row

    def denied() -> Iterator[tuple[int, int]]:
        """(pair, the number of its row) of every denied pair."""
        for at in range(len(pairs)):
            if judged[at]:
                continue
            (src, dst, port, protocol), _ = pairs.row(at)
            tally = None if isinstance(src, int) and isinstance(dst, int) else pairs.tally(at)  # outside addresses name a row
            if protocol not in protocols:
                protocols.append(protocol)
            name = ((text_id(mapper.describe(src, tally, "src")) << 32 | text_id(mapper.describe(dst, tally, "dst"))) << 16 | port) << 8
            yield at, name | protocols.index(protocol)

    def parts(name: int) -> tuple[str, str, int, str]:
        return texts[name >> 56], texts[name >> 24 & 0xFFFFFFFF], name >> 8 & 0xFFFF, protocols[name & 0xFF]

    counts: dict[int, int] = {}
    flows = dropped = 0
    for at, name in denied():
        count, dropped_here = pairs.flows(at)
        counts[name] = counts.get(name, 0) + count
        flows += count
        dropped += dropped_here

    def rank(name: int) -> tuple[int, str, str, int, str]:
        return (-counts[name], *parts(name))

    chosen = heapq.nsmallest(top, counts, key=rank) if 0 < top < len(counts) else sorted(counts, key=rank)
    kept = {name: Tally() for name in chosen}
    explain: dict[int, Key] = {}  # each row's (source, destination, port, protocol) explained: its first in _order
    for at, name in denied():
        tally = kept.get(name)
        if tally is None:
            continue
        row = pairs.tally(at)
        tally.merge_us(row.count, row.dropped, row.start, row.end)
        key, _ = pairs.row(at)
        if name not in explain or _order(key) < _order(explain[name]):
            explain[name] = key
    rows = []
    for i, name in enumerate(chosen):
        src, dst, port, protocol = parts(name)
        t = kept[name]
        why = (tuple(verdict(analysis, mapper, explain[name]).explain_lines()) if i < explained else
               (f"not explained past the first {explained} rows: netpol-audit reach {src.split(', ')[0].split('[')[0]} "
                f"{dst.split(', ')[0].split('[')[0]} -p {port}/{protocol}",))
        rows.append(Denied(src, dst, port, protocol, t.count, t.dropped, t.first, t.last, why))
    return WouldBreak(tuple(rows), len(counts), flows, dropped)


def _order(key: Key) -> tuple[object, ...]:
    def one(end: End) -> tuple[int, int]:
        return (0, end) if isinstance(end, int) else (1, end[1])

    return (one(key[0]), one(key[1]), key[2], key[3])


@dataclass(frozen=True)
class RuleUse:
    """One allow rule, of any kind, against the traffic: how much of what it allows was used."""

    policy: str
    namespace: str | None
    kind: str
    name: str
    rule: str
    flows: int
    peers_used: int
    peers_allowed: int | None
    """Pod classes (and outside ranges) it admits; None: every peer, addresses included."""
    ports_used: tuple[str, ...]
    ports_allowed: str


@gc_paused()
def rule_use(analysis: Analysis, mapper: FlowMapper, traffic: Traffic) -> list[RuleUse]:
    """Every Allow rule, of every kind, with the flows that exercised it (a flow exercises an Allow
    rule of a policy acting on its side when the rule names the other end and covers the port)."""
    return _answer(traffic, analysis, mapper, ("rule_use",), lambda: _rule_use(analysis, mapper, traffic))


def _rule_use(analysis: Analysis, mapper: FlowMapper, traffic: Traffic) -> list[RuleUse]:
    used: dict[int, _Use] = {}
    pairs = traffic.pairs
    judged = allowed(analysis, mapper, traffic).by_row
    for row in range(len(pairs)):
        if not judged[row]:
            continue
        (src, dst, port, protocol), count = pairs.row(row)
        dst_ports = analysis.classes[dst].ports if isinstance(dst, int) else None
        sides: tuple[tuple[Direction, End, End], ...] = (("Ingress", dst, src), ("Egress", src, dst))
        for direction, subject, other in sides:
            if not isinstance(subject, int):
                continue
            endpoint = mapper.endpoint(other)
            for entries in analysis.stack_for(subject, direction).values():
                for entry in entries:
                    for rule in entry.rules(direction):
                        if (rule.action == "Allow" and port_in(analysis.rule_ports(rule, dst_ports), port, protocol)
                                and analysis.rule_names(rule, subject, endpoint)):
                            use = used.setdefault(id(rule), _Use())
                            use.flows += count
                            use.peers.add(other)
                            use.ports.add(f"{protocol}/{port}")
    out = []
    for policy in analysis.policies:
        for rule in policy.rules:
            if rule.action != "Allow":
                continue
            use = used.get(id(rule), _Use())
            out.append(RuleUse(policy.key, policy.namespace, policy.display_kind, policy.name, rule.field, use.flows, len(use.peers),
                               _peer_count(analysis, rule), tuple(sorted(use.ports)), _ports_text(rule)))
    return out


@dataclass
class _Use:
    flows: int = 0
    peers: set[End] = field(default_factory=set)
    ports: set[str] = field(default_factory=set)


def _peer_count(analysis: Analysis, rule: CompiledRule) -> int | None:
    sets = analysis.rule_peer_sets(rule)
    if sets is None or any(p.names_addresses for p in rule.peers):
        return None
    return len(frozenset().union(*sets))


def _ports_text(rule: CompiledRule) -> str:
    return "every port" if rule.every_protocol_port else rule.port_text


@dataclass(frozen=True)
class Unsegmented:
    """A workload with observed traffic in a direction no policy isolates."""

    namespace: str
    workload: str
    direction: str
    peers: int
    flows: int


@gc_paused()
def unsegmented(analysis: Analysis, mapper: FlowMapper, traffic: Traffic) -> list[Unsegmented]:
    """Workloads with traffic and no isolation in that direction, most distinct peers first."""
    return _answer(traffic, analysis, mapper, ("unsegmented",), lambda: _unsegmented(analysis, mapper, traffic))


def _unsegmented(analysis: Analysis, mapper: FlowMapper, traffic: Traffic) -> list[Unsegmented]:
    peers: dict[tuple[int, str], set[End]] = {}
    flows: dict[tuple[int, str], int] = {}
    pairs = traffic.pairs
    for row in range(len(pairs)):
        (src, dst, _port, _proto), count = pairs.row(row)
        sides: tuple[tuple[End, End, Direction], ...] = ((dst, src, "Ingress"), (src, dst, "Egress"))
        for subject, other, direction in sides:
            if isinstance(subject, int) and not analysis.is_isolated(subject, direction):
                peers.setdefault((subject, direction), set()).add(other)
                flows[(subject, direction)] = flows.get((subject, direction), 0) + count
    out = [Unsegmented(analysis.classes[c].namespace, _workload_names(analysis, c), d, len(p), flows[(c, d)]) for (c, d), p in peers.items()]
    return sorted(out, key=lambda u: (-u.peers, -u.flows, u.namespace, u.workload, u.direction))


def _workload_names(analysis: Analysis, cid: int) -> str:
    cls = analysis.classes[cid]
    if not cls.workloads:
        return "(the cluster DNS pods, assumed)" if cid in analysis.dns_classes else "(no workload)"
    return ", ".join(w.name for w in cls.workloads[:3]) + (f" (+{len(cls.workloads) - 3})" if len(cls.workloads) > 3 else "")
