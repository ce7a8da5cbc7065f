"""The policy stack: every policy kind is a layer, and one walk decides each side of a connection.

What a packet meets on one side (the source's egress or the destination's ingress) is an
ordered stack of tiers:

1. ``admin``: cluster-wide policies before any namespace's (AdminNetworkPolicy by priority,
   ClusterNetworkPolicy of the Admin tier);
2. ``namespace``: Kubernetes NetworkPolicy, with the CNI's own policies beside it at their
   orders (NetworkPolicy at 1000, a CNI's deny rules before every allow where the CNI says so);
3. ``baseline``: cluster-wide defaults for what the namespace tier leaves open;

then the default: allow. Within a tier the layers that select the subject are walked in their
order, their rules in order; the first rule that names the peer decides a port: Allow, Deny, or
Pass (skip the rest of this tier, go on to the next). NetworkPolicy's rules are all Allow, so
first-match over them is their union, wherever their order puts them. The namespace tier
closes: when any of its layers isolates the subject in that direction, what no rule decided
there is denied (NetworkPolicy's "isolated: only what is allowed passes", a CNI's end of tier).

Each kind compiles its objects into layers (``audit.engine.compiled``); nothing here knows a
kind by name. The walk runs over port sets, so connectivity takes the allowed set and
``reach`` the decision that covers one port, from the same evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, Union

from audit.engine.addresses import IPAddress
from audit.engine.compiled import TIERS, Action, CompiledPolicy, CompiledRule, Layer, Tier
from audit.engine.direction import Direction
from audit.engine.ports import ALL, NONE, PortSet
from audit.inventory import ContainerPort

__all__ = ["TIERS", "Action", "Decision", "DstPorts", "Endpoint", "Entry", "Outcome", "Segment", "Tier", "closes", "evaluate"]

Endpoint = Union[int, IPAddress]
"""A pod class id, or an IP address outside the cluster's pods."""
DstPorts = Union[tuple[ContainerPort, ...], None]


class Entry:
    """A policy's layer in the stack: what the walk reads, with the policy it comes from."""

    __slots__ = ("_rules", "closing", "isolating", "key", "kind", "layer", "note", "order", "policy", "simple", "tier", "union")

    def __init__(self, policy: CompiledPolicy, layer: Layer):
        self.policy = policy
        self.layer = layer
        self.key = policy.key
        self.kind = policy.kind
        self.tier: Tier = layer.tier
        self.order = (layer.group, layer.order) if layer.tier == "namespace" else ((0.0, ""), layer.order)
        """Where it is walked in its tier: its group (a CNI tier) first, then its own order."""
        self.note = layer.note
        self.isolating = layer.isolates
        self.closing = layer.isolates if layer.tier == "namespace" and layer.group_closes else ()
        self._rules: dict[Direction, tuple[CompiledRule, ...]] = {"Ingress": (), "Egress": ()}
        self._rules.update(dict(layer.rules))
        self.union = layer.tier == "namespace" and all(r.action == "Allow" for rs in self._rules.values() for r in rs)
        """Only Allow rules in the namespace tier: walking it is the union of the rules that name the peer."""
        self.simple = self.union and not any(r.subject_dependent for rs in self._rules.values() for r in rs)
        """A union whose rules name their peers whatever the subject: the peers can be listed from the rules."""

    def rules(self, direction: Direction) -> tuple[CompiledRule, ...]:
        return self._rules[direction]

    def isolates(self, direction: Direction) -> bool:
        """Whether selecting a pod closes its group of the namespace tier for it (the rest is denied)."""
        return direction in self.closing


class Universe(Protocol):
    """What the walk asks of the analysis: the layers acting on a pod class, and what a rule names."""

    def stack_for(self, cid: int, direction: Direction) -> Mapping[Tier, tuple[Entry, ...]]: ...

    def rule_names(self, rule: CompiledRule, subject: int, other: Endpoint) -> bool: ...

    def rule_ports(self, rule: CompiledRule, dst_ports: DstPorts) -> PortSet: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """A rule that decided a port: which, with what action, in which tier."""

    action: Action
    rule: str
    note: str
    tier: Tier


@dataclass(frozen=True, slots=True)
class Segment:
    """Ports decided alike on one side: allowed or denied, and what decided them.

    ``decision`` is None for the defaults: "isolated, nothing allows it" (denied) and "no tier
    decided" (allowed).
    """

    ports: PortSet
    allowed: bool
    decision: Decision | None
    passed: Decision | None = None
    """A Pass rule that sent these ports on from a higher tier."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One side's evaluation: disjoint segments that together cover every port."""

    segments: tuple[Segment, ...]
    isolated: tuple[Entry, ...]
    """Namespace-tier layers that isolate the subject in this direction."""

    @property
    def allowed(self) -> PortSet:
        out = NONE
        for seg in self.segments:
            if seg.allowed:
                out = out | seg.ports
        return out

    def at(self, port: int, protocol: str) -> Segment:
        """The segment that holds ``port``/``protocol``."""
        for seg in self.segments:
            if any(lo <= port <= hi for lo, hi in seg.ports.as_dict().get(protocol, ())):
                return seg
        raise ValueError(f"{protocol}/{port} is in no segment")  # segments cover every port


def evaluate(universe: Universe, subject: int, direction: Direction, other: Endpoint, dst_ports: DstPorts) -> Outcome:
    """Walk the stack for one side: tiers in order, layers in order, first matching rule per port."""
    tiers = universe.stack_for(subject, direction)
    segments: list[Segment] = []
    scope = ALL
    isolated: tuple[Entry, ...] = ()
    passed_by: dict[PortSet, Decision] = {}
    for tier in TIERS:
        entries = tiers.get(tier, ())
        # The namespace tier holds the CNI's own tiers (groups), walked in order, each closing on its own.
        groups: list[list[Entry]] = []
        for entry in entries:
            if groups and groups[-1][0].order[0] == entry.order[0]:
                groups[-1].append(entry)
            else:
                groups.append([entry])
        for group in groups:
            passed = NONE
            for entry in group:
                for rule in entry.rules(direction):
                    if not scope:
                        break
                    if not universe.rule_names(rule, subject, other):
                        continue
                    ports = universe.rule_ports(rule, dst_ports) & scope
                    if not ports:
                        continue
                    decision = Decision(rule.action, rule.label, entry.note, tier)
                    if rule.action == "Pass":
                        passed = passed | ports
                        passed_by[ports] = decision
                    else:
                        segments += _split(ports, rule.action == "Allow", decision, passed_by)
                    scope = scope - ports
            if tier == "namespace":
                closing = tuple(e for e in group if e.isolates(direction))
                isolated += closing
                if closing and scope:
                    segments += _split(scope, False, None, passed_by)
                    scope = NONE
            scope = scope | passed
    if scope:
        segments += _split(scope, True, None, passed_by)
    return Outcome(tuple(s for s in segments if s.ports), isolated)


def _split(ports: PortSet, allowed: bool, decision: Decision | None, passed_by: dict[PortSet, Decision]) -> list[Segment]:
    """Segments for ``ports`` decided alike, one per Pass rule that sent some of them on."""
    out = []
    for passed, by in passed_by.items():
        part = ports & passed
        if part:
            out.append(Segment(part, allowed, decision, by))
            ports = ports - passed
    if ports:
        out.append(Segment(ports, allowed, decision, None))
    return out


def closes(entry: Entry, direction: Direction) -> bool:
    """Whether the layer, on its own, denies what nothing else allows for the pods it selects:
    the namespace tier by isolating them; an admin or baseline layer when its first rule for
    every peer on every port is Deny."""
    if entry.tier == "namespace":
        return entry.isolates(direction)
    first = next((r for r in entry.rules(direction) if r.everyone), None)
    return first is not None and first.action == "Deny"
