"""Run every registered check and apply severity overrides, waivers and annotations."""

from __future__ import annotations

import dataclasses
import hashlib
import time

from audit.checks.catalogue import checks_for
from audit.checks.registry import Context, Hit
from audit.config import BROAD_SELECTOR_ANNOTATION
from audit.gcpause import gc_paused
from audit.inventory import SourceRef
from audit.report.model import FindingRow, SourceLocation
from audit.report.severity import rank


def location(src: SourceRef | None) -> SourceLocation | None:
    """Where a manifest object came from (None for objects read from the API)."""
    if src is None or src.file is None:
        return None
    return SourceLocation(src.file, src.line, src.document)


def fingerprint(check: str, hit: Hit) -> str:
    """Stable across runs for the same problem on the same object (for trends and SARIF)."""
    raw = "|".join([check, hit.namespace or "", hit.kind, hit.name, hit.key])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@gc_paused()
def run_checks(ctx: Context, timings: dict[str, float] | None = None) -> tuple[FindingRow, ...]:
    """All findings, most severe first, in a stable order; ``timings`` (check id -> seconds) is
    filled in when given (the benchmark prints it)."""
    waivers = [w for w in ctx.config.waivers if not w.expired(ctx.today)]
    findings: dict[str, FindingRow] = {}
    for check in checks_for(ctx):
        started = time.perf_counter()
        severity = ctx.config.severity_overrides.get(check.id, check.severity)
        for hit in check.run(ctx):
            waiver = next((w for w in waivers if w.matches(check.id, hit.namespace, hit.name)), None)
            reason = None
            if waiver is not None:
                reason = waiver.describe()
            elif hit.accepted:
                reason = f"annotation {BROAD_SELECTOR_ANNOTATION}: {hit.accepted}"
            elif hit.overridden:
                reason = f"overridden by a higher tier: {hit.overridden}"
            finding_id = fingerprint(check.id, hit)
            same = findings.get(finding_id)
            if same is not None:
                # The same problem on the same object, seen from another pod class of it (a
                # StatefulSet's pods differ in their per-pod labels): one finding per workload.
                findings[finding_id] = dataclasses.replace(same, objects=tuple(dict.fromkeys(same.objects + hit.objects)))
                continue
            findings[finding_id] = FindingRow(
                id=finding_id, check=check.id, title=check.title, severity=severity,
                category=check.category, status="waived" if reason else "fail",
                namespace=hit.namespace, kind=hit.kind, name=hit.name, message=hit.message,
                remediation=check.remediation, fix_yaml=hit.fix_yaml, objects=tuple(dict.fromkeys(hit.objects)),
                source=location(hit.source), waiver=reason, references=check.references,
                default_severity=check.severity if severity != check.severity else None, field=hit.field,
            )
        if timings is not None:
            timings[check.id] = time.perf_counter() - started
    return tuple(sorted(findings.values(), key=lambda f: (rank(f.severity), f.check, f.namespace or "", f.name, f.id)))
