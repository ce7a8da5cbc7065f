"""The policy stack: every policy kind is a layer, and one walk decides each side of a connection.

What a packet meets on one side (the source's egress or the destination's ingress) is an
ordered stack of tiers:

1. ``admin``: AdminNetworkPolicy (by priority) and ClusterNetworkPolicy ``tier: Admin``;
2. ``namespace``: Kubernetes NetworkPolicy, with the CNI's own policies beside it (Calico
   orders, NetworkPolicy at order 1000; Cilium deny rules before every allow);
3. ``baseline``: BaselineAdminNetworkPolicy and ClusterNetworkPolicy ``tier: Baseline``;

then the default: allow. Within a tier the policies that select the subject are walked in
their order, their rules in order; the first rule that names the peer decides a port: Allow,
Deny, or Pass (skip the rest of this tier, go on to the next). NetworkPolicy's rules are all
Allow, so first-match over them is their union, wherever their order puts them. The namespace tier closes:
when any of its policies isolates the subject in that direction, what no rule decided there
is denied (NetworkPolicy's "isolated: only what is allowed passes", Calico's end of tier).

Each kind compiles its objects into `StackPolicy` objects (see ``audit.engine.kinds``);
nothing here knows a kind by name. The walk runs over port sets, so connectivity takes the
allowed set and ``reach`` the decision that covers one port, from the same evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, Union

from audit.engine.addresses import IPAddress, IPNetwork
from audit.engine.direction import Direction
from audit.engine.ports import ALL, NONE, PortSet
from audit.inventory import ContainerPort, SourceRef

if TYPE_CHECKING:
    from audit.engine.analysis import Analysis

Tier = Literal["admin", "namespace", "baseline"]
TIERS: tuple[Tier, ...] = ("admin", "namespace", "baseline")
Action = Literal["Allow", "Deny", "Pass"]
Endpoint = Union[int, IPAddress]
"""A pod class id, or an IP address outside the cluster's pods."""
DstPorts = Union[tuple[ContainerPort, ...], None]


class StackRule(Protocol):
    """One rule of a compiled policy, in one direction."""

    action: Action
    label: str
    """How an explanation names it: ``Kind/name ingress[0] (rule name)``."""
    everyone: bool
    """It names every cluster pod (and maybe every address) on every port."""
    subject_dependent: bool
    """Whether ``names`` also depends on the subject (not only on the peer)."""

    def names(self, analysis: Analysis, subject: int, other: Endpoint) -> bool:
        """Whether the rule applies between ``subject`` (the side's pod) and ``other`` (the peer)."""

    def ports(self, dst_ports: DstPorts) -> PortSet:
        """What the rule covers, resolved against the destination's container ports."""

    def describe(self) -> str:
        """The rule in words, for a denial's explanation."""

    def peer_sets(self, analysis: Analysis) -> tuple[frozenset[int], ...] | None:
        """The pod-class sets its peers select, when the kind can list them (None: any peer)."""


class StackPolicy(Protocol):
    """A policy of any kind, compiled into its place in the stack."""

    kind: str
    key: str
    tier: Tier
    order: tuple[float, str]
    note: str
    """Why it decides where it does, for explanations: "(Calico order)"."""
    source: SourceRef

    def rules(self, direction: Direction) -> Sequence[StackRule]: ...

    def isolates(self, direction: Direction) -> bool:
        """Whether selecting a pod closes the namespace tier for it (the rest is denied)."""

    def selects(self, analysis: Analysis, cid: int) -> bool:
        """Whether the policy's subject selects pod class ``cid`` (a governed or virtual class)."""

    def whole_namespace(self, analysis: Analysis, namespace: str) -> bool:
        """Whether it selects every pod of ``namespace``, present and future (judged from the
        selector itself, never from the pods that happen to exist)."""

    def networks(self) -> Iterable[IPNetwork]:
        """Every address block its rules name (connectivity cuts outside ranges at them)."""


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
    isolated: tuple[StackPolicy, ...]
    """Namespace-tier policies that isolate the subject in this direction."""

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


def evaluate(analysis: Analysis, subject: int, direction: Direction, other: Endpoint, dst_ports: DstPorts) -> Outcome:
    """Walk the stack for one side: tiers in order, policies in order, first matching rule per port."""
    tiers = analysis.stack_for(subject, direction)
    segments: list[Segment] = []
    scope = ALL
    isolated: tuple[StackPolicy, ...] = ()
    passed_by: dict[PortSet, Decision] = {}
    for tier in TIERS:
        policies = tiers.get(tier, ())
        if not policies:
            continue
        passed = NONE
        for policy in policies:
            for rule in policy.rules(direction):
                if not scope:
                    break
                if not rule.names(analysis, subject, other):
                    continue
                ports = rule.ports(dst_ports) & scope
                if not ports:
                    continue
                decision = Decision(rule.action, rule.label, policy.note, tier)
                if rule.action == "Pass":
                    passed = passed | ports
                    passed_by[ports] = decision
                else:
                    segments += _split(ports, rule.action == "Allow", decision, passed_by)
                scope = scope - ports
        if tier == "namespace":
            isolated = tuple(p for p in policies if p.isolates(direction))
            if isolated and scope:
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


def closes(policy: StackPolicy, direction: Direction) -> bool:
    """Whether the policy, on its own, denies what nothing else allows for the pods it selects:
    the namespace tier by isolating them; an admin or baseline policy when its first rule for
    every peer on every port is Deny."""
    if policy.tier == "namespace":
        return policy.isolates(direction)
    first = next((r for r in policy.rules(direction) if r.everyone), None)
    return first is not None and first.action == "Deny"
