"""The observed-traffic section as text: what `netpol-audit flows` prints and the terminal report shows."""

from __future__ import annotations

from audit.render.safe import terminal_safe
from audit.report.model import TrafficInfo

MAX_LINES = 50


def render_traffic(traffic: TrafficInfo, limit: int = MAX_LINES) -> str:
    """The window, what was left aside, then would-break, unused and partly used rules, unsegmented traffic."""
    out = [f"Observed traffic: {traffic.flows:,} flow(s) from {traffic.first or '?'} to {traffic.last or '?'} "
           f"in {len(traffic.files)} file(s), {traffic.pairs:,} distinct (source, destination, port); "
           f"{traffic.dropped:,} seen DROPPED, {traffic.replies:,} replies skipped; judged against {traffic.policies_from}"]
    if traffic.skipped:
        out.append("  not L3/L4 flows, skipped: " + ", ".join(f"{k} {v:,}" for k, v in traffic.skipped))
    if traffic.outside_only:
        out.append(f"  between two outside addresses (no pod of the cluster), left aside: {traffic.outside_only:,} flow(s)")
    if traffic.unmapped:
        out.append(f"  not placed on the inventory: {sum(v for _, v in traffic.unmapped):,} flow(s)")
        out += [f"    {v:,}: {k}" for k, v in traffic.unmapped[:limit]]
        out += [f"    e.g. {e}" for e in traffic.unmapped_examples[:5]]
    out.append("")
    out.append(f"Would break ({traffic.denied_rows:,}): observed flows these policies deny{_denied_flows(traffic)}")
    for row in traffic.would_break[:limit]:
        dropped = f", {row.dropped} seen DROPPED" if row.dropped else ""
        out.append(f"  {row.src} -> {row.dst} : {row.protocol} {row.port}  ({row.count} flow(s){dropped})")
        out += [f"      {line}" for line in row.why]
    if not traffic.would_break:
        out.append("  none: every observed flow is allowed")
    elif traffic.denied_rows > len(traffic.would_break[:limit]):
        out.append(f"  ... {traffic.denied_rows - len(traffic.would_break[:limit]):,} more row(s), none with more flows{_kept(traffic)}")
    unused = [r for r in traffic.rules if r.flows == 0]
    partial = [r for r in traffic.rules if r.flows and (r.peers_allowed is None or r.peers_used < r.peers_allowed or r.ports_allowed == "every port")]
    out.append("")
    per_policy: dict[str, list[int]] = {}
    for r in traffic.rules:
        per_policy.setdefault(r.policy, []).append(r.flows)
    idle = sorted(k for k, flows in per_policy.items() if not any(flows))
    out.append(f"Never used ({len(unused)} of {len(traffic.rules)} allow rules; {len(idle)} whole policies): "
               "no observed flow exercised them")
    out += [f"  {r.policy} {r.rule} ({r.ports_allowed})" for r in unused[:limit]]
    out.append("")
    out.append(f"Used in part ({len(partial)}): what traffic used of what the rule allows")
    for r in partial[:limit]:
        allowed = "every peer" if r.peers_allowed is None else f"{r.peers_allowed} pod class(es)"
        out.append(f"  {r.policy} {r.rule}: allows {allowed} on {r.ports_allowed}; used {r.peers_used} peer(s) on "
                   f"{', '.join(r.ports_used)} ({r.flows:,} flow(s))")
    out.append("")
    out.append(f"Unsegmented ({len(traffic.unsegmented)}): traffic in a direction no policy isolates, most peers first")
    out += [f"  {u.namespace}/{u.workload} {u.direction.lower()}: {u.peers} peer(s), {u.flows:,} flow(s)"
            for u in traffic.unsegmented[:limit]]
    more = max(len(unused), len(partial), len(traffic.unsegmented)) - limit
    if more > 0:
        out.append(f"\n(lists cut at {limit}; the JSON result has every row)")
    return terminal_safe("\n".join(out) + "\n")  # names from the capture and the inventory: escapes shown, never run


def _denied_flows(traffic: TrafficInfo) -> str:
    totals = traffic.would_break_totals
    return f", {totals.flows:,} flow(s) in all, {totals.dropped:,} of them seen DROPPED" if totals and totals.rows else ""


def _kept(traffic: TrafficInfo) -> str:
    """Where the denied rows past the terminal's cut are: the JSON result, up to the --top kept."""
    totals = traffic.would_break_totals
    if totals and totals.top and totals.rows > totals.top:
        return f" (the JSON result lists the first {totals.top:,} denied rows; --top 0 lists every one)"
    return " (the JSON result lists every one)"
