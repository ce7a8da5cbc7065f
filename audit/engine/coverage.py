"""Coverage by effect: which namespaces every policy kind really closes, per direction.

One definition for every kind: a policy that selects every pod of the namespace (present and
future, judged from its selector) closes the direction, no rule reached before it opens all
ports to every peer, and every current pod is isolated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from audit.engine.classes import PodClass
from audit.engine.compiled import TIERS, CompiledPolicy
from audit.engine.direction import DIRECTIONS, Direction
from audit.fastinit import fast_init

if TYPE_CHECKING:
    from audit.engine.analysis import Analysis
    from audit.engine.stack import Entry


@fast_init
@dataclass(frozen=True)
class DirectionCoverage:
    """Coverage of one namespace in one direction, judged by effect."""

    pods: int
    isolated_pods: int
    default_deny: bool
    baseline: tuple[str, ...]
    opened_by: tuple[str, ...]
    reason: str


@fast_init
@dataclass(frozen=True)
class NamespaceCoverage:
    name: str
    policies: tuple[str, ...]
    workloads: int
    pods: int
    host_network_pods: int
    ingress: DirectionCoverage
    egress: DirectionCoverage

    def direction(self, direction: Direction) -> DirectionCoverage:
        return self.ingress if direction == "Ingress" else self.egress


def governed_classes(analysis: Analysis, ns: str) -> list[PodClass]:
    return [analysis.classes[cid] for cid in analysis.classes_by_ns.get(ns, []) if analysis.classes[cid].governed]

def _policies_for(analysis: Analysis, ns: str) -> Iterator[CompiledPolicy]:
    """The namespace's own policies, and the cluster-wide ones that select all of it or a pod of it."""
    yield from analysis.policies_by_ns.get(ns, ())
    ids = analysis.classes_by_ns.get(ns, ())
    for policy in analysis.cluster_policies:
        if analysis.whole_namespace(policy, ns) or not analysis.selected(policy).isdisjoint(ids):
            yield policy


def policies_in(analysis: Analysis, ns: str) -> tuple[str, ...]:
    """Keys of the policies of every kind that act in ``ns``: its own, and cluster-wide ones that
    select all of it or a pod of it."""
    return tuple(dict.fromkeys(p.key for p in _policies_for(analysis, ns)))


def namespace_coverage(analysis: Analysis, ns: str) -> NamespaceCoverage:
    governed = governed_classes(analysis, ns)
    host = [analysis.classes[cid] for cid in analysis.classes_by_ns.get(ns, []) if analysis.classes[cid].host_network]
    mine = tuple(_policies_for(analysis, ns))
    # The layers that act on every pod of the namespace, in the order the walk meets them (per
    # tier, the sort keeps it), and whether each one's policy selects the whole namespace.
    governed_ids = frozenset(c.id for c in governed)
    whole = {id(p): analysis.whole_namespace(p, ns) for p in mine}
    acting = sorted((e for p in mine if whole[id(p)] or (governed_ids and governed_ids <= analysis.selected(p))
                     for e in analysis.entries_of(p)), key=lambda e: e.order)
    pods = sum(c.pods for c in governed)
    by_tier: dict[str, list[Entry]] = {}
    for entry in acting:
        by_tier.setdefault(entry.tier, []).append(entry)
    sides = {d: _direction_coverage(analysis, d, governed, pods, mine, by_tier, whole) for d in DIRECTIONS}
    return NamespaceCoverage(
        name=ns,
        policies=tuple(dict.fromkeys(p.key for p in mine if not p.setting)),
        workloads=len({r for c in governed + host for r in c.refs}),  # a StatefulSet's pods differ in labels: one workload
        pods=pods,
        host_network_pods=sum(c.pods for c in host),
        ingress=sides["Ingress"],
        egress=sides["Egress"],
    )

def _direction_coverage(analysis: Analysis, direction: Direction, governed: list[PodClass], pods: int, mine: tuple[CompiledPolicy, ...],
                        by_tier: dict[str, list[Entry]], whole: dict[int, bool]) -> DirectionCoverage:
    """Default-deny by effect, one definition for every kind: a policy that selects every pod
    of the namespace (present and future) closes the direction, no rule reached before it
    opens all ports to every peer, and every current pod is isolated. ``by_tier``: the layers
    acting on every pod of the namespace, per tier, in the order the walk meets them."""
    isolating = analysis.isolated_classes(direction)
    isolated = sum(c.pods for c in governed if c.id in isolating)
    word = "ingress" if direction == "Ingress" else "egress"
    closed_by: tuple[str, ...] = ()
    opened: tuple[str, ...] = ()
    for tier in TIERS:
        # Each acting layer's first rule for every peer on every port is what it does to "everyone".
        candidates = by_tier.get(tier, ())
        passed = False
        for policy in candidates:
            first = next((r for r in policy.rules(direction) if r.everyone), None)
            if first is None:
                continue
            if first.action == "Allow":
                opened = (first.label,)
            elif first.action == "Pass":
                passed = True
            elif whole[id(policy.policy)]:
                closed_by = (policy.key,)
            if opened or passed or closed_by:
                break
        if opened or closed_by:
            break
        if tier == "namespace" and not passed:
            closing = [e.key for e in candidates if whole[id(e.policy)] and e.isolates(direction)]
            if closing:
                closed_by = tuple(dict.fromkeys(closing))
                break
    kinds_note = analysis.policy_notes
    if opened:
        reason = f"{opened[0]} allows all {word} on all ports for every pod, undoing the default-deny"
    elif closed_by and pods and isolated < pods:
        reason = f"{pods - isolated} of {pods} pods are not isolated for {word} although {closed_by[0]} selects the whole namespace"
    elif closed_by:
        notes = {kinds_note.get(k, "") for k in closed_by} - {"NetworkPolicy", ""}
        reason = f"default-deny {word} by {', '.join(closed_by)}" + (f" ({', '.join(sorted(notes))})" if notes else "")
    elif not mine:
        reason = "no NetworkPolicy in the namespace"
    elif pods and isolated == pods:
        reason = f"every current pod is isolated for {word} by workload policies, but no policy with an empty podSelector isolates new pods"
    else:
        reason = f"no policy with an empty podSelector and {direction} in its policyTypes"
    default_deny = bool(closed_by) and not opened and isolated == pods
    return DirectionCoverage(pods, isolated, default_deny, closed_by, opened, reason)
