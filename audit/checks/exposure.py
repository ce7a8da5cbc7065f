"""Exposure judged by reachability, both sides and every policy layer: not by reading rules."""

from __future__ import annotations

from typing import Iterable

from audit.checks.permissive import METADATA_IP, sensitive_ports_of
from audit.checks.registry import Context, Hit, check

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
    for ns in ctx.audited_namespaces():
        reach = [c for c in ctx.governed_classes(ns.name) if analysis.allowed(c.id, METADATA_IP, 80).allowed]
        if reach:
            workloads = tuple(sorted(w.ref for c in reach for w in c.workloads))
            why = analysis.allowed(reach[0].id, METADATA_IP, 80).egress.explain()
            yield Hit(ns.name, "Namespace", ns.name,
                      f"{len(workloads)} workload(s) can connect to {METADATA_IP}:80 ({why})", objects=workloads)


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
    for ns in ctx.audited_namespaces():
        env = env_of.get(ns.name)
        if not env:
            continue
        for cls in ctx.governed_classes(ns.name):
            ports = sorted(sensitive_ports_of(ctx, cls))
            if not ports:
                continue
            sources = _admitted(ctx, cls.id, env, env_of)
            if sources is None:
                sources = fallback.get(env, [])
            for port in ports:
                src = next((s for s in sources if analysis.allowed(s, cls.id, port).allowed), None)
                if src is None:
                    continue
                source = analysis.classes[src]
                yield Hit(ns.name, "Workload", cls.workloads[0].name,
                          f"port {port} (env={env}) is reachable from {source.describe()} (env={env_of[source.namespace]})",
                          objects=tuple(w.ref for w in cls.workloads), source=cls.workloads[0].source, key=f"{cls.describe()}:{port}")
                break


def _admitted(ctx: Context, cid: int, env: str, env_of: dict[str, str | None]) -> list[int] | None:
    """Sources of other environments that the destination's NetworkPolicy ingress rules name, or
    None when they do not narrow it down (not isolated, a rule for all peers, admin policies)."""
    analysis = ctx.analysis
    policies = analysis.isolating(cid, "Ingress")
    anps, banps = analysis.admin_for(cid)
    if not policies or anps:
        return None
    found: set[int] = set()
    for policy in policies:
        for rule in policy.rules("Ingress"):
            if rule.all_peers:
                return None
            for peer in rule.peers:
                if peer.ip_block is None:
                    found.update(analysis.peer_classes(policy.namespace, peer))
    return sorted(c for c in found if env_of.get(analysis.classes[c].namespace) not in (None, env))
