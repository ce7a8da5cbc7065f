"""Run every registered check and apply severity overrides, waivers and annotations."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time

from audit.checks.catalogue import checks_for, sharing_groups
from audit.checks.registry import Check, Context, Hit
from audit.config import BROAD_SELECTOR_ANNOTATION, Waiver
from audit.forkshare import run_shared
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
def run_checks(ctx: Context, timings: dict[str, float] | None = None, jobs: int = 1) -> tuple[FindingRow, ...]:
    """All findings, most severe first, in a stable order; ``timings`` (check id -> seconds) is
    filled in when given (the benchmark prints it). With ``jobs`` above 1, checks are shared with
    forked workers (audit.forkshare); the findings are the same."""
    waivers = [w for w in ctx.config.waivers if not w.expired(ctx.today)]
    groups = sharing_groups(checks_for(ctx))
    findings: dict[str, FindingRow] = {}
    for group, results in zip(groups, run_shared([functools.partial(_run_all, group, ctx, waivers) for group in groups], jobs)):
        for check, (found, seconds) in zip(group, results):
            findings.update(found)
            if timings is not None:
                timings[check.id] = seconds
    return tuple(sorted(findings.values(), key=lambda f: (rank(f.severity), f.check, f.namespace or "", f.name, f.id)))


def _run_all(checks: list[Check], ctx: Context, waivers: list[Waiver]) -> list[tuple[dict[str, FindingRow], float]]:
    return [_run(check, ctx, waivers) for check in checks]


def _run(check: Check, ctx: Context, waivers: list[Waiver]) -> tuple[dict[str, FindingRow], float]:
    """One check's findings by id, and the seconds it took."""
    started = time.perf_counter()
    severity = ctx.config.severity_overrides.get(check.id, check.severity)
    findings: dict[str, FindingRow] = {}
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
    return findings, time.perf_counter() - started
