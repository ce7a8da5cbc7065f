"""Assemble the report model from the analysis, the findings and the collection facts.

The one place where the engine's results become report rows: the model (`audit.report.model`)
stays a leaf that imports nothing of the engine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

from audit import __version__
from audit.checks.compliance import CONTROLS, assess
from audit.checks.registry import Check, ObservedTraffic
from audit.checks.runner import location
from audit.config import Config
from audit.engine.analysis import Analysis
from audit.engine.cni import CniComponent, CniReport
from audit.engine.connectivity import Connection, blast_radius, connections
from audit.engine.enforcement import supported
from audit.engine.flows import rule_use, unsegmented, would_break
from audit.engine.kinds import kinds
from audit.engine.ports import NONE, PortSet
from audit.gcpause import gc_paused
from audit.observed import ReadStats
from audit.report.model import (
    SCHEMA_VERSION,
    SCORE_FORMULA,
    BlastRadiusRow,
    CheckRow,
    CniComponentRow,
    CniInfo,
    CollectionIssueRow,
    ConfigInfo,
    ConnectionRow,
    ConnectivityInfo,
    ControlRow,
    DeniedFlowRow,
    DeniedTotals,
    Evidence,
    FindingRow,
    InputFile,
    MapCell,
    NamespaceRow,
    PolicyRow,
    Report,
    RuleUseRow,
    ScanInfo,
    SegmentationMap,
    Summary,
    ToolInfo,
    TrafficInfo,
    UnsegmentedRow,
    WaiverRow,
    is_external,
    score_and_grade,
)
from audit.report.severity import SEVERITIES

REPORT_CLASSES = 300
"""Reports list every connection up to this many pod classes."""
BLAST_CLASSES = 20_000
MAP_CLASSES = 2_000
"""Up to this many pod classes the connections are enumerated (not all listed) to draw the map."""
"""Reports carry the blast radius up to this many pod classes (it costs one pass over the class pairs)."""


def report_connectivity(analysis: Analysis, sensitive_ports: tuple[int, ...] = ()) -> ConnectivityInfo:
    """The connectivity section of a report: connections listed for small clusters, the blast
    radius up to ``BLAST_CLASSES`` pod classes, a pointer to the command beyond; the segmentation
    map while the connections can be listed."""
    count = sum(1 for c in analysis.real_classes() if c.governed)
    if count > BLAST_CLASSES:
        return ConnectivityInfo(False, f"{count} pod classes: too many for a report; run `netpol-audit connectivity` "
                                       "(-f blast for the blast radius, -f matrix, -n NAMESPACE)", ())
    radius = blast_rows(analysis)
    if count > MAP_CLASSES:
        return ConnectivityInfo(True, f"{count} pod classes: too many to list every connection in a report (run "
                                      "`netpol-audit connectivity`); the blast radius is below", (), radius)
    conns = list(connections(analysis))
    seg_map = segmentation_map(analysis, conns, sensitive_ports)
    if count > REPORT_CLASSES:
        return ConnectivityInfo(True, f"{count} pod classes: too many to list every connection in a report (run "
                                      "`netpol-audit connectivity`); the map and the blast radius are below", (), radius, seg_map)
    rows = tuple(ConnectionRow(c.src, c.dst, str(c.conns)) for c in conns)
    return ConnectivityInfo(True, f"{len(rows)} allowed connections between {count} pod classes and outside address ranges",
                            rows, radius, seg_map)


MAP_NAMESPACES = 40
"""Rows and columns of the segmentation map; beyond it the most connected namespaces are drawn."""


def segmentation_map(analysis: Analysis, conns: list[Connection], sensitive_ports: tuple[int, ...],
                     order: tuple[str, ...] | None = None) -> SegmentationMap:
    """Namespace x namespace, how open each pair is (every port, some, none), with outside
    addresses and other namespaces' sensitive ports as columns of their own. ``order``: draw
    these namespaces (a before/after pair shares one layout)."""
    sensitive_of: dict[str, PortSet] = {}  # workload ref -> the sensitive ports its pods declare
    wanted = set(sensitive_ports)
    for cls in analysis.real_classes():
        ports = [p for p in cls.ports if p.port in wanted]
        if ports:
            for w in cls.workloads:
                sensitive_of[w.pod_ref] = sensitive_of.get(w.pod_ref, NONE) | PortSet.of({p.protocol: [(p.port, p.port)] for p in ports})
    everything: dict[tuple[str, str], bool] = {}
    pairs: dict[tuple[str, str], int] = {}

    def add(src: str, dst: str, all_ports: bool) -> None:
        everything[(src, dst)] = everything.get((src, dst), False) or all_ports
        pairs[(src, dst)] = pairs.get((src, dst), 0) + 1

    for c in conns:
        if is_external(c.src) or "[" not in c.src:
            continue  # from outside or the ingress controller: rows are namespaces
        src_ns = c.src.split("/", 1)[0]
        if is_external(c.dst):
            add(src_ns, "internet", c.conns.is_everything)
            continue
        dst_ns = c.dst.split("/", 1)[0]
        add(src_ns, dst_ns, c.conns.is_everything)
        exposed = sensitive_of.get(c.dst)
        if exposed is not None and dst_ns != src_ns and c.conns & exposed:
            add(src_ns, "sensitive", False)
    degree: dict[str, int] = {}
    for (src, dst), n in pairs.items():
        for ns in (src, dst):
            if ns not in ("internet", "sensitive"):
                degree[ns] = degree.get(ns, 0) + n
    every = sorted({c.namespace for c in analysis.real_classes() if c.governed} | set(degree))
    shown = list(order) if order is not None else sorted(every, key=lambda ns: (-degree.get(ns, 0), ns))[:MAP_NAMESPACES]
    keep = set(shown) | {"internet", "sensitive"}
    return SegmentationMap(
        tuple(sorted(shown)),
        tuple(MapCell(src, dst, "all" if everything[(src, dst)] else "some", n)
              for (src, dst), n in sorted(pairs.items()) if src in keep and dst in keep),
        len(every))


@gc_paused()
def traffic_info(analysis: Analysis, observed: ObservedTraffic, stats: ReadStats, policies_from: str) -> TrafficInfo:
    """The report's traffic section: the window and sources, and the three answers."""
    mapper, traffic = observed.mapper, observed.traffic
    denied = would_break(analysis, mapper, traffic, top=observed.top)
    return TrafficInfo(
        files=tuple(stats.files), flows=traffic.flows, dropped=traffic.dropped, first=traffic.first, last=traffic.last,
        replies=stats.replies, skipped=tuple(sorted(stats.skipped.items())),
        unmapped=tuple(sorted(traffic.unmapped.items(), key=lambda kv: (-kv[1], kv[0]))), unmapped_examples=tuple(traffic.unmapped_examples),
        pairs=len(traffic.pairs), outside_only=traffic.outside_only, policies_from=policies_from,
        would_break=tuple(DeniedFlowRow(d.src, d.dst, d.port, d.protocol, d.count, d.dropped, d.first, d.last, d.why)
                          for d in denied.rows),
        rules=tuple(RuleUseRow(r.policy, r.namespace, r.kind, r.name, r.rule, r.flows, r.peers_used, r.peers_allowed, r.ports_used,
                               r.ports_allowed)
                    for r in rule_use(analysis, mapper, traffic)),
        unsegmented=tuple(UnsegmentedRow(u.namespace, u.workload, u.direction, u.peers, u.flows) for u in unsegmented(analysis, mapper, traffic)),
        would_break_totals=DeniedTotals(denied.total, denied.flows, denied.dropped, observed.top),
    )


def kind_support(component: CniComponent) -> tuple[str, ...]:
    """What a CNI enforces of each policy resource but NetworkPolicy (judged by the component itself)."""
    out = []
    for kind in kinds():
        if kind.declaration.enforced_by is None:
            continue
        supports = kind.declaration.enforced_by.get(component.name, ())
        for resource in kind.declaration.resources:
            if not resource.auxiliary:
                verdict, why = supported(component, supports, resource)
                out.append(f"{resource.name}: {verdict} ({why})")
    return tuple(dict.fromkeys(out))  # a resource served by two API groups (Calico's) once


@gc_paused()
def build_report(analysis: Analysis, findings: tuple[FindingRow, ...], checks: list[Check], cni: CniReport,
                 config: Config, now: dt.datetime, connectivity: ConnectivityInfo | None = None,
                 traffic: TrafficInfo | None = None) -> Report:
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
            findings=finding_count.get(ns.name, 0), source=location(ns.source) if ns.declared else None,
        ))
    audited = [r for r in ns_rows if not r.excluded]

    both = 0
    for cls in analysis.real_classes():
        if cls.governed and not config.is_excluded(cls.namespace) and analysis.is_isolated(cls.id, "Ingress") and analysis.is_isolated(cls.id, "Egress"):
            both += cls.pods

    policy_rows = policy_table(analysis)
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

    by_kind: dict[str, int] = {}
    for row in policy_rows:
        if row.valid:
            by_kind[row.kind] = by_kind.get(row.kind, 0) + 1

    failing_checks = frozenset(f.check for f in fails if f.severity != "info")
    undecided = frozenset(f.check for f in fails if f.severity == "info")
    controls = []
    ran = {c.id for c in checks}
    for control in CONTROLS:
        # A control is judged on the checks that ran: the flow checks only with flows.
        judged = dataclasses.replace(control, checks=tuple(c for c in control.checks if c in ran))
        verdict_of = assess(judged, failing_checks, undecided, col.complete, cni.verdict, cni.summary)
        not_run = tuple(c for c in control.checks if c not in ran)
        reason = verdict_of.reason + (f" ({', '.join(not_run)} not run: no flows were given)" if not_run else "")
        controls.append(ControlRow(control.framework, control.id, control.title, verdict_of.status, judged.checks,
                                   verdict_of.evidence, control.kind, control.criteria, reason))

    score: int | None
    grade: str | None
    score, grade = score_and_grade(
        len(audited), sum(1 for r in audited if r.default_deny_ingress), sum(1 for r in audited if r.default_deny_egress),
        by_severity, cni.verdict != "not-enforced",
    )
    if not col.complete:
        score = grade = None
    today = now.date()
    return Report(
        schema_version=SCHEMA_VERSION,
        tool=ToolInfo("netpol-audit", __version__),
        generated_at=now.isoformat().replace("+00:00", "Z"),
        scan=ScanInfo(
            source=col.source, inputs=col.inputs, cluster=col.cluster, context=col.context, server=col.server,
            server_version=col.server_version, started=col.started, finished=col.finished,
            api_requests=col.api_requests, complete=col.complete,
            issues=tuple(CollectionIssueRow(i.resource, i.reason, i.core, i.invalid) for i in col.issues),
            notices=col.notices + (f"DNS: {analysis.dns_note}",), object_counts=dict(col.object_counts), skipped_kinds=dict(col.skipped_kinds),
        ),
        cni=CniInfo(cni.verdict, cni.summary, tuple(
            CniComponentRow(c.name, c.namespace, c.daemonset, c.enforces, c.evidence, c.version, c.version_source,
                            tuple(map(str, c.settings)), kind_support(c)) for c in cni.components)),
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
            policies=sum(by_kind.values()), invalid_policies=len(analysis.invalid), policies_by_kind=dict(sorted(by_kind.items())),
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
        evidence=_evidence(analysis, checks, config),
        traffic=traffic,
    )


def blast_rows(analysis: Analysis, namespaces: set[str] | None = None) -> tuple[BlastRadiusRow, ...]:
    """The blast radius of every namespace (or of ``namespaces``), worst first, as report rows."""
    return tuple(BlastRadiusRow(r.namespace, r.workloads, r.namespaces, r.outside) for r in blast_radius(analysis, namespaces))


def namespaces_with_pods(analysis: Analysis) -> list[str]:
    """The namespaces that have pods policies govern: the rows a namespace matrix always has."""
    return sorted({c.namespace for c in analysis.real_classes() if c.governed})


def policy_table(analysis: Analysis) -> tuple[PolicyRow, ...]:
    """Every policy object of every kind: the valid ones (taking part or not) with what they select, and
    the invalid ones with why, in one order (kind, namespace, name)."""
    rows = []
    # Per selected set (the analysis shares one among equal selections): a namespace's policies often select all of it.
    selections: dict[int, tuple[frozenset[int], int, tuple[str, ...]]] = {}  # holds each set: its id stays its own
    for policy, enforced in [(p, True) for p in analysis.policies if not p.setting] + [(p, False) for p in analysis.unenforced_policies]:
        selected = analysis.selected(policy) if enforced else analysis.select(policy.subject.selection)
        summary = selections.get(id(selected))
        if summary is None:
            chosen = [analysis.classes[c] for c in selected]
            summary = selections[id(selected)] = (selected, sum(c.pods for c in chosen if c.governed),
                                                  tuple(sorted({r for c in chosen for r in c.refs})))
        rows.append(PolicyRow(
            kind=policy.display_kind, namespace=policy.namespace, name=policy.name, valid=True, enforced=enforced,
            subject=policy.subject.text, policy_types=policy.types, types_explicit=policy.types_explicit,
            selected_pods=summary[1], selected_workloads=summary[2],
            ingress_rules=tuple(f"{r.action}: {r.text}" if r.action != "Allow" else r.text for r in policy.rules_in("Ingress")),
            egress_rules=tuple(f"{r.action}: {r.text}" if r.action != "Allow" else r.text for r in policy.rules_in("Egress")),
            errors=(), source=location(policy.source)))
    for bad in analysis.invalid:
        rows.append(PolicyRow(bad.display_kind, bad.obj.namespace, bad.obj.name, False, False, "", (), False, 0, (), (), (),
                              tuple(map(str, bad.errors)), location(bad.obj.source)))
    return tuple(sorted(rows, key=lambda r: (r.kind, r.namespace or "", r.name)))


def completeness(source: str, complete: bool, inputs: int, issues: int) -> str:
    """How complete the scan was, in the words of its source: files read, or cluster resources read."""
    if source == "manifests":
        if complete:
            return f"Complete: every input file ({inputs}) was read and every object in it was valid"
        return f"INCOMPLETE: {issues} object(s) were invalid and left out; the rest of the {inputs} file(s) was read"
    what = "the saved inventory was replayed; when it was collected, " if source == "inventory" else ""
    if complete:
        return f"Complete: {what}every core cluster resource (namespaces, pods, NetworkPolicies, DaemonSets, policy kinds served) was read"
    return f"INCOMPLETE: {what}{issues} cluster resource(s) or object(s) could not be read"


def catalogue_digest(checks: list[Check]) -> str:
    """SHA-256 of the check catalogue (ids, severities, titles, categories): names the rules in force."""
    rows = sorted((c.id, c.severity, c.title, c.category) for c in checks)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def _evidence(analysis: Analysis, checks: list[Check], config: Config) -> Evidence:
    col = analysis.inventory.collection
    dns = config.dns
    return Evidence(
        completeness=completeness(col.source, col.complete, len(col.inputs), sum(1 for i in col.issues if i.core)),
        config=ConfigInfo(
            path=config.path, sha256=config.sha256, excluded_namespaces=config.excluded_namespaces,
            sensitive_ports=config.sensitive_ports, severity_overrides=dict(sorted(config.severity_overrides.items())),
            waivers=len(config.waivers), environment_label=config.environment_label,
            dns=f"Service {dns.namespace}/{dns.service}, else pods labelled "
                + ",".join(f"{k}={v}" for k, v in dns.labels),
            assume_enforced=analysis.assume_enforced,
        ),
        input_files=tuple(InputFile(path, digest, size) for path, digest, size in col.input_digests),
        catalogue_sha256=catalogue_digest(checks),
        checks=len(checks),
    )


def map_pair(before: Analysis, after: Analysis, sensitive_ports: tuple[int, ...]) -> tuple[SegmentationMap, SegmentationMap]:
    """The maps of two states of a cluster on one layout: the namespaces of both, most connected first."""
    listed = [list(connections(before)), list(connections(after))]
    first, second = (segmentation_map(a, c, sensitive_ports) for a, c in zip((before, after), listed))
    order = tuple(sorted(dict.fromkeys(first.namespaces + second.namespaces)))[:MAP_NAMESPACES]
    return (segmentation_map(before, listed[0], sensitive_ports, order),
            segmentation_map(after, listed[1], sensitive_ports, order))
