"""Which classes of a pool can open a connection to a destination on one port: by class sets.

The question behind the cross-environment check ("can any staging pod reach this database
port?") is answered exactly, never by sampling sources, and without walking source x
destination pairs:

* the destination's ingress side, when only namespace-tier Allow rules that list their peers
  act on it, is the union of the peer sets of the rules that cover the port (a few frozenset
  intersections in C);
* sources are grouped by egress signature (classes whose egress verdicts are the same), and
  a group is only considered when its egress rules can name the destination at all (an index
  from each peer set's members to the groups whose rules use it); one egress verdict per
  group and destination decides the whole group.

What cannot be listed (admin, Cilium or Calico rules, rules that depend on the subject) falls
back to full verdicts for exactly the candidate sources, so the answer stays exact.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping

from audit.engine.connectivity import ClassGraph
from audit.engine.stack import DstPorts, Entry, Tier
from audit.engine.verdict import port_in

SigKey = tuple[object, ...]


class _Pool:
    """The index of one source pool: open sources, egress groups, and which groups name a class."""

    __slots__ = ("anywhere", "disjoint", "groups", "named", "open", "open_sorted", "pool")

    def __init__(self, graph: ClassGraph, pool: frozenset[int]):
        analysis = graph.analysis
        self.pool = pool
        self.disjoint: dict[int, bool] = {}
        """Per peer set (by id): whether it holds no class of the pool."""
        self.open = frozenset(graph.open_egress & pool)
        self.open_sorted = sorted(self.open)
        members: dict[SigKey, list[int]] = {}
        for cid in sorted((pool & graph.members) - self.open):
            sig = analysis.egress_signature(cid)
            members.setdefault(("class", cid) if sig is None else sig, []).append(cid)
        self.groups = {key: (group, frozenset(group)) for key, group in members.items()}
        """Per egress signature: its classes (sorted) and the same as a set."""
        self.anywhere: list[SigKey] = []
        # Per peer set (by identity: the analysis memoizes them), the groups whose rules use it.
        by_set: dict[int, tuple[frozenset[int], list[SigKey]]] = {}
        for key, (group, _) in self.groups.items():
            found = graph.candidates(group[0], "Egress")
            if found is None:
                self.anywhere.append(key)
                continue
            for classes in found.sets:
                by_set.setdefault(id(classes), (classes, []))[1].append(key)
        self.named: dict[int, list[SigKey]] = {}
        named = self.named
        for classes, keys in by_set.values():
            for cid in classes:  # most classes are in one set: its list is shared, never changed in place
                held = named.get(cid)
                named[cid] = keys if held is None else held + keys

    def groups_naming(self, dst: int) -> Iterable[SigKey]:
        """Egress groups of the pool whose rules may name ``dst`` (each once, in a stable order)."""
        seen: set[SigKey] = set()
        for key in (*self.anywhere, *self.named.get(dst, ())):
            if key not in seen:
                seen.add(key)
                yield key


def _common(a: frozenset[int], b: frozenset[int]) -> int | None:
    """One class in both sets (the same one for the same sets), found from the smaller side."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return next(filter(large.__contains__, small), None)


_EXPOSURES: weakref.WeakKeyDictionary[ClassGraph, Exposure] = weakref.WeakKeyDictionary()
"""Each graph's exposure index, for as long as the graph lives."""


class Exposure:
    """Answers `source_of` for many destinations against a few pools, sharing every index."""

    def __init__(self, graph: ClassGraph):
        self.graph = graph
        self._pools: dict[frozenset[int], _Pool] = {}
        self._by_id: dict[int, tuple[frozenset[int], _Pool]] = {}
        self._common: dict[tuple[int, int], int | None] = {}  # (id(peer set), id(group)) -> a class in both
        self._admitted_memo: dict[tuple[object, ...], tuple[frozenset[int], ...] | None] = {}
        self._named: dict[int, bool] = {}  # id(ingress stack) -> whether its admitting rules name a port
        self._refused: dict[tuple[int, int], bool] = {}  # (id(admitted sets), id(pool index)) -> none of the pool admitted

    @classmethod
    def of(cls, graph: ClassGraph) -> Exposure:
        """The analysis's instance: checks asking about the same pools share its indexes."""
        hit = _EXPOSURES.get(graph)
        if hit is None:
            hit = _EXPOSURES[graph] = cls(graph)
        return hit

    def _pool(self, pool: frozenset[int]) -> _Pool:
        # By identity first: a pool is a set of up to every class, and comparing an equal set
        # made anew costs a walk of it; callers pass the same set object again and again.
        known = self._by_id.get(id(pool))
        if known is not None and known[0] is pool:
            return known[1]
        hit = self._pools.get(pool)
        if hit is None:
            hit = self._pools[pool] = _Pool(self.graph, pool)
        self._by_id[id(pool)] = (pool, hit)
        return hit

    def _admitted(self, dst: int, port: int, protocol: str) -> tuple[frozenset[int], ...] | None:
        """The peer sets the destination's ingress rules admit on the port (() when none does);
        None when they cannot be listed, so each source needs its own verdict."""
        graph, analysis = self.graph, self.graph.analysis
        if not graph.is_simple(dst):
            return None
        cls = analysis.classes[dst]
        stack = analysis.stack_for(dst, "Ingress")
        # The answer depends on the stack (shared by classes the same layers select), and on the
        # destination's own ports only where a rule names one (resolved against them).
        named = self._named.get(id(stack))
        if named is None:
            named = self._named[id(stack)] = any(
                isinstance(p.port, str) for policy in stack.get("namespace", ()) for rule in policy.rules("Ingress")
                for p in (*(rule.ports or ()), *(rule.not_ports or ())))
        key = (id(stack), cls.ports if named else None, port, protocol)
        if key in self._admitted_memo:
            return self._admitted_memo[key]
        found = self._admitted_memo[key] = self._admitting(stack, cls.ports, port, protocol)
        return found

    def _admitting(self, stack: Mapping[Tier, tuple[Entry, ...]], ports: DstPorts, port: int, protocol: str) -> tuple[frozenset[int], ...] | None:
        """`_admitted` for a destination's ingress stack and ports."""
        analysis = self.graph.analysis
        sets: list[frozenset[int]] = []
        for policy in stack.get("namespace", ()):
            for rule in policy.rules("Ingress"):
                if not port_in(analysis.rule_ports(rule, ports), port, protocol):
                    continue
                peers = analysis.rule_peer_sets(rule)
                if peers is None:
                    return None
                sets.extend(s for s in peers if s)
        return tuple(sets)

    @staticmethod
    def _meets(classes: frozenset[int], index: _Pool) -> bool:
        """Whether a peer set holds a class of the pool (memoized per peer set: the analysis keeps them)."""
        apart = index.disjoint.get(id(classes))
        if apart is None:
            apart = index.disjoint[id(classes)] = classes.isdisjoint(index.pool)
        return not apart

    def _in_both(self, admitted: tuple[frozenset[int], ...], group: frozenset[int]) -> int | None:
        """A class of ``group`` that one of the ``admitted`` sets holds (memoized per pair of sets:
        peer sets and groups are shared by many destinations)."""
        for classes in admitted:
            key = (id(classes), id(group))
            if key not in self._common:
                self._common[key] = _common(classes, group)
            hit = self._common[key]
            if hit is not None:
                return hit
        return None

    def source_of(self, dst: int, port: int, pool: frozenset[int], protocol: str = "TCP") -> int | None:
        """A class of ``pool`` that can open a connection to class ``dst`` on ``port`` (both sides,
        every layer), or None when none can. Deterministic: the same input gives the same class."""
        graph = self.graph
        index = self._pool(pool)
        open_ingress = dst in graph.open_ingress
        admitted = None if open_ingress else self._admitted(dst, port, protocol)
        if admitted is not None:
            # Whether the sets admit nobody of the pool: the same for every destination that shares
            # them (the admitted tuples are memoized, so their identity stands for them).
            pair = (id(admitted), id(index))
            refused = self._refused.get(pair)
            if refused is None:
                refused = self._refused[pair] = not any(self._meets(classes, index) for classes in admitted)
            if refused:
                return None  # the destination's ingress admits nobody of the pool on the port
        ingress_key = graph.ingress_key(dst)

        def let_in(candidates: Iterable[int]) -> int | None:
            """The first candidate the destination's own verdict lets in on the port."""
            if open_ingress:
                return next(iter(candidates), None)
            return next((s for s in candidates if port_in(graph.ingress(dst, s, ingress_key), port, protocol)), None)

        # Sources no egress policy restricts: only the destination's side decides.
        if index.open:
            hit = let_in(index.open_sorted) if admitted is None else self._in_both(admitted, index.open)
            if hit is not None:
                return hit
        # Restricted sources: one egress verdict per group whose rules can name the destination.
        for key in index.groups_naming(dst):
            group, members = index.groups[key]
            if admitted is not None and self._in_both(admitted, members) is None:
                continue
            if port_in(graph.egress(group[0], dst), port, protocol):
                hit = let_in(group) if admitted is None else self._in_both(admitted, members)
                if hit is not None:
                    return hit
        return None
