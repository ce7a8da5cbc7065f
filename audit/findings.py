"""Run every registered check and apply severity overrides, waivers and annotations."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from audit.checks.registry import Context, Hit, all_checks
from audit.config import BROAD_SELECTOR_ANNOTATION
from audit.inventory import SourceRef
from audit.severity import rank


@dataclass(frozen=True)
class Finding:
    check: str
    title: str
    severity: str
    category: str
    status: str  # "fail" | "waived"
    namespace: str | None
    kind: str
    name: str
    message: str
    remediation: str
    fix_yaml: str | None
    objects: tuple[str, ...]
    source: SourceRef | None
    waiver: str | None
    fingerprint: str
    references: tuple[str, ...]

    @property
    def object_ref(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace and self.kind != "Namespace" else self.name


def fingerprint(check: str, hit: Hit) -> str:
    """Stable across runs for the same problem on the same object (for trends and SARIF)."""
    raw = "|".join([check, hit.namespace or "", hit.kind, hit.name, hit.key])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def run_checks(ctx: Context) -> tuple[Finding, ...]:
    """All findings, most severe first, in a stable order."""
    waivers = [w for w in ctx.config.waivers if not w.expired(ctx.today)]
    findings = []
    for check in all_checks():
        severity = ctx.config.severity_overrides.get(check.id, check.severity)
        for hit in check.run(ctx):
            waiver = next((w for w in waivers if w.matches(check.id, hit.namespace, hit.name)), None)
            reason = None
            if waiver is not None:
                reason = waiver.describe()
            elif hit.accepted:
                reason = f"annotation {BROAD_SELECTOR_ANNOTATION}: {hit.accepted}"
            findings.append(Finding(
                check=check.id, title=check.title, severity=severity, category=check.category,
                status="waived" if reason else "fail",
                namespace=hit.namespace, kind=hit.kind, name=hit.name, message=hit.message,
                remediation=check.remediation, fix_yaml=hit.fix_yaml, objects=hit.objects, source=hit.source,
                waiver=reason, fingerprint=fingerprint(check.id, hit), references=check.references,
            ))
    findings.sort(key=lambda f: (rank(f.severity), f.check, f.namespace or "", f.name, f.fingerprint))
    return tuple(findings)
