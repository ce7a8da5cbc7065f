"""The terminal report: the verdict first, then coverage, then findings grouped by severity."""

from __future__ import annotations

from itertools import groupby

from tabulate import tabulate

from audit.render.safe import sanitized
from audit.render.view import worst_first
from audit.report.model import FindingRow, Report
from audit.report.severity import SEVERITIES

_COLOURS = {"critical": "1;31", "high": "31", "medium": "33", "low": "36", "info": "2", "bold": "1", "ok": "32"}


class _Style:
    def __init__(self, colour: bool):
        self.colour = colour

    def __call__(self, text: str, style: str) -> str:
        return f"\033[{_COLOURS[style]}m{text}\033[0m" if self.colour else text


def _pct(part: int, total: int) -> str:
    return f"{part}/{total} ({100 * part / total:.0f}%)" if total else "0/0 (-)"


NAME_WIDTH = 24
"""Namespace names are cut to this width so the table fits 80 columns."""


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def _deny(ingress: bool, egress: bool) -> str:
    return {(True, True): "in+out", (True, False): "in", (False, True): "out"}.get((ingress, egress), "NONE")


def _worst_severity(report: Report) -> dict[str, str]:
    """Each namespace's most severe unwaived finding."""
    worst: dict[str, str] = {}
    for f in report.findings:  # most severe first
        if f.status == "fail" and f.namespace and f.namespace not in worst:
            worst[f.namespace] = f.severity
    return worst


def _object(f: FindingRow) -> str:
    if f.kind == "Namespace" or not f.namespace:
        return f.name
    return f"{f.namespace}/{f.name}"


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def _trend_lines(report: Report, s: _Style, limit: int) -> list[str]:
    t = report.trend
    assert t is not None
    lines = [f"Since {t.previous_generated_at}: {s(f'{len(t.new)} new', 'high') if t.new else '0 new'}, "
             f"{len(t.resolved)} resolved, {t.persisting} persisting; score {_signed(t.score_delta)}, "
             f"default-deny ingress {_signed(t.default_deny_ingress_delta)}, egress {_signed(t.default_deny_egress_delta)}, "
             f"pods isolated both ways {_signed(t.pods_isolated_both_delta)}"]
    for ref in t.new[:limit]:
        where = f"{ref.namespace}/{ref.name}" if ref.namespace and ref.kind != "Namespace" else ref.name
        lines.append(f"  new: {ref.check} [{ref.severity}] {where}: {ref.message}")
    if len(t.new) > limit:
        lines.append(f"  ... {len(t.new) - limit} more new findings")
    return lines


def render_terminal(report: Report, colour: bool = False, max_rows: int = 50, max_objects: int = 10) -> str:
    """Plain text for a terminal; ANSI colour only when ``colour`` is set. Every string of the
    report is made terminal-safe first, so the only escape sequences are the colours."""
    report = sanitized(report)
    s = _Style(colour)
    out: list[str] = []
    scan, summ = report.scan, report.summary
    if scan.source == "cluster":
        source = " ".join(x for x in (scan.cluster or scan.context, f"({scan.server}, {scan.server_version or 'version unknown'})") if x)
    else:
        source = ", ".join(scan.inputs[:3]) + (" ..." if len(scan.inputs) > 3 else "")
        if scan.cluster:
            source = f"{scan.cluster} ({source})"
    out.append(s(f"netpol-audit {report.tool.version}", "bold") + f"  {scan.source}: {source}  at {report.generated_at}")
    verdict_style = {"fail": "critical", "warn": "medium", "pass": "ok", "incomplete": "critical"}[summ.verdict]
    scored = f"   Score: {summ.score}/100 (grade {summ.grade})" if summ.score is not None else "   Score: none (the scan is incomplete)"
    out.append("Verdict: " + s(summ.verdict.upper(), verdict_style) + scored)
    if not scan.complete:
        out.append(s("INCOMPLETE SCAN: some resources could not be read or were invalid and left out; this is not an all-clear.", "critical"))
        for issue in scan.issues:
            out.append(f"  - {issue.resource}: {issue.reason}")
    if report.cni.verdict == "not-enforced":
        out.append(s(f"POLICIES ARE NOT ENFORCED: {report.cni.summary}", "critical"))
    out.append("")
    out.append(f"CNI:                 {report.cni.verdict} - {report.cni.summary}")
    for c in report.cni.components:
        version = f" {c.version}" if c.version else " (version unknown)"
        out.append(f"  {c.name}{version} {c.namespace}/{c.daemonset}: NetworkPolicy {c.enforces}")
        out.extend(f"    {setting}" for setting in c.settings)
    out.append(f"Default-deny:        ingress {summ.default_deny_ingress}/{summ.audited_namespaces} namespaces, "
               f"egress {summ.default_deny_egress}/{summ.audited_namespaces} namespaces")
    out.append(f"Pods isolated:       ingress {_pct(summ.pods_isolated_ingress, summ.pods)}, "
               f"egress {_pct(summ.pods_isolated_egress, summ.pods)}, both {_pct(summ.pods_isolated_both, summ.pods)}")
    if summ.host_network_pods:
        out.append(f"hostNetwork pods:    {summ.host_network_pods} (not governed by NetworkPolicy, not counted)")
    out.append(f"Policies:            {summ.policies} valid, {summ.invalid_policies} invalid"
               + (f" ({', '.join(f'{k} {v}' for k, v in summ.policies_by_kind.items())})" if summ.policies_by_kind else ""))
    counts = ", ".join(s(f"{sev} {summ.findings[sev]}", sev) if summ.findings[sev] else f"{sev} 0" for sev in SEVERITIES)
    out.append(f"Findings:            {counts}" + (f" ({summ.waived_findings} waived)" if summ.waived_findings else ""))
    if report.evidence is not None:
        cfg = report.evidence.config
        used = f"{cfg.path} (sha256 {cfg.sha256[:12]}...)" if cfg.path and cfg.sha256 else "built-in defaults"
        overrides = ", ".join(f"{k}={v}" for k, v in cfg.severity_overrides.items()) or "none"
        out.append(f"Config:              {used}; overrides: {overrides}; waivers: {cfg.waivers}")
    tally = {st: sum(1 for c in report.controls if c.status == st) for st in ("pass", "fail", "not-assessable", "manual")}
    out.append(f"Controls:            pass {tally['pass']}, fail {tally['fail']}, not assessable {tally['not-assessable']}, "
               f"manual {tally['manual']} (criteria in the JSON, HTML and PDF)")
    if report.trend is not None:
        out.extend(_trend_lines(report, s, max_objects))
    out.append("")

    audited = [r for r in report.namespaces if not r.excluded]
    if audited:
        order = worst_first(report)
        audited.sort(key=lambda r: order[r.name])
        worst = _worst_severity(report)
        rows = [[_fit(r.name, NAME_WIDTH), r.policies, r.pods, f"{r.isolated_ingress}/{r.pods}", f"{r.isolated_egress}/{r.pods}",
                 _deny(r.default_deny_ingress, r.default_deny_egress), f"{r.findings} {worst.get(r.name, '')}".rstrip()]
                for r in audited[:max_rows]]
        out.append("Namespaces, worst first (Iso: pods isolated; Deny: default-deny ingress/egress):")
        out.append(tabulate(rows, headers=["Namespace", "Pol", "Pods", "Iso in", "Iso out", "Deny", "Findings"],
                            tablefmt="simple", disable_numparse=True))
        if len(audited) > max_rows:
            out.append(f"... {len(audited) - max_rows} more namespaces, none worse than those above")
            out.append("    (all of them: the HTML report, or the JSON result with -f json)")
    if summ.excluded_namespaces:
        out.append(f"Excluded: {', '.join(summ.excluded_namespaces)}")
    out.append("")

    fails = [f for f in report.findings if f.status == "fail"]
    if not fails:
        out.append(s("No findings." if scan.complete else "No findings in what could be read.", "ok"))
    for severity, group in groupby(fails, key=lambda f: f.severity):
        out.append(s(severity.upper(), severity))
        for check, grouped in groupby(group, key=lambda f: f.check):
            items = list(grouped)
            out.append(f"  {check} {items[0].title} ({len(items)})")
            for f in items[:max_objects]:
                loc = f"  [{f.source.file}:{f.source.line}]" if f.source and f.source.file else ""
                out.append(f"    - {_object(f)}: {f.message}{loc}")
            if len(items) > max_objects:
                out.append(f"    ... {len(items) - max_objects} more (see the JSON result)")
            out.append(f"    fix: {items[0].remediation}")
        out.append("")
    waived = [f for f in report.findings if f.status == "waived"]
    if waived:
        out.append(f"Waived ({len(waived)}):")
        for f in waived[:max_objects]:
            out.append(f"  - {f.check} {_object(f)}: {f.waiver}")
        if len(waived) > max_objects:
            out.append(f"  ... {len(waived) - max_objects} more")
        out.append("")
    if scan.notices:
        out.append(f"Notices ({len(scan.notices)}):")
        for notice in scan.notices[:max_objects]:
            out.append(f"  - {notice}")
        if len(scan.notices) > max_objects:
            out.append(f"  ... {len(scan.notices) - max_objects} more")
    if report.traffic is not None:
        from audit.render.traffic import render_traffic

        out += ["", render_traffic(report.traffic, max_rows).rstrip()]
    return "\n".join(out).rstrip() + "\n"
