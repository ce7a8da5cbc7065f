"""The fix bundle's report rendered: SUMMARY.md beside the bundle, `fix -f json`, and the
closing lines on the terminal."""

from __future__ import annotations

import orjson

from audit.render.markdown import cell
from audit.report.fixplan import ClosedRow, FixReport
from audit.serde import to_jsonable

ROWS = 2000
"""Closed connections listed in SUMMARY.md (all of them are in `fix -f json`; the count always shows)."""

REVIEW_LOOP = ("`netpol-audit fix INPUTS --flows CAPTURE --out BUNDLE` -> `netpol-audit diff INPUTS --apply BUNDLE` (every "
               "connection it closes) -> `kubectl apply -f BUNDLE/FILE`, one file at a time in the order below -> "
               "`netpol-audit flows NEW-CAPTURE INPUTS --candidate BUNDLE` before the next file")


def render_fix_json(report: FixReport) -> str:
    """The report as JSON (camelCase keys, every closed connection)."""
    data = to_jsonable(report)
    data["verified"] = report.verified
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE).decode()


def render_fix_html(report: FixReport, max_rows: int = 5000) -> str:
    """One self-contained HTML page: every string escaped, only its own inline style allowed."""
    from audit.render.html import csp_hash
    from audit.render.view import environment, read_asset

    css = read_asset("report.css")
    return environment().get_template("fix.html.j2").render(f=report, css=css, style_hash=csp_hash(css), review_loop=REVIEW_LOOP,
                                                            seen=_seen, max_rows=max_rows)


def render_fix_pdf(report: FixReport, max_rows: int = 500) -> bytes:
    """The same page as a PDF, rendered offline (no URL is fetched)."""
    from audit.render.pdf import html_to_pdf
    from audit.render.safe import map_strings, printable

    return html_to_pdf(render_fix_html(map_strings(report, printable), max_rows))


def _seen(row: ClosedRow) -> str:
    if row.flows is None:
        return "not checked"
    if not row.flows:
        return "never seen"
    return f"{row.flows} flow(s), {row.first_seen} .. {row.last_seen}"


def render_fix_summary(report: FixReport) -> str:
    """SUMMARY.md: what the bundle resolves and closes, the order to apply it in, how to try it first."""
    lines = ["# netpol-audit fix bundle", "", cell(report.summary) + ".", ""]
    if report.opened:
        lines += [f"**The bundle would open {len(report.opened)} connection(s)**: do not apply it as is.", ""]
        lines += [f"- {cell(c)}" for c in report.opened[:50]] + [""]
    if report.traffic is not None and report.traffic.still_denied:
        lines += [f"**It still denies {len(report.traffic.still_denied)} observed flow(s)** that today's policies allow:", ""]
        lines += [f"- {cell(f)}" for f in report.traffic.still_denied[:50]] + [""]
    lines += ["## Apply in this order", "",
              "Each namespace file applies alone" + (", the one closing the least observed traffic first." if report.traffic else "."),
              "Review loop: " + REVIEW_LOOP + ".", "",
              "| # | file | namespace | documents | observed flows closed | resolves |", "| --- | --- | --- | --- | --- | --- |"]
    for i, f in enumerate(report.files, 1):
        seen = "not checked" if f.observed_closed is None else str(f.observed_closed)
        lines.append(f"| {i} | {cell(f.name)} | {cell(f.namespace or '(new namespaces)')} | {f.documents} | {seen} | {len(f.resolves)} |")
    lines += ["", "## Before the first apply", ""] + [f"- {cell(n)}" for n in report.dry_run]
    lines += ["", "## What it closes", "",
              f"{len(report.closes)} connection(s) allowed today are denied once the bundle is applied "
              f"({report.closes_between_workloads} between workloads); `diff --apply` lists the same."]
    if report.traffic is None:
        lines.append("They were **not checked against observed traffic**: `fix --flows CAPTURE` says which carried flows and keeps those open.")
    lines += ["", "| change | source | destination | ports closed | observed |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.kind} | {cell(r.source)} | {cell(r.destination)} | {cell(r.ports)} | {cell(_seen(r))} |" for r in report.closes[:ROWS]]
    if len(report.closes) > ROWS:
        lines.append(f"\n... and {len(report.closes) - ROWS} more (all of them: `fix -f json`).")
    t = report.traffic
    if t is not None:
        lines += ["", "## Observed traffic", "", f"{t.flows} flow(s) read. Kept open by allow policies added to the bundle: {len(t.kept)}."]
        lines += [f"- kept: {cell(k)}" for k in t.kept[:ROWS]]
        if t.denied_today:
            lines += ["", f"Denied by today's policies already (not by the bundle): {len(t.denied_today)}."]
            lines += [f"- {cell(d)}" for d in t.denied_today[:50]]
        if t.unplaced:
            lines += ["", f"Not placed (the inventory has no such pod or address): {t.unplaced} flow(s), not judged."]
            lines += [f"- {cell(e)}" for e in t.unplaced_examples]
        lines += [f"- note: {cell(n)}" for n in t.notes[:50]]
    if report.restored_dns:
        lines += ["", "## DNS restored", ""] + [f"- {cell(c)}" for c in report.restored_dns[:50]]
    return "\n".join(lines) + "\n"
