"""DNS under egress deny: isolated pods must still reach the cluster DNS pods."""

from __future__ import annotations

from collections.abc import Iterable

from audit.checks import fixes
from audit.checks.registry import Context, Hit, check
from audit.engine.connectivity import ClassGraph
from audit.engine.lookup import lookup


def _dns_blocked(ctx: Context, protocol: str) -> Iterable[Hit]:
    analysis = ctx.analysis
    dns = analysis.dns_target
    target = analysis.dns_note if not analysis.dns_note.startswith("no DNS pods") else f"{dns.describe()}, assumed"
    # When the DNS pods accept every source, a pod's DNS verdict depends only on the policies
    # isolating its egress: pods that share them share the verdict.
    dns_open = not any(analysis.is_isolated(d, "Ingress") or analysis.stack_for(d, "Ingress") for d in analysis.dns_classes)
    verdicts: dict[object, bool] = {}
    graph = ClassGraph.of(analysis)
    for ns in ctx.audited_namespaces():
        blocked = []
        for cls in ctx.governed_classes(ns.name):
            if not analysis.is_isolated(cls.id, "Egress"):
                continue
            signature = analysis.egress_content(cls.id) if dns_open else None
            # A content's number and a class's id may be equal: the two kinds of key are kept apart.
            key: object = signature if signature is not None else ("class", cls.id)
            ok = verdicts.get(key)
            if ok is None:
                if signature is not None:  # only the egress side decides: the port sets shared with UDP/TCP and connectivity
                    ok = any(graph.egress_allows(cls.id, d, 53, protocol) for d in analysis.dns_classes)
                else:
                    ok = any(analysis.allowed(cls.id, d, 53, protocol).allowed for d in analysis.dns_classes)
                verdicts[key] = ok
            if not ok:
                blocked.append(cls)
        if not blocked:
            continue
        workloads = tuple(sorted({r for c in blocked for r in c.refs}))
        # Name the side that blocks, from the first blocked class.
        verdict = analysis.allowed(blocked[0].id, analysis.dns_classes[0], 53, protocol)
        side = verdict.egress if not verdict.egress.allowed else verdict.ingress
        yield Hit(ns.name, "Namespace", ns.name,
                  f"{len(workloads)} workload(s) cannot reach cluster DNS ({target}) on 53/{protocol}: {side.explain()}",
                  objects=workloads, fix_yaml=fixes.allow_dns(ns.name, dns), key=protocol)


@check(
    "NP-DNS-001",
    "Egress-isolated pods cannot resolve names (DNS 53/UDP blocked)",
    "high",
    rationale="""A default-deny egress policy blocks DNS too. Without an allow to the cluster DNS
    pods on 53/UDP, every Service name lookup fails and the workload breaks.""",
    remediation="Allow egress to the DNS pods (kube-system, k8s-app=kube-dns) on 53/UDP and 53/TCP.",
)
def dns_udp_blocked(ctx: Context) -> Iterable[Hit]:
    return _dns_blocked(ctx, "UDP")


@check(
    "NP-DNS-002",
    "Egress-isolated pods cannot use DNS over TCP (53/TCP blocked)",
    "low",
    rationale="""DNS falls back to TCP for large answers (many records, DNSSEC). With only 53/UDP
    allowed, those lookups fail intermittently.""",
    remediation="Allow 53/TCP next to 53/UDP in the DNS egress rule.",
)
def dns_tcp_blocked(ctx: Context) -> Iterable[Hit]:
    return _dns_blocked(ctx, "TCP")


@check(
    "NP-DNS-003",
    "A toFQDNs rule whose pods' lookups Cilium does not see",
    "medium",
    rationale="""Cilium learns the addresses a toFQDNs rule allows only from DNS answers its proxy
    intercepted, and it intercepts a pod's lookups only where the allow to the DNS server carries
    DNS rules (`toPorts[].rules.dns`); maintainers call that rule required for toFQDNs to work. With
    port 53 allowed at layer 4 only, the connection works only while another pod on the same node
    happens to look the name up through the proxy; where the DNS rules refuse the name, never.""",
    remediation="Add `rules: {dns: [{matchPattern: \"*\"}]}` (or the names) to the egress rule that allows the cluster DNS on 53.",
)
def fqdn_without_interception(ctx: Context) -> Iterable[Hit]:
    analysis = ctx.analysis
    for policy in ctx.audited_policies():
        names = tuple(dict.fromkeys(n for r in policy.rules_in("Egress") if r.action == "Allow" for p in r.peers for n in p.names))
        if not names:
            continue
        problems: dict[str, set[str]] = {}
        for cid in sorted(analysis.selected(policy)):
            cls = analysis.classes[cid]
            if not cls.governed or ctx.config.is_excluded(cls.namespace):
                continue
            for pattern in names:
                found = lookup(analysis, cid, pattern.replace("**.", "x.").replace("*", "x"))
                if found.state in ("plain", "refused"):
                    problems.setdefault(found.reason if found.state == "refused" else "their lookups are allowed at layer 4 only "
                                        "(not intercepted)", set()).update(cls.refs)
        for why, workloads in sorted(problems.items()):
            yield Hit(policy.namespace, policy.display_kind, policy.name,
                      f"{policy.key} allows {', '.join(n.rstrip('.') for n in names)} by name, but for {len(workloads)} workload(s) {why}",
                      objects=tuple(sorted(workloads)), source=policy.source, key=why)
