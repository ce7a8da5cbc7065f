"""The fix bundle, verified: every fix the audit offers as one set of files, applied to the inputs
and judged again by the engine: what it resolves, what it closes (connections allowed today that
it denies), anything it would open; with observed flows, what of that traffic it would close,
extended with allow policies so that nothing the capture saw forwarded is closed."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from audit.checks.bundle import BundleFile, apply, bundle, without_fix
from audit.checks.propose import Key, keep_open, probes
from audit.checks.registry import ObservedTraffic
from audit.config import Config
from audit.engine.analysis import Analysis
from audit.engine.connectivity import Connection, connections
from audit.engine.diff import Change, diff, external_range, widened
from audit.engine.flows import End, Tally
from audit.engine.ports import PortSet, parse_port_set
from audit.inventory import Inventory
from audit.observed import FlowInput
from audit.pipeline import analyse, findings_of, observe
from audit.report.fixplan import BundleFileRow, ClosedRow, FixReport, TrafficRow
from audit.report.model import is_external


@dataclass(frozen=True)
class Closed:
    """A connection allowed today that the bundle denies (closes) or allows on fewer ports
    (narrows): the ports it takes away, and what the capture saw on them."""

    kind: str
    source: str
    destination: str
    ports: PortSet
    flows: int | None = None
    """Flows the capture saw forwarded on those ports; None: not checked against traffic."""
    first: str | None = None
    last: str | None = None

    @property
    def between_workloads(self) -> bool:
        return not is_external(self.source) and not is_external(self.destination)

    def __str__(self) -> str:
        seen = "" if self.flows is None else f"  ({self.flows} flow(s) seen, {self.first} .. {self.last})" if self.flows else "  (never seen)"
        return f"{self.source} => {self.destination} : {self.ports}{seen}"


@dataclass(frozen=True)
class FixPlan:
    """A bundle and what the engine found applying it to the inputs."""

    files: tuple[BundleFile, ...]
    offered: int
    """Failing findings that come with a fix."""
    resolved: frozenset[str]
    """Ids of those the bundle resolves once applied."""
    failing: int
    """Unwaived failing findings in all."""
    no_fix: str
    """The findings without a generated fix, in words."""
    restored: tuple[Connection, ...]
    """DNS to the cluster DNS pods the bundle opens (what the DNS fixes are for)."""
    opened: tuple[Connection, ...]
    """Anything else the bundle opens: a defect, never written silently."""
    closes: tuple[Closed, ...]
    """Connections allowed today that the bundle denies (`diff --apply` lists the same)."""
    traffic: TrafficRow | None
    """With flows: what the bundle does to them; None: not checked against traffic."""
    dry_run: tuple[str, ...]
    """How to try the bundle first where the detected CNI offers a dry run."""
    before: Analysis
    after: Analysis

    @property
    def summary(self) -> str:
        """The counts in one line: what it resolves, what it closes, whether traffic was checked."""
        between = sum(1 for c in self.closes if c.between_workloads)
        text = (f"resolves {len(self.resolved)} of {self.offered} findings that have a fix; closes {len(self.closes)} connection(s) "
                f"allowed today, {between} between workloads")
        if self.traffic is None:
            return text + "; the closed connections were not checked against observed traffic (fix --flows)"
        seen = sum(1 for c in self.closes if c.flows)
        return (text + f"; {seen} of them carried observed flows; {len(self.traffic.kept)} observed flow(s) kept open by added "
                f"allows, {len(self.traffic.still_denied)} still denied")


def plan_fix(inventory: Inventory, cfg: Config, today: dt.date | None = None, progress: Callable[[str], None] | None = None,
             flows: FlowInput | None = None) -> FixPlan:
    """Build the bundle for ``inventory``'s findings, apply it, and judge the result again; with
    ``flows``, keep every observed forwarded flow open that the bundle would otherwise deny."""
    today = today or dt.datetime.now(dt.UTC).date()
    say = progress or (lambda _: None)
    now = analyse(inventory, cfg)
    before = findings_of(now, cfg, today)
    say("building the bundle and checking it with the engine")
    after = analyse(apply(inventory, bundle(before, cfg.excluded_namespaces, cfg.dns)), cfg)
    observed = observe(now, flows)[0] if flows is not None else None
    keep: dict[str, list[dict[str, Any]]] = {}
    notes: tuple[str, ...] = ()
    forwarded: list[tuple[Key, Tally]] = []
    denied_today: set[Key] = set()
    broken: dict[Key, tuple[Tally, frozenset[str]]] = {}
    if observed is not None:
        say("keeping the observed traffic open")
        forwarded = list(_forwarded(observed))
        denied_today = {key for key, tally in forwarded if _denying_sides(now, observed, key, tally) is not None}
        for key, tally in forwarded:
            sides = None if key in denied_today else _denying_sides(after, observed, key, tally)
            if sides is not None:
                broken[key] = (tally, sides)
        keep, notes = keep_open(now, observed.mapper, broken, cfg.excluded_namespaces)
        if keep:
            after = analyse(apply(inventory, bundle(before, cfg.excluded_namespaces, cfg.dns, keep=keep)), cfg)
    remaining = {f.id for f in findings_of(after, cfg, today) if f.status == "fail"}
    offered = [f for f in before if f.status == "fail" and f.fix_yaml]
    verified = frozenset(f.id for f in offered if f.id not in remaining)
    closes = _closes(now, after, observed, forwarded)
    changes = widened(now, after)
    # Restoring DNS (53 to the cluster DNS pods) is what the DNS fixes are for; anything else opened is a defect.
    dns_refs = {w.pod_ref for cid in now.dns_classes for w in now.classes[cid].workloads}
    dns_ports = parse_port_set("TCP 53,UDP 53")
    restored = tuple(c for c in changes if c.dst in dns_refs and not c.conns - dns_ports)
    by_ns = _observed_by_namespace(closes) if observed is not None else None
    files = bundle(before, cfg.excluded_namespaces, cfg.dns, verified, keep=keep, observed_closed=by_ns)
    check = _traffic_check(after, observed, forwarded, denied_today, broken, notes) if observed is not None else None
    return FixPlan(tuple(files), len(offered), verified, sum(1 for f in before if f.status == "fail"), without_fix(before),
                   restored, tuple(c for c in changes if c not in restored), closes, check, dry_run(now), now, after)


def _forwarded(observed: ObservedTraffic) -> Iterable[tuple[Key, Tally]]:
    return ((k, t) for k, t in sorted(observed.traffic.pairs.items(), key=lambda kv: str(kv[0])) if t.dropped < t.count)


def _denying_sides(analysis: Analysis, observed: ObservedTraffic, key: Key, tally: Tally) -> frozenset[str] | None:
    """The directions that deny a flow somewhere between its probes; None: allowed everywhere."""
    sides: set[str] = set()
    for src in probes(observed.mapper, key[0], tally, "src"):
        for dst in probes(observed.mapper, key[1], tally, "dst"):
            verdict = analysis.allowed(src, dst, key[2], key[3])
            sides |= {side.direction for side in (verdict.egress, verdict.ingress) if not side.allowed}
    return frozenset(sides) or None


def _describe(observed: ObservedTraffic, key: Key) -> str:
    tally = observed.traffic.pairs[key]
    mapper = observed.mapper
    return f"{mapper.describe(key[0], tally, 'src')} -> {mapper.describe(key[1], tally, 'dst')} {key[3]}/{key[2]} ({tally.count - tally.dropped} flow(s))"


def _traffic_check(after: Analysis, observed: ObservedTraffic, forwarded: list[tuple[Key, Tally]], denied_today: set[Key],
                   broken: dict[Key, tuple[Tally, frozenset[str]]], notes: tuple[str, ...]) -> TrafficRow:
    """Every observed forwarded flow judged again with the whole bundle applied: the ones the
    added allows keep open, the ones still denied, the ones today's policies deny already."""
    still = {key for key, tally in forwarded if key not in denied_today and _denying_sides(after, observed, key, tally) is not None}
    traffic = observed.traffic
    return TrafficRow(traffic.flows, tuple(_describe(observed, k) for k in sorted(broken, key=str) if k not in still),
                        tuple(_describe(observed, k) for k, _ in forwarded if k in still),
                        tuple(_describe(observed, k) for k, _ in forwarded if k in denied_today), sum(traffic.unmapped.values()),
                        tuple(traffic.unmapped_examples[:10]), notes)


Names = list[str | ipaddress.IPv4Address | ipaddress.IPv6Address]


def _names(observed: ObservedTraffic, end: End, tally: Tally, side: str) -> Names:
    """A flow end as connection lines name it: its workloads, or the outside addresses probed."""
    if isinstance(end, int):
        return [w.pod_ref for w in observed.mapper.analysis.classes[end].workloads]
    return [p for p in probes(observed.mapper, end, tally, side) if not isinstance(p, int)]


def _matches(name: str, ends: Names) -> bool:
    span = external_range(name)
    if span is None:
        return name in ends
    return any(not isinstance(e, str) and e.version == span[0] and span[1] <= int(e) <= span[2] for e in ends)


def _closes(now: Analysis, after: Analysis, observed: ObservedTraffic | None, forwarded: list[tuple[Key, Tally]]) -> tuple[Closed, ...]:
    """Connections allowed today that ``after`` denies, each with the observed flows on its closed ports."""
    changes = [c for c in diff(list(connections(now)), list(connections(after))) if c.kind in ("closed", "narrowed")]
    if observed is None:
        return tuple(Closed(c.kind, c.src, c.dst, c.before - c.after) for c in changes)
    # Flows indexed by the names their ends take in connection lines (an outside end under "*"), so
    # each closed connection reads its own flows, not every flow of the capture.
    index: dict[tuple[str, str], list[tuple[Key, Tally, Names, Names]]] = {}
    for key, tally in forwarded:
        srcs, dsts = _names(observed, key[0], tally, "src"), _names(observed, key[1], tally, "dst")
        for s in _index_names(key[0], srcs):
            for d in _index_names(key[1], dsts):
                index.setdefault((s, d), []).append((key, tally, srcs, dsts))
    return tuple(_seen(c, index.get((_index_name(c.src), _index_name(c.dst)), [])) for c in changes)


def _index_names(end: End, names: Names) -> list[str]:
    return [n for n in names if isinstance(n, str)] if isinstance(end, int) else ["*"]


def _index_name(end: str) -> str:
    return "*" if external_range(end) is not None else end


def _seen(change: Change, flows: list[tuple[Key, Tally, Names, Names]]) -> Closed:
    closed = change.before - change.after
    tally = Tally()
    for key, t, srcs, dsts in flows:
        if PortSet.of({key[3]: [(key[2], key[2])]}) & closed and _matches(change.src, srcs) and _matches(change.dst, dsts):
            tally.merge(t.count - t.dropped, 0, t.first, t.last)
    return Closed(change.kind, change.src, change.dst, closed, tally.count, tally.first, tally.last)


def _observed_by_namespace(closes: tuple[Closed, ...]) -> dict[str, int]:
    """Observed flows the bundle closes, counted for the namespace at either end."""
    out: dict[str, int] = {}
    for c in closes:
        for end in {c.source, c.destination}:
            if not is_external(end) and "/" in end:
                out[end.split("/", 1)[0]] = out.get(end.split("/", 1)[0], 0) + (c.flows or 0)
    return out


def dry_run(analysis: Analysis) -> tuple[str, ...]:
    """How to try the bundle before it enforces anything, for the CNI the inventory shows."""
    cni = analysis.cni
    names = {c.name for c in cni.components} if cni is not None else set()
    notes = []
    if "cilium" in names:
        notes.append("Cilium: try the bundle in policy audit mode first. Per endpoint (safer: the other endpoints keep "
                     "enforcing): `cilium-dbg endpoint config ENDPOINT-ID PolicyAuditMode=Enabled` in the agent pod of each "
                     "node running the workloads; for the whole agent, `policy-audit-mode: \"true\"` in the cilium-config "
                     "ConfigMap (Helm `policyAuditMode=true`), which stops enforcing every policy while it is on. Hubble then "
                     "shows verdict AUDIT for what would be dropped: `netpol-audit flows` on that capture with "
                     "`--candidate` this bundle, then turn audit mode off.")
    if "calico" in names:
        notes.append("Calico: to preview a file without enforcing it, apply its NetworkPolicies as StagedKubernetesNetworkPolicy "
                     "(projectcalico.org/v3; the same spec, only apiVersion and kind change; Calico Open Source 3.30 and later, "
                     "Calico Enterprise and Cloud) and read the staged verdicts in the flow logs; then apply the file itself.")
    if cni is not None and cni.verdict == "not-enforced":
        notes.append("The detected CNI does not enforce NetworkPolicy: applied as is, this bundle changes nothing on the network.")
    if not notes:
        notes.append("No dry run is known for the detected CNI: apply one namespace file at a time, the least observed traffic "
                     "first, and watch `netpol-audit flows` between files.")
    return tuple(notes)



def fix_report(plan: FixPlan) -> FixReport:
    """The plan as the renderers read it."""
    by_ns = _observed_by_namespace(plan.closes) if plan.traffic is not None else None
    files = tuple(BundleFileRow(f.name, _namespace(f), len(f.documents), f.resolves, by_ns.get(_namespace(f) or "", 0) if by_ns is not None
                                else None) for f in plan.files)
    closes = tuple(ClosedRow(c.kind, c.source, c.destination, str(c.ports), c.between_workloads, c.flows, c.first, c.last)
                   for c in plan.closes)
    return FixReport(plan.summary, plan.offered, tuple(sorted(plan.resolved)), plan.failing, plan.no_fix, files, closes,
                     sum(1 for c in plan.closes if c.between_workloads), tuple(map(str, plan.opened)), tuple(map(str, plan.restored)),
                     plan.traffic, plan.dry_run)


def _namespace(file: BundleFile) -> str | None:
    """The namespace a bundle file is for (the Kyverno file has none)."""
    found = {str((d.get("metadata") or {}).get("namespace") or "") for d in file.documents} - {""}
    return found.pop() if len(found) == 1 else None
