"""Checks against observed traffic (`--flows`): denied flows, unused allow rules, unsegmented traffic."""

from __future__ import annotations

from collections.abc import Iterable

from audit.checks.registry import Context, Hit, check
from audit.engine.flows import RuleUse, rule_use, unsegmented, would_break


def _window(ctx: Context) -> str:
    assert ctx.traffic is not None
    t = ctx.traffic.traffic
    return f"{t.flows:,} flow(s) from {t.first or '?'} to {t.last or '?'}"


@check(
    "NP-FLOW-001",
    "Observed traffic the policies deny",
    "high",
    rationale="""Flows seen on the network (Hubble, flow logs) that the policies, evaluated with every
    layer, would deny: applied, these policies stop traffic the workloads use today. Flows the
    capture saw DROPPED are counted apart: the network refused them already.""",
    remediation="Allow the flow with a rule naming its source and port, or confirm it is unwanted and let it stop.",
    needs="flows",
)
def denied_observed_flow(ctx: Context) -> Iterable[Hit]:
    assert ctx.traffic is not None
    denied = would_break(ctx.analysis, ctx.traffic.mapper, ctx.traffic.traffic, top=ctx.traffic.top)
    for row in denied.rows:
        namespace = row.dst.split("/", 1)[0] if "/" in row.dst else (row.src.split("/", 1)[0] if "/" in row.src else None)
        dropped = f", {row.dropped} seen DROPPED" if row.dropped else ""
        yield Hit(namespace, "Flow", f"{row.src} -> {row.dst}",
                  f"{row.count} observed flow(s) {row.src} -> {row.dst} on {row.protocol}/{row.port} are denied{dropped}: "
                  + "; ".join(line.strip() for line in row.why), objects=(row.src, row.dst), key=f"{row.protocol}/{row.port}")
    rest = denied.total - len(denied.rows)
    if rest:
        # The rows past the cut, said once with their totals: never dropped without a word.
        flows = denied.flows - sum(row.count for row in denied.rows)
        yield Hit(None, "Flow", "(the rest)",
                  f"{rest:,} more denied (source, destination, port) rows with {flows:,} observed flow(s), none with more flows "
                  f"than the {len(denied.rows):,} listed, are not listed (--top 0 lists every one)", key="rest")


@check(
    "NP-FLOW-002",
    "Allow rule no observed traffic used",
    "low",
    rationale="""An allow rule that no flow of the capture window exercised, or that traffic used on a
    small part of what it opens (one port of a rule for every port, one workload of a rule for a
    namespace), is access beyond what is necessary, by evidence. The longer the window, the
    stronger the evidence: a monthly job may not be in it.""",
    remediation="Remove the rule, or narrow it to the peers and ports the traffic uses (`netpol-audit flows --propose`).",
    needs="flows",
)
def unused_allow_rule(ctx: Context) -> Iterable[Hit]:
    assert ctx.traffic is not None
    window = _window(ctx)
    uses = [u for u in rule_use(ctx.analysis, ctx.traffic.mapper, ctx.traffic.traffic)
            if u.namespace is None or not ctx.config.is_excluded(u.namespace)]
    by_policy: dict[str, list[RuleUse]] = {}
    for use in uses:
        by_policy.setdefault(use.policy, []).append(use)
    unused_policies = {key for key, rules in by_policy.items() if len(rules) > 1 and not any(u.flows for u in rules)}
    for key in sorted(unused_policies):
        first = by_policy[key][0]
        yield Hit(first.namespace, first.kind, first.name, f"none of its {len(by_policy[key])} rules was used by any flow of {window}",
                  key="policy")
    for use in uses:
        if use.policy in unused_policies:
            continue  # said once for the whole policy
        if use.flows == 0:
            yield Hit(use.namespace, use.kind, use.name,
                      f"{use.rule} ({use.ports_allowed}) was used by no flow of {window}", key=use.rule)
        elif use.peers_allowed is None or use.peers_used < use.peers_allowed or use.ports_allowed == "every port":
            peers = "every peer" if use.peers_allowed is None else f"{use.peers_allowed} pod class(es)"
            yield Hit(use.namespace, use.kind, use.name,
                      f"{use.rule} allows {peers} on {use.ports_allowed}; traffic used {use.peers_used} peer(s) on "
                      f"{', '.join(use.ports_used)} ({window})", key=use.rule)


@check(
    "NP-FLOW-003",
    "Observed traffic with no isolation",
    "medium",
    rationale="""Workloads that send or receive traffic in a direction no policy isolates: every pod of
    every namespace may connect the same way. Ranked by the number of distinct peers the traffic
    shows, the first workloads to give least-privilege policies (`netpol-audit flows --propose`).""",
    remediation="Isolate the workload (a default-deny for its namespace) and allow the peers the traffic shows.",
    needs="flows",
)
def unsegmented_traffic(ctx: Context) -> Iterable[Hit]:
    assert ctx.traffic is not None
    for row in unsegmented(ctx.analysis, ctx.traffic.mapper, ctx.traffic.traffic):
        if ctx.config.is_excluded(row.namespace):
            continue
        yield Hit(row.namespace, "Workload", row.workload,
                  f"{row.flows} observed flow(s) with {row.peers} distinct peer(s) and no {row.direction.lower()} isolation",
                  key=row.direction)
