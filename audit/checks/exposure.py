"""Exposure judged by reachability, both sides and every policy layer: not by reading rules."""

from __future__ import annotations

from collections.abc import Iterable

from audit.checks import fixes
from audit.checks.fixes import METADATA_IP
from audit.checks.permissive import sensitive_ports_of
from audit.checks.registry import Context, Hit, check
from audit.engine.analysis import Analysis, PodClass
from audit.engine.connectivity import ClassGraph
from audit.engine.exposure import Exposure
from audit.engine.ports import NONE


@check(
    "NP-EXP-001",
    "Pods can reach the cloud metadata service",
    "high",
    rationale="""Connecting to 169.254.169.254 on port 80 is allowed for these pods by every layer
    that applies (AdminNetworkPolicy, NetworkPolicy egress, baseline). A compromised pod can read
    instance credentials and act as the node's cloud identity.""",
    remediation="Deny 169.254.169.254/32 cluster-wide with an AdminNetworkPolicy, or give the namespace default-deny egress.",
)
def metadata_reachable(ctx: Context) -> Iterable[Hit]:
    analysis = ctx.analysis
    graph = ClassGraph.of(analysis)  # an address has no ingress side: the egress port sets decide, memoized
    for ns in ctx.audited_namespaces():
        reach = [c for c in ctx.governed_classes(ns.name) if graph.egress_allows(c.id, METADATA_IP, 80)]
        if reach:
            workloads = tuple(sorted({r for c in reach for r in c.refs}))
            why = analysis.allowed(reach[0].id, METADATA_IP, 80).egress.explain()
            yield Hit(ns.name, "Namespace", ns.name,
                      f"{len(workloads)} workload(s) can connect to {METADATA_IP}:80 ({why})", objects=workloads,
                      fix_yaml=_metadata_fix(ctx, ns.name, reach))


def _metadata_fix(ctx: Context, namespace: str, reach: list[PodClass]) -> str | None:
    """What closes the metadata path and nothing else: the egress policies that allow it, narrowed;
    and, where no pod of the namespace is egress-isolated yet, isolation that denies only it. A
    namespace that mixes isolated and open pods gets no generated fix for the open ones: a
    policy broad enough for them would open the isolated ones (NetworkPolicy allows add up)."""
    analysis = ctx.analysis
    docs = []
    allowing = {e.key: e.policy for c in reach for e in analysis.isolating(c.id, "Egress")}
    for key in sorted(allowing):
        doc = fixes.without_metadata(analysis, allowing[key])
        if doc:
            docs.append(doc)
    isolated_any = any(analysis.isolating(c.id, "Egress") for c in ctx.governed_classes(namespace))
    if any(not analysis.isolating(c.id, "Egress") for c in reach) and not isolated_any:
        docs.append(fixes.allow_all_but_metadata_policy(namespace))
    return fixes.dump(*docs) if docs else None


@check(
    "NP-EXP-002",
    "Sensitive port reachable from another environment",
    "critical",
    rationale="""A database, cache or broker port in one environment accepts connections from pods of
    another (staging reaching production: the breach of the domain text). Environments are read
    from a namespace label (`env` unless configured with environmentLabel).""",
    remediation="Deny cross-environment traffic (an AdminNetworkPolicy per environment, or namespace default-deny with narrow allows).",
)
def cross_environment(ctx: Context) -> Iterable[Hit]:
    analysis = ctx.analysis
    graph = ClassGraph.of(analysis)
    exposure = Exposure.of(graph)
    label = ctx.config.environment_label
    env_of = {name: dict(ns.labels).get(label) for name, ns in analysis.namespaces.items()}
    by_env: dict[str, set[int]] = {}
    for cid in graph.ids:
        env = env_of.get(analysis.classes[cid].namespace)
        if env:
            by_env.setdefault(env, set()).add(cid)
    if len(by_env) < 2:
        return
    # Per environment, every class of the other environments: the sources that count, all of them.
    others = {env: frozenset().union(*(c for e, c in by_env.items() if e != env)) for env in by_env}
    for ns in ctx.audited_namespaces():
        env = env_of.get(ns.name)
        if not env:
            continue
        fix: str | None = None
        unwritten = True  # the fix is written at the namespace's first finding: most namespaces have none
        for cls in ctx.governed_classes(ns.name):
            for port in sorted(sensitive_ports_of(ctx, cls)):
                src = exposure.source_of(cls.id, port, others[env])
                if src is None:
                    continue
                if unwritten:
                    fix, unwritten = _environment_fix(ctx, ns.name, env, tuple(e for e in by_env if e != env)), False
                source = analysis.classes[src]
                yield Hit(ns.name, "Workload", cls.workloads[0].name,
                          f"port {port} (env={env}) is reachable from {source.describe()} (env={env_of[source.namespace]})",
                          objects=cls.refs, source=cls.workloads[0].source, key=f"{cls.describe()}:{port}",
                          fix_yaml=fix)
                break


def _environment_fix(ctx: Context, namespace: str, env: str, others: tuple[str, ...]) -> str | None:
    """For a namespace where no pod is ingress-isolated: isolation that takes away only the
    sensitive ports from other environments. Where some pods are isolated already, a policy for
    all of them would open the isolated ones (allows add up): no generated fix."""
    if not others or any(ctx.analysis.isolating(c.id, "Ingress") for c in ctx.governed_classes(namespace)):
        return None
    return fixes.dump(fixes.other_environments_policy(namespace, ctx.config.environment_label, others, ctx.config.sensitive_ports))


@check(
    "NP-EXP-003",
    "Isolated workload reachable from every namespace",
    "medium",
    rationale="""An ingress policy selects these pods, so they look protected, yet a pod in every other
    namespace can open a connection to them (both sides and every policy layer evaluated): the
    policy admits the whole cluster. Pods no ingress policy selects are the coverage checks'
    findings, and the DNS pods, which every namespace needs, are left out. Judged when the input
    has at least two other namespaces with pods.""",
    remediation="Name the namespaces (and pods) that need access in the ingress rule instead of all namespaces or all peers.",
)
def reachable_from_everywhere(ctx: Context) -> Iterable[Hit]:
    analysis = ctx.analysis
    graph = ClassGraph.of(analysis)
    by_ns: dict[str, list[int]] = {}
    for cid in graph.ids:
        if analysis.classes[cid].pods > 0:
            by_ns.setdefault(analysis.classes[cid].namespace, []).append(cid)
    if len(by_ns) < 3:
        return
    # Namespaces with an open source are tried last: a restricted one is the likely refusal.
    open_ns = {analysis.classes[cid].namespace for cid in graph.open_egress}
    order = sorted(by_ns, key=lambda n: (n in open_ns, n))
    dns = set(analysis.dns_classes)
    admitted_ns: dict[int, frozenset[str]] = {}  # per peer class set (by identity: they are memoized)
    # Per candidate listing (by identity: the graph memoizes them, one per stack), the union of its
    # sets' namespaces (None when their counts alone fall short): the same for every class it is for.
    spans_of: dict[int, frozenset[str] | None] = {}
    for ns in ctx.audited_namespaces():
        for cls in ctx.governed_classes(ns.name):
            if cls.id in dns or not analysis.is_isolated(cls.id, "Ingress") or ns.name not in by_ns:
                continue
            admitted = graph.candidates(cls.id, "Ingress")
            if admitted is not None:
                if id(admitted) in spans_of:
                    union = spans_of[id(admitted)]
                else:
                    spans = [_namespaces_of(analysis, group, admitted_ns) for group in admitted.sets]
                    union = spans_of[id(admitted)] = frozenset().union(*spans) if sum(map(len, spans)) >= len(by_ns) - 1 else None
                if union is None or len(union) - (ns.name in union) < len(by_ns) - 1:
                    continue
            ports = NONE
            for other in order:
                if other == ns.name:
                    continue
                reach = next((r for r in (graph.reaches(s, cls.id) for s in by_ns[other] if admitted is None or s in admitted) if r), NONE)
                if not reach:
                    break
                ports = ports | reach
            else:
                yield Hit(ns.name, "Workload", cls.workloads[0].name,
                          f"{cls.describe()} is isolated for ingress yet reachable from all {len(by_ns) - 1} other namespaces ({ports})",
                          objects=cls.refs, source=cls.workloads[0].source, key=cls.describe())


def _namespaces_of(analysis: Analysis, group: frozenset[int], memo: dict[int, frozenset[str]]) -> frozenset[str]:
    hit = memo.get(id(group))
    if hit is None:
        hit = memo[id(group)] = frozenset(analysis.classes[c].namespace for c in group)
    return hit
