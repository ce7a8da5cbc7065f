"""Coverage: which namespaces and pods NetworkPolicy actually isolates, judged by effect."""

from __future__ import annotations

from collections.abc import Iterable

from audit.checks import fixes
from audit.checks.registry import Context, Hit, check
from audit.engine.direction import Direction


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@check(
    "NP-COV-001",
    "Namespace has no NetworkPolicy",
    "high",
    rationale="""Without any NetworkPolicy every pod of the namespace accepts connections from, and
    opens connections to, every pod of the cluster and every external address: a flat network
    where one compromised pod reaches everything.""",
    remediation="Apply a default-deny policy for both directions plus a DNS allow, then allow each needed path.",
)
def namespace_without_policy(ctx: Context) -> Iterable[Hit]:
    for ns in ctx.audited_namespaces():
        cov = ctx.analysis.coverage[ns.name]
        # Judged by policies, whatever the pods: an empty or hostNetwork-only namespace is unprotected
        # for the next pod scheduled there (one rule for every namespace; see the README's method).
        if cov.policies or ctx.analysis.settings:  # a CNI that isolates every pod leaves none open
            continue
        invalid = [bad.obj.name for bad in ctx.analysis.invalid if bad.obj.namespace == ns.name]
        note = f" ({_plural(len(invalid), 'policy')} present but invalid: {', '.join(invalid)})" if invalid else ""
        yield Hit(
            ns.name, "Namespace", ns.name,
            f"no NetworkPolicy{note}: {_plural(cov.pods, 'pod')} accept and send any traffic",
            source=ns.source if ns.declared else None,
            fix_yaml=fixes.baseline(ns.name, ctx.analysis.dns_target),
        )


def _default_deny(ctx: Context, direction: Direction) -> Iterable[Hit]:
    for ns in ctx.audited_namespaces():
        side = ctx.analysis.coverage[ns.name].direction(direction)
        if side.default_deny:
            continue
        fix = fixes.default_deny(ns.name, (direction,))
        if direction == "Egress":
            fix = fixes.dump(fixes.default_deny_policy(ns.name, (direction,)), fixes.allow_dns_policy(ns.name, ctx.analysis.dns_target))
        yield Hit(ns.name, "Namespace", ns.name, side.reason, objects=tuple(map(str, side.opened_by)), fix_yaml=fix)


@check(
    "NP-COV-002",
    "Namespace lacks default-deny ingress",
    "high",
    rationale="""Default-deny is judged by effect: a policy with an empty podSelector must isolate
    ingress for every pod, present and future, and no rule may re-open all ports to every
    source. Otherwise any pod not named by a specific policy accepts every connection.""",
    remediation="Add a policy with `podSelector: {}` and `policyTypes: [Ingress]` and no ingress rules.",
)
def missing_default_deny_ingress(ctx: Context) -> Iterable[Hit]:
    return _default_deny(ctx, "Ingress")


@check(
    "NP-COV-003",
    "Namespace lacks default-deny egress",
    "medium",
    rationale="""Without default-deny egress a compromised pod can open connections anywhere: other
    namespaces' databases, the cloud metadata service, the internet (data exfiltration).""",
    remediation="Add a policy with `podSelector: {}` and `policyTypes: [Egress]`, together with a DNS allow.",
)
def missing_default_deny_egress(ctx: Context) -> Iterable[Hit]:
    return _default_deny(ctx, "Egress")


def _unselected(ctx: Context, direction: Direction) -> Iterable[Hit]:
    word = direction.lower()
    for ns in ctx.audited_namespaces():
        classes = ctx.governed_classes(ns.name)
        open_classes = [c for c in classes if not ctx.analysis.is_isolated(c.id, direction)]
        if not open_classes:
            continue
        pods = sum(c.pods for c in open_classes)
        total = sum(c.pods for c in classes)
        workloads = tuple(sorted({r for c in open_classes for r in c.refs}))  # a StatefulSet's pods are classes apart: one workload
        yield Hit(
            ns.name, "Namespace", ns.name,
            f"{pods} of {_plural(total, 'pod')} ({_plural(len(workloads), 'workload')}) are selected by no policy "
            f"with {direction} and accept all {word} traffic",
            objects=workloads,
            fix_yaml=fixes.default_deny(ns.name, (direction,)),
        )


@check(
    "NP-COV-004",
    "Pods not isolated for ingress",
    "medium",
    rationale="""A pod that no policy with Ingress selects accepts every connection, whatever other
    pods in its namespace do. Being selected for egress only does not protect ingress.""",
    remediation="Select these pods with an ingress policy (a namespace default-deny covers them all).",
)
def pods_unselected_ingress(ctx: Context) -> Iterable[Hit]:
    return _unselected(ctx, "Ingress")


@check(
    "NP-COV-005",
    "Pods not isolated for egress",
    "low",
    rationale="""A pod that no policy with Egress selects may connect anywhere. Being selected for
    ingress only does not restrict egress.""",
    remediation="Select these pods with an egress policy (a namespace default-deny egress covers them all).",
)
def pods_unselected_egress(ctx: Context) -> Iterable[Hit]:
    return _unselected(ctx, "Egress")


@check(
    "NP-COV-006",
    "hostNetwork pods are not governed by NetworkPolicy",
    "low",
    rationale="""Pods with hostNetwork: true share the node's network namespace; NetworkPolicy does
    not apply to them, so they are neither protected nor restricted by any policy, and they are
    not counted as covered.""",
    remediation="Avoid hostNetwork where possible; restrict such pods with node firewalls or host policies (e.g. Calico HostEndpoint, Cilium host policies).",
)
def host_network_pods(ctx: Context) -> Iterable[Hit]:
    for ns in ctx.audited_namespaces():
        cls = [c for c in ctx.analysis.classes_by_ns.get(ns.name, []) if ctx.analysis.classes[c].host_network]
        if not cls:
            continue
        workloads = tuple(sorted({r for c in cls for r in ctx.analysis.classes[c].refs}))
        pods = sum(ctx.analysis.classes[c].pods for c in cls)
        yield Hit(ns.name, "Namespace", ns.name, f"{_plural(pods, 'pod')} use hostNetwork and bypass NetworkPolicy", objects=workloads)
