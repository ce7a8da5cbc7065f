"""The report model: the one structure every renderer reads (and the JSON result's shape).

Building it is the last step of analysis; renderers never recompute anything from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from audit import __version__
from audit.analysis import Analysis
from audit.checks.registry import Check
from audit.cni import CniReport
from audit.compliance import CONTROLS
from audit.config import Config
from audit.gcpause import gc_paused
from audit.inventory import SourceRef
from audit.severity import SEVERITIES, at_least

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class SourceLocation:
    file: str | None
    line: int | None
    document: int | None


@dataclass(frozen=True)
class CollectionIssueRow:
    resource: str
    reason: str
    core: bool


@dataclass(frozen=True)
class ScanInfo:
    source: str
    inputs: tuple[str, ...]
    cluster: str | None
    context: str | None
    server: str | None
    server_version: str | None
    started: str | None
    finished: str | None
    api_requests: int
    complete: bool
    issues: tuple[CollectionIssueRow, ...]
    notices: tuple[str, ...]
    object_counts: dict[str, int]
    skipped_kinds: dict[str, int]


@dataclass(frozen=True)
class CniComponentRow:
    name: str
    namespace: str
    daemonset: str
    enforces: str
    evidence: str


@dataclass(frozen=True)
class CniInfo:
    verdict: str
    summary: str
    components: tuple[CniComponentRow, ...]


SCORE_FORMULA = (
    "score = 30 x (namespaces with default-deny ingress / audited namespaces) "
    "+ 30 x (namespaces with default-deny egress / audited namespaces) "
    "+ 40 x max(0, 1 - P / 10), where P = (20 x critical + 5 x high + 2 x medium + 0.5 x low unwaived findings) "
    "/ audited namespaces; coverage counts as 0 when the CNI does not enforce NetworkPolicy. "
    "Grade: A >= 90, B >= 80, C >= 70, D >= 60, else F."
)


def score_and_grade(audited: int, deny_in: int, deny_out: int, by_severity: dict[str, int], enforced: bool) -> tuple[int, str]:
    """The posture score (0-100) and grade, as SCORE_FORMULA states them."""
    n = max(1, audited)
    coverage = (30 * deny_in + 30 * deny_out) / n if enforced else 0.0
    penalty = (20 * by_severity["critical"] + 5 * by_severity["high"] + 2 * by_severity["medium"] + 0.5 * by_severity["low"]) / n
    score = round(coverage + 40 * max(0.0, 1 - penalty / 10))
    grade = next((g for g, floor in (("A", 90), ("B", 80), ("C", 70), ("D", 60)) if score >= floor), "F")
    return score, grade


@dataclass(frozen=True)
class Summary:
    verdict: str
    score: int
    grade: str
    score_formula: str
    namespaces: int
    audited_namespaces: int
    excluded_namespaces: tuple[str, ...]
    namespaces_with_policies: int
    default_deny_ingress: int
    default_deny_egress: int
    pods: int
    pods_isolated_ingress: int
    pods_isolated_egress: int
    pods_isolated_both: int
    host_network_pods: int
    policies: int
    invalid_policies: int
    extended_policies: dict[str, int]
    findings: dict[str, int]
    waived_findings: int


@dataclass(frozen=True)
class NamespaceRow:
    name: str
    excluded: bool
    declared: bool
    policies: int
    workloads: int
    pods: int
    host_network_pods: int
    isolated_ingress: int
    isolated_egress: int
    default_deny_ingress: bool
    default_deny_egress: bool
    ingress_reason: str
    egress_reason: str
    findings: int


@dataclass(frozen=True)
class PolicyRow:
    namespace: str
    name: str
    valid: bool
    pod_selector: str
    policy_types: tuple[str, ...]
    types_explicit: bool
    selected_pods: int
    selected_workloads: tuple[str, ...]
    ingress_rules: tuple[str, ...]
    egress_rules: tuple[str, ...]
    errors: tuple[str, ...]
    source: SourceLocation | None


@dataclass(frozen=True)
class FindingRow:
    id: str
    check: str
    title: str
    severity: str
    category: str
    status: str
    namespace: str | None
    kind: str
    name: str
    message: str
    remediation: str
    fix_yaml: str | None
    objects: tuple[str, ...]
    source: SourceLocation | None
    waiver: str | None
    references: tuple[str, ...]


@dataclass(frozen=True)
class CheckRow:
    id: str
    title: str
    severity: str
    category: str
    rationale: str
    remediation: str
    references: tuple[str, ...]


@dataclass(frozen=True)
class ControlRow:
    framework: str
    id: str
    title: str
    status: str  # "pass" | "fail" | "not-assessable"
    checks: tuple[str, ...]
    failing: tuple[str, ...]


@dataclass(frozen=True)
class WaiverRow:
    check: str
    namespace: str
    object: str
    reason: str
    expires: str | None
    expired: bool


@dataclass(frozen=True)
class ToolInfo:
    name: str
    version: str


@dataclass(frozen=True)
class ConnectionRow:
    src: str
    dst: str
    conn: str


@dataclass(frozen=True)
class BlastRadiusRow:
    """What a compromised pod of a namespace can reach: other workloads, other namespaces, outside."""

    namespace: str
    workloads: int
    namespaces: int
    outside: bool


@dataclass(frozen=True)
class ConnectivityInfo:
    """Allowed connections (as `netpol-audit connectivity` lists them), when the cluster is small
    enough to list them in a report; otherwise why not."""

    computed: bool
    note: str
    connections: tuple[ConnectionRow, ...]
    blast_radius: tuple[BlastRadiusRow, ...] = ()


@dataclass(frozen=True)
class FindingRef:
    """Enough of a finding to name it in a trend."""

    id: str
    check: str
    severity: str
    namespace: str | None
    kind: str
    name: str
    message: str


@dataclass(frozen=True)
class Trend:
    """What changed since a previous result (see audit.trend)."""

    previous_generated_at: str
    new: tuple[FindingRef, ...]
    resolved: tuple[FindingRef, ...]
    persisting: int
    score_delta: int
    default_deny_ingress_delta: int
    default_deny_egress_delta: int
    pods_isolated_both_delta: int
    findings_delta: dict[str, int]


@dataclass(frozen=True)
class Report:
    schema_version: str
    tool: ToolInfo
    generated_at: str
    scan: ScanInfo
    cni: CniInfo
    summary: Summary
    namespaces: tuple[NamespaceRow, ...]
    policies: tuple[PolicyRow, ...]
    findings: tuple[FindingRow, ...]
    checks: tuple[CheckRow, ...]
    controls: tuple[ControlRow, ...]
    waivers: tuple[WaiverRow, ...] = field(default=())
    trend: Trend | None = None
    connectivity: ConnectivityInfo | None = None

    @property
    def generated_datetime(self) -> dt.datetime:
        """``generated_at`` as an aware datetime."""
        return dt.datetime.fromisoformat(self.generated_at.replace("Z", "+00:00"))

    def failing(self, threshold: str) -> list[FindingRow]:
        """Unwaived findings at or above ``threshold``."""
        return [f for f in self.findings if f.status == "fail" and at_least(f.severity, threshold)]


def location(src: SourceRef | None) -> SourceLocation | None:
    """Where a manifest object came from (None for objects read from the API)."""
    if src is None or src.file is None:
        return None
    return SourceLocation(src.file, src.line, src.document)


@gc_paused()
def build_report(analysis: Analysis, findings: tuple[FindingRow, ...], checks: list[Check], cni: CniReport,
                 config: Config, now: dt.datetime, connectivity: ConnectivityInfo | None = None) -> Report:
    """Assemble the report model from the analysis and the findings."""
    inv = analysis.inventory
    col = inv.collection

    ns_rows = []
    finding_count: dict[str, int] = {}
    for f in findings:
        if f.namespace and f.status == "fail":
            finding_count[f.namespace] = finding_count.get(f.namespace, 0) + 1
    for ns in inv.namespaces:
        cov = analysis.coverage[ns.name]
        ns_rows.append(NamespaceRow(
            name=ns.name, excluded=config.is_excluded(ns.name), declared=ns.declared,
            policies=len(cov.policies), workloads=cov.workloads, pods=cov.pods, host_network_pods=cov.host_network_pods,
            isolated_ingress=cov.ingress.isolated_pods, isolated_egress=cov.egress.isolated_pods,
            default_deny_ingress=cov.ingress.default_deny, default_deny_egress=cov.egress.default_deny,
            ingress_reason=cov.ingress.reason, egress_reason=cov.egress.reason,
            findings=finding_count.get(ns.name, 0),
        ))
    audited = [r for r in ns_rows if not r.excluded]

    both = 0
    for cls in analysis.real_classes():
        if cls.governed and not config.is_excluded(cls.namespace) and analysis.is_isolated(cls.id, "Ingress") and analysis.is_isolated(cls.id, "Egress"):
            both += cls.pods

    policy_rows = []
    for parsed in analysis.parsed:
        p = parsed.policy
        obj = parsed.obj
        if p is None:
            policy_rows.append(PolicyRow(obj.namespace, obj.name, False, "", (), False, 0, (), (), (),
                                         tuple(map(str, parsed.errors)), location(obj.source)))
            continue
        chosen = [analysis.classes[c] for c in sorted(analysis.selected[p.key])]
        policy_rows.append(PolicyRow(
            namespace=p.namespace, name=p.name, valid=True, pod_selector=str(p.pod_selector),
            policy_types=p.types, types_explicit=p.types_explicit,
            selected_pods=sum(c.pods for c in chosen if c.governed),
            selected_workloads=tuple(sorted(w.ref for c in chosen for w in c.workloads)),
            ingress_rules=tuple(r.describe() for r in p.rules("Ingress")),
            egress_rules=tuple(r.describe() for r in p.rules("Egress")),
            errors=(), source=location(p.source),
        ))

    fails = [f for f in findings if f.status == "fail"]
    by_severity = {s: sum(1 for f in fails if f.severity == s) for s in SEVERITIES}
    if not col.complete:
        verdict = "incomplete"
    elif by_severity["critical"] or by_severity["high"]:
        verdict = "fail"
    elif by_severity["medium"] or by_severity["low"]:
        verdict = "warn"
    else:
        verdict = "pass"

    extended: dict[str, int] = {}
    for ext in inv.extended:
        extended[ext.kind] = extended.get(ext.kind, 0) + 1

    controls = []
    for control in CONTROLS:
        failing = sorted({f.check for f in fails if f.check in control.checks and f.severity != "info"})
        unknown = any(f.check in control.checks and f.severity == "info" for f in fails)
        if failing:
            status = "fail"
        elif unknown or not col.complete:
            status = "not-assessable"
        else:
            status = "pass"
        controls.append(ControlRow(control.framework, control.id, control.title, status, control.checks, tuple(failing)))

    score, grade = score_and_grade(
        len(audited), sum(1 for r in audited if r.default_deny_ingress), sum(1 for r in audited if r.default_deny_egress),
        by_severity, cni.verdict != "not-enforced",
    )
    today = now.date()
    return Report(
        schema_version=SCHEMA_VERSION,
        tool=ToolInfo("netpol-audit", __version__),
        generated_at=now.isoformat().replace("+00:00", "Z"),
        scan=ScanInfo(
            source=col.source, inputs=col.inputs, cluster=col.cluster, context=col.context, server=col.server,
            server_version=col.server_version, started=col.started, finished=col.finished,
            api_requests=col.api_requests, complete=col.complete,
            issues=tuple(CollectionIssueRow(i.resource, i.reason, i.core) for i in col.issues),
            notices=col.notices, object_counts=dict(col.object_counts), skipped_kinds=dict(col.skipped_kinds),
        ),
        cni=CniInfo(cni.verdict, cni.summary, tuple(
            CniComponentRow(c.name, c.namespace, c.daemonset, c.enforces, c.evidence) for c in cni.components)),
        summary=Summary(
            verdict=verdict,
            score=score, grade=grade, score_formula=SCORE_FORMULA,
            namespaces=len(ns_rows), audited_namespaces=len(audited),
            excluded_namespaces=tuple(r.name for r in ns_rows if r.excluded),
            namespaces_with_policies=sum(1 for r in audited if r.policies),
            default_deny_ingress=sum(1 for r in audited if r.default_deny_ingress),
            default_deny_egress=sum(1 for r in audited if r.default_deny_egress),
            pods=sum(r.pods for r in audited),
            pods_isolated_ingress=sum(r.isolated_ingress for r in audited),
            pods_isolated_egress=sum(r.isolated_egress for r in audited),
            pods_isolated_both=both,
            host_network_pods=sum(r.host_network_pods for r in audited),
            policies=len(analysis.policies), invalid_policies=len(analysis.parsed) - len(analysis.policies),
            extended_policies=dict(sorted(extended.items())),
            findings=by_severity, waived_findings=sum(1 for f in findings if f.status == "waived"),
        ),
        namespaces=tuple(ns_rows),
        policies=tuple(policy_rows),
        findings=findings,
        checks=tuple(CheckRow(c.id, c.title, c.severity, c.category, c.rationale, c.remediation, c.references) for c in checks),
        controls=tuple(controls),
        connectivity=connectivity,
        waivers=tuple(WaiverRow(w.check, w.namespace, w.object, w.reason,
                                w.expires.isoformat() if w.expires else None, w.expired(today)) for w in config.waivers),
    )
