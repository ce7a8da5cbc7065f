"""Trend: what changed since a previous result (new, resolved and persisting findings, coverage deltas)."""

from __future__ import annotations

import dataclasses

from audit.report.model import FindingRef, FindingRow, Report, Trend
from audit.report.severity import SEVERITIES


def _ref(f: FindingRow) -> FindingRef:
    return FindingRef(f.id, f.check, f.severity, f.namespace, f.kind, f.name, f.message)


def compare(previous: Report, current: Report) -> Trend:
    """Compare unwaived findings by their stable fingerprint, and the headline numbers."""
    before = {f.id: f for f in previous.findings if f.status == "fail"}
    after = {f.id: f for f in current.findings if f.status == "fail"}
    p, c = previous.summary, current.summary
    return Trend(
        previous_generated_at=previous.generated_at,
        new=tuple(_ref(after[i]) for i in after if i not in before),
        resolved=tuple(_ref(before[i]) for i in before if i not in after),
        persisting=sum(1 for i in after if i in before),
        score_delta=(c.score or 0) - (p.score or 0) if c.score is not None and p.score is not None else 0,
        default_deny_ingress_delta=c.default_deny_ingress - p.default_deny_ingress,
        default_deny_egress_delta=c.default_deny_egress - p.default_deny_egress,
        pods_isolated_both_delta=c.pods_isolated_both - p.pods_isolated_both,
        findings_delta={s: c.findings.get(s, 0) - p.findings.get(s, 0) for s in SEVERITIES},
    )


def with_trend(current: Report, previous: Report | None) -> Report:
    """The report with its trend against ``previous`` (unchanged when there is none)."""
    if previous is None:
        return current
    return dataclasses.replace(current, trend=compare(previous, current))
