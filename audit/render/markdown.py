"""Markdown for a pull-request comment: the verdict, what changed, the worst findings, each fix."""

from __future__ import annotations

from audit.render.safe import terminal_safe
from audit.render.view import worst_first
from audit.report.model import FindingRow, Report
from audit.report.severity import SEVERITIES

ROWS = 30
"""Findings listed in full; a PR comment stays readable (the rest are counted)."""


def cell(text: str) -> str:
    """Text for a Markdown table cell: no pipes, no line breaks, no HTML or link syntax from the input."""
    out = " ".join(terminal_safe(text).split()).replace("|", "\\|")
    for ch in "<>[]`*_":
        out = out.replace(ch, "\\" + ch)
    return out[:300]


def _object(f: FindingRow) -> str:
    return f"{f.namespace}/{f.name}" if f.namespace and f.kind != "Namespace" else f.name


def render_markdown(report: Report) -> str:
    s = report.summary
    lines = [f"### netpol-audit: {s.verdict.upper()}" + (f" (score {s.score}/100, grade {s.grade})" if s.score is not None else
                                                          " (no score: the scan is incomplete)"), ""]
    if not report.scan.complete:
        lines += ["> **INCOMPLETE SCAN**: this is not an all-clear. "
                  + "; ".join(cell(f"{i.resource}: {i.reason}") for i in report.scan.issues[:5]), ""]
    if report.cni.verdict != "enforced":
        lines += [f"> **CNI {report.cni.verdict}**: {cell(report.cni.summary)}. What follows is what the policies declare.", ""]
    counts = ", ".join(f"{s.findings[sev]} {sev}" for sev in SEVERITIES if s.findings[sev])
    lines += [f"Default-deny: ingress {s.default_deny_ingress}/{s.audited_namespaces}, egress "
              f"{s.default_deny_egress}/{s.audited_namespaces} namespaces. Findings: {counts or 'none'}"
              + (f" ({s.waived_findings} waived)." if s.waived_findings else "."), ""]
    if report.trend is not None:
        t = report.trend
        lines += [f"Since {t.previous_generated_at}: **{len(t.new)} new**, {len(t.resolved)} resolved, {t.persisting} persisting.", ""]
    fails = [f for f in report.findings if f.status == "fail"]
    if fails:
        order = worst_first(report)
        fails.sort(key=lambda f: (SEVERITIES.index(f.severity), order.get(f.namespace or "", -1), f.check, f.name))
        new = {r.id for r in report.trend.new} if report.trend else set()
        lines += ["| severity | check | object | finding |", "| --- | --- | --- | --- |"]
        for f in fails[:ROWS]:
            mark = " (new)" if f.id in new else ""
            lines.append(f"| {f.severity}{mark} | {f.check} | {cell(_object(f))} | {cell(f.message)} |")
        if len(fails) > ROWS:
            lines.append(f"\n{len(fails) - ROWS} more findings in the full report.")
        fixes = [f for f in fails[:ROWS] if f.fix_yaml]
        if fixes:
            lines += ["", "<details><summary>Suggested fixes (review before applying; `netpol-audit fix` writes them all)</summary>", ""]
            for f in fixes[:5]:
                lines += [f"{f.check} {cell(_object(f))}:", "", "```yaml", (f.fix_yaml or "").replace("```", "'''").rstrip(), "```", ""]
            lines.append("</details>")
    else:
        lines.append("No unwaived findings." if report.scan.complete else "No findings in what could be read.")
    return "\n".join(lines) + "\n"
