"""The report model: the one structure every renderer reads (and the JSON result's shape).

A leaf: it imports nothing of the engine, the checks or the sources. `audit.report.build`
assembles it; renderers never recompute anything from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from audit.fastinit import fast_init
from audit.report.severity import at_least

SCHEMA_VERSION = "2.2"


@fast_init
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
    invalid: bool = False  # an invalid object that was left out (not a resource that could not be read)


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
    """A CNI found, and what it was judged by: its settings (object, field, value) and version."""

    name: str
    namespace: str
    daemonset: str
    enforces: str
    """Whether it enforces NetworkPolicy."""
    evidence: str
    version: str | None = None
    version_source: str = ""
    """Where the version was read, or why it is unknown."""
    settings: tuple[str, ...] = ()
    """Every setting read: "kube-system/cilium-config enable-policy=never"."""
    kinds: tuple[str, ...] = ()
    """What it enforces of each other policy kind, and why: "ClusterNetworkPolicy: no (...)"."""


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
    score: int | None
    """None when the scan is incomplete: a score of what could be read would read as a posture."""
    grade: str | None
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
    """Valid policy objects of every kind (enforced or not)."""
    invalid_policies: int
    """Policy objects of every kind that the API server would reject."""
    policies_by_kind: dict[str, int]
    """Valid policy objects per kind (as reports name the kind: "Calico NetworkPolicy")."""
    findings: dict[str, int]
    waived_findings: int


@fast_init
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
    source: SourceLocation | None = None  # where the Namespace object is written (manifests)


@fast_init
@dataclass(frozen=True)
class PolicyRow:
    """A policy object of any kind: what it selects and what its rules say, or why it is invalid."""

    kind: str
    namespace: str | None
    name: str
    valid: bool
    enforced: bool
    """Its kind takes part (the CNI enforces it, or that is assumed); False: present, no effect."""
    subject: str
    """The subject selector as the kind writes it (``podSelector app=api``, ``endpointSelector {}``)."""
    policy_types: tuple[str, ...]
    types_explicit: bool
    selected_pods: int
    selected_workloads: tuple[str, ...]
    ingress_rules: tuple[str, ...]
    egress_rules: tuple[str, ...]
    errors: tuple[str, ...]
    source: SourceLocation | None


@fast_init
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
    default_severity: str | None = None  # the check's own severity when the configuration overrode it
    field: str | None = None
    """The field of the object the finding is about, in its kind's own terms (``spec.ingress[0].fromEntities[0]``)."""


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
    status: str  # "pass" | "fail" | "not-assessable" | "manual"
    checks: tuple[str, ...]
    failing: tuple[str, ...]  # the checks the verdict rests on (failing, or undecided when not assessable)
    kind: str = "segmentation"  # "segmentation" (needs an enforcing CNI) | "cni" | "manual"
    criteria: str = ""  # the rule the verdict follows, in words
    reason: str = ""  # why this verdict, in words


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


EXTERNAL = "[External]"
"""The suffix of a connection end that is a range of outside addresses (np-guard's notation)."""


def is_external(name: str) -> bool:
    """Whether a connection end is an outside address range (not a workload or the ingress controller)."""
    return name.endswith(EXTERNAL)


class ConnectionLine(Protocol):
    """One allowed connection as listings print it (millions stream through `connectivity`)."""

    @property
    def src(self) -> str: ...

    @property
    def dst(self) -> str: ...

    @property
    def conns(self) -> object:
        """What is allowed; its text is what listings print (``TCP 80,443``, ``All Connections``)."""


class PathLine(Protocol):
    """One source, destination and port an expectation was checked on, with the explanation."""

    @property
    def source(self) -> str: ...

    @property
    def destination(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def protocol(self) -> str: ...

    @property
    def allowed(self) -> bool: ...

    def explain(self) -> Sequence[str]:
        """Why, side by side: the rules that decided each side."""


class ExpectationResult(Protocol):
    """A `verify` expectation and whether the policies meet it."""

    @property
    def name(self) -> str: ...

    @property
    def expect(self) -> str: ...

    @property
    def passed(self) -> bool: ...

    @property
    def detail(self) -> str: ...

    @property
    def paths(self) -> Sequence[PathLine]: ...


@dataclass(frozen=True)
class BlastRadiusRow:
    """What a compromised pod of a namespace can reach: other workloads, other namespaces, outside."""

    namespace: str
    workloads: int
    namespaces: int
    outside: bool


@dataclass(frozen=True)
class MapCell:
    """How open one source namespace is towards one column: a namespace, `internet` (outside
    addresses) or `sensitive` (a sensitive port a workload of another namespace serves)."""

    src: str
    dst: str
    level: str  # "all" (every port) | "some"
    pairs: int  # workload (or range) pairs behind it


@dataclass(frozen=True)
class SegmentationMap:
    """Who can reach whom, namespace by namespace: the picture of the segmentation."""

    namespaces: tuple[str, ...]  # rows and columns, most connected first
    cells: tuple[MapCell, ...]  # only the open ones
    total_namespaces: int  # before the map was cut to its size


@dataclass(frozen=True)
class ConnectivityInfo:
    """Allowed connections (as `netpol-audit connectivity` lists them), when the cluster is small
    enough to list them in a report; otherwise why not."""

    computed: bool
    note: str
    connections: tuple[ConnectionRow, ...]
    blast_radius: tuple[BlastRadiusRow, ...] = ()
    map: SegmentationMap | None = None


@dataclass(frozen=True, slots=True)
class DeniedFlowRow:
    """Observed flows the policies deny, per workload pair and port, with each side's rule chain."""

    src: str
    dst: str
    port: int
    protocol: str
    count: int
    dropped: int
    first: str | None
    last: str | None
    why: tuple[str, ...]


@dataclass(frozen=True)
class DeniedTotals:
    """Every denied row, listed or not: rows (workload pair and port), their flows, of those the
    flows seen DROPPED; ``top``: the rows listed, most flows first (0: every one)."""

    rows: int
    flows: int
    dropped: int
    top: int


@dataclass(frozen=True)
class RuleUseRow:
    """An allow rule, of any kind, against the observed traffic."""

    policy: str
    namespace: str | None
    kind: str
    name: str
    rule: str
    flows: int
    peers_used: int
    peers_allowed: int | None
    ports_used: tuple[str, ...]
    ports_allowed: str


@dataclass(frozen=True)
class UnsegmentedRow:
    """A workload with observed traffic in a direction no policy isolates."""

    namespace: str
    workload: str
    direction: str
    peers: int
    flows: int


@dataclass(frozen=True)
class TrafficInfo:
    """The observed traffic the report judged the policies against: its window and sources, what
    could not be placed, and the three answers (would break, rule use, unsegmented)."""

    files: tuple[str, ...]
    flows: int
    dropped: int
    first: str | None
    last: str | None
    replies: int
    skipped: tuple[tuple[str, int], ...]
    unmapped: tuple[tuple[str, int], ...]
    unmapped_examples: tuple[str, ...]
    pairs: int
    """Distinct (source, destination, port, protocol) the flows aggregate to."""
    outside_only: int
    """Flows with an outside address at both ends: no pod of the cluster in them."""
    policies_from: str
    """Which policies were judged: "the inputs" or the candidate folder applied to them."""
    would_break: tuple[DeniedFlowRow, ...]
    """The denied rows with the most flows (``would_break_totals.top`` of them), most flows first."""
    rules: tuple[RuleUseRow, ...]
    unsegmented: tuple[UnsegmentedRow, ...]
    would_break_totals: DeniedTotals | None = None
    """Every denied row, listed or not (None: a result written before schema 2.2)."""

    @property
    def denied_rows(self) -> int:
        """Denied rows, listed or not."""
        return self.would_break_totals.rows if self.would_break_totals else len(self.would_break)

    @property
    def denied_forwarded(self) -> int:
        """Denied flows the capture saw forwarded: applying the policies stops them."""
        if self.would_break_totals:
            return self.would_break_totals.flows - self.would_break_totals.dropped
        return sum(row.count - row.dropped for row in self.would_break)


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
    """What changed since a previous result (see audit.ops.trend)."""

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
class InputFile:
    """A manifest file the scan read, with its digest: the evidence can be tied to exact inputs."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ConfigInfo:
    """The configuration in force: every setting that can change a verdict or the score."""

    path: str | None  # None: the built-in defaults
    sha256: str | None
    excluded_namespaces: tuple[str, ...]
    sensitive_ports: tuple[int, ...]
    severity_overrides: dict[str, str]
    waivers: int
    environment_label: str
    dns: str
    assume_enforced: bool


@dataclass(frozen=True)
class Evidence:
    """What the report rests on: scope, configuration, inputs, the check catalogue."""

    completeness: str  # worded for the source: files read, or cluster resources read
    config: ConfigInfo
    input_files: tuple[InputFile, ...]
    catalogue_sha256: str
    checks: int


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
    evidence: Evidence | None = None  # None only in results written before it existed
    traffic: TrafficInfo | None = None  # observed flows (`--flows`), when given

    @property
    def generated_datetime(self) -> dt.datetime:
        """``generated_at`` as an aware datetime."""
        return dt.datetime.fromisoformat(self.generated_at.replace("Z", "+00:00"))

    def failing(self, threshold: str) -> list[FindingRow]:
        """Unwaived findings at or above ``threshold``."""
        return [f for f in self.findings if f.status == "fail" and at_least(f.severity, threshold)]
