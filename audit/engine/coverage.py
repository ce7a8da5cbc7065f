"""Coverage by effect: which namespaces every policy kind really closes, per direction.

One definition for every kind: a policy that selects every pod of the namespace (present and
future, judged from its selector) closes the direction, no rule reached before it opens all
ports to every peer, and every current pod is isolated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from audit.engine.classes import PodClass
from audit.engine.direction import DIRECTIONS, Direction
from audit.engine.stack import TIERS, StackPolicy, Tier

if TYPE_CHECKING:
    from audit.engine.analysis import Analysis


@dataclass(frozen=True)
class DirectionCoverage:
    """Coverage of one namespace in one direction, judged by effect."""

    pods: int
    isolated_pods: int
    default_deny: bool
    baseline: tuple[str, ...]
    opened_by: tuple[str, ...]
    reason: str


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

def policies_in(analysis: Analysis, ns: str) -> tuple[str, ...]:
    """Keys of the policies of every kind that select a pod of ``ns`` or all of it."""
    keys = [p.key for p in analysis.policies_by_ns.get(ns, [])]
    ids = analysis.classes_by_ns.get(ns, [])
    for ext in analysis.extended:
        if ext.whole_namespace(analysis, ns) or any(ext in analysis._extended_by_class.get(cid, ()) for cid in ids):
            keys.append(ext.key)
    return tuple(dict.fromkeys(keys))

def namespace_coverage(analysis: Analysis, ns: str) -> NamespaceCoverage:
    governed = governed_classes(analysis, ns)
    host = [analysis.classes[cid] for cid in analysis.classes_by_ns.get(ns, []) if analysis.classes[cid].host_network]
    sides = {d: _direction_coverage(analysis, ns, d, governed) for d in DIRECTIONS}
    return NamespaceCoverage(
        name=ns,
        policies=policies_in(analysis, ns),
        workloads=len({w.ref for c in governed + host for w in c.workloads}),  # a StatefulSet's pods differ in labels: one workload
        pods=sum(c.pods for c in governed),
        host_network_pods=sum(c.pods for c in host),
        ingress=sides["Ingress"],
        egress=sides["Egress"],
    )

def _direction_coverage(analysis: Analysis, ns: str, direction: Direction, governed: list[PodClass]) -> DirectionCoverage:
    """Default-deny by effect, one definition for every kind: a policy that selects every pod
    of the namespace (present and future) closes the direction, no rule reached before it
    opens all ports to every peer, and every current pod is isolated."""
    pods = sum(c.pods for c in governed)
    isolated = sum(c.pods for c in governed if analysis.is_isolated(c.id, direction))
    governed_ids = frozenset(c.id for c in governed)
    word = "ingress" if direction == "Ingress" else "egress"
    closed_by: tuple[str, ...] = ()
    opened: tuple[str, ...] = ()
    for tier in TIERS:
        # The policies that act on every pod of the namespace, in the order the walk meets them;
        # each one's first rule for every peer on every port is what it does to "everyone".
        candidates = sorted((p for p in _tier_policies(analysis, ns, tier)
                             if p.whole_namespace(analysis, ns) or (governed_ids and all(p.selects(analysis, c) for c in governed_ids))),
                            key=lambda p: p.order)
        passed = False
        for policy in candidates:
            first = next((r for r in policy.rules(direction) if r.everyone), None)
            if first is None:
                continue
            if first.action == "Allow":
                opened = (first.label,)
            elif first.action == "Pass":
                passed = True
            elif policy.whole_namespace(analysis, ns):
                closed_by = (policy.key,)
            if opened or passed or closed_by:
                break
        if opened or closed_by:
            break
        if tier == "namespace" and not passed:
            closing = [p.key for p in candidates if p.whole_namespace(analysis, ns) and p.isolates(direction)]
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
    elif not policies_in(analysis, ns):
        reason = "no NetworkPolicy in the namespace"
    elif pods and isolated == pods:
        reason = f"every current pod is isolated for {word} by workload policies, but no policy with an empty podSelector isolates new pods"
    else:
        reason = f"no policy with an empty podSelector and {direction} in its policyTypes"
    default_deny = bool(closed_by) and not opened and isolated == pods
    return DirectionCoverage(pods, isolated, default_deny, closed_by, opened, reason)

def _tier_policies(analysis: Analysis, ns: str, tier: Tier) -> Iterable[StackPolicy]:
    if tier == "namespace":
        yield from (analysis._np_layers[p.key] for p in analysis.policies_by_ns.get(ns, []))
    yield from (p for p in analysis.extended if p.tier == tier)
