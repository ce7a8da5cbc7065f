"""One JSON line for log pipelines (the CronJob prints it on stdout)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from audit.report.model import Report


def render_summary_line(report: Report, reports: Sequence[str] = ()) -> str:
    s, t = report.summary, report.trend
    line = {
        "tool": "netpol-audit",
        "version": report.tool.version,
        "generatedAt": report.generated_at,
        "cluster": report.scan.cluster or report.scan.context or report.scan.source,
        "complete": report.scan.complete,
        "verdict": s.verdict,
        "score": s.score,
        "grade": s.grade,
        "cni": report.cni.verdict,
        "namespaces": s.audited_namespaces,
        "defaultDenyIngress": s.default_deny_ingress,
        "defaultDenyEgress": s.default_deny_egress,
        "pods": s.pods,
        "podsIsolatedBoth": s.pods_isolated_both,
        "findings": s.findings,
        "waived": s.waived_findings,
        "trend": None if t is None else {
            "since": t.previous_generated_at, "new": len(t.new), "resolved": len(t.resolved),
            "persisting": t.persisting, "scoreDelta": t.score_delta,
        },
        "reports": list(reports),
    }
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"
