"""Exposure judged by reachability, both sides and every policy layer: not by reading rules."""

from __future__ import annotations

from collections.abc import Iterable

from audit.checks import fixes
from audit.checks.fixes import METADATA_IP
from audit.checks.permissive import sensitive_ports_of
from audit.checks.registry import Context, Hit, check
from audit.engine.analysis import Analysis, PodClass, port_in
from audit.engine.connectivity import ClassGraph
from audit.engine.kinds.networkpolicy import Peer
from audit.engine.ports import NONE

# Per destination, how many candidate sources from other environments are tried when its
# ingress does not narrow them down (flat or admin-governed pods): a bound on the work.
MAX_SOURCES = 200


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
        reach = [c for c in ctx.governed_classes(ns.name) if port_in(graph.egress(c.id, METADATA_IP), 80, "TCP")]
        if reach:
            workloads = tuple(sorted(w.ref for c in reach for w in c.workloads))
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
    allowing = {p.key: p for c in reach for p in analysis.isolating(c.id, "Egress")}
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
    label = ctx.config.environment_label
    env_of = {name: dict(ns.labels).get(label) for name, ns in analysis.namespaces.items()}
    by_env: dict[str, list[int]] = {}
    for cls in analysis.real_classes():
        env = env_of.get(cls.namespace)
        if env and cls.governed:
            by_env.setdefault(env, []).append(cls.id)
    if len(by_env) < 2:
        return
    # Fallback candidates per environment, computed once: classes of the other environments,
    # taken round-robin over their namespaces so a few sources cover many namespaces.
    fallback: dict[str, list[int]] = {}
    for env in by_env:
        queues = [list(analysis.classes_by_ns[n]) for n in sorted(analysis.classes_by_ns)
                  if env_of.get(n) not in (None, env)]
        picked: list[int] = []
        while queues and len(picked) < MAX_SOURCES:
            queues = [q for q in queues if q]
            for q in queues:
                cid = q.pop(0)
                if analysis.classes[cid].governed and not analysis.classes[cid].virtual:
                    picked.append(cid)
        fallback[env] = picked[:MAX_SOURCES]
    cover: dict[object, frozenset[str] | None] = {}
    admitted: dict[object, list[int]] = {}
    for ns in ctx.audited_namespaces():
        env = env_of.get(ns.name)
        if not env:
            continue
        fix = _environment_fix(ctx, ns.name, env, tuple(e for e in by_env if e != env))
        for cls in ctx.governed_classes(ns.name):
            ports = sorted(sensitive_ports_of(ctx, cls))
            if not ports:
                continue
            sources = _admitted(ctx, cls.id, env, env_of, admitted)
            if sources is None:
                sources = fallback.get(env, [])
            # Only sources whose egress could reach this namespace at all need a full verdict.
            sources = [s for s in sources if _may_reach(ctx, s, ns.name, cover)]
            for port in ports:
                src = next((s for s in sources if analysis.allowed(s, cls.id, port).allowed), None)
                if src is None:
                    continue
                source = analysis.classes[src]
                yield Hit(ns.name, "Workload", cls.workloads[0].name,
                          f"port {port} (env={env}) is reachable from {source.describe()} (env={env_of[source.namespace]})",
                          objects=tuple(w.ref for w in cls.workloads), source=cls.workloads[0].source, key=f"{cls.describe()}:{port}",
                          fix_yaml=fix)
                break


def _environment_fix(ctx: Context, namespace: str, env: str, others: tuple[str, ...]) -> str | None:
    """For a namespace where no pod is ingress-isolated: isolation that takes away only the
    sensitive ports from other environments. Where some pods are isolated already, a policy for
    all of them would open the isolated ones (allows add up): no generated fix."""
    if not others or any(ctx.analysis.isolating(c.id, "Ingress") for c in ctx.governed_classes(namespace)):
        return None
    return fixes.dump(fixes.other_environments_policy(namespace, ctx.config.environment_label, others, ctx.config.sensitive_ports))


def _admitted(ctx: Context, cid: int, env: str, env_of: dict[str, str | None], memo: dict[object, list[int]]) -> list[int] | None:
    """Up to MAX_SOURCES sources of other environments that the destination's NetworkPolicy
    ingress rules name, or None when they do not narrow it down (not isolated, a rule for all
    peers, admin policies)."""
    analysis = ctx.analysis
    policies = analysis.isolating(cid, "Ingress")
    if not policies or not analysis.only_networkpolicy(cid):
        return None
    picked: set[int] = set()
    for policy in policies:
        for rule in policy.rules("Ingress"):
            if rule.all_peers:
                return None
            for peer in rule.peers:
                if peer.ip_block is not None:
                    return None  # pods are matched by IP here: no cheap narrowing, sample instead
                if peer.namespaces is not None:  # pod-only peers name the destination's own namespace
                    picked.update(_peer_sources(ctx, policy.namespace, peer, env, env_of, memo))
    return sorted(picked)[:MAX_SOURCES]


def _peer_sources(ctx: Context, policy_ns: str, peer: Peer, env: str, env_of: dict[str, str | None], memo: dict[object, list[int]]) -> list[int]:
    """Classes of other environments a namespace-selecting peer matches (memoized per peer and env)."""
    key = (peer, env)
    hit = memo.get(key)
    if hit is None:
        analysis = ctx.analysis
        matched = analysis.peer_classes(policy_ns, peer)
        hit = []
        for name in analysis.namespaces_matching(peer):
            if env_of.get(name) in (None, env):
                continue
            hit.extend(c for c in analysis.classes_by_ns.get(name, ()) if c in matched)
            if len(hit) >= MAX_SOURCES:
                break
        memo[key] = hit = hit[:MAX_SOURCES]
    return hit


def _may_reach(ctx: Context, src: int, namespace: str, memo: dict[object, frozenset[str] | None]) -> bool:
    """An upper bound from the source's egress rules: can they name any pod of ``namespace``?

    Sources with the same egress signature share the bound (None: anywhere).
    """
    analysis = ctx.analysis
    policies = analysis.isolating(src, "Egress")
    key = analysis.egress_signature(src) or ("class", src)
    if key not in memo:
        covered: set[str] = set()
        # Only NetworkPolicy rules are read for the bound; any other layer may open more.
        anywhere = not policies or not analysis.only_networkpolicy(src)
        for policy in [] if anywhere else policies:
            for rule in policy.rules("Egress"):
                if rule.all_peers:
                    anywhere = True
                    break
                for peer in rule.peers:
                    covered.update(analysis.classes[c].namespace for c in analysis.peer_classes(policy.namespace, peer))
            if anywhere:
                break
        memo[key] = None if anywhere else frozenset(covered)
    bound = memo[key]
    return bound is None or namespace in bound


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
    for ns in ctx.audited_namespaces():
        for cls in ctx.governed_classes(ns.name):
            if cls.id in dns or not analysis.is_isolated(cls.id, "Ingress") or ns.name not in by_ns:
                continue
            admitted = graph.candidates(cls.id, "Ingress")
            if admitted is not None:
                spans = [_namespaces_of(analysis, group, admitted_ns) for group in admitted.sets]
                if sum(map(len, spans)) < len(by_ns) - 1 or len(frozenset().union(*spans) - {ns.name}) < len(by_ns) - 1:
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
                          objects=tuple(w.ref for w in cls.workloads), source=cls.workloads[0].source, key=cls.describe())


def _namespaces_of(analysis: Analysis, group: frozenset[int], memo: dict[int, frozenset[str]]) -> frozenset[str]:
    hit = memo.get(id(group))
    if hit is None:
        hit = memo[id(group)] = frozenset(analysis.classes[c].namespace for c in group)
    return hit
