"""Inventory in, report out: the pure core in one call."""

from __future__ import annotations

import datetime as dt

from audit.checks.catalogue import checks_for
from audit.checks.registry import Context, ObservedTraffic
from audit.checks.runner import run_checks
from audit.config import Config
from audit.engine.analysis import Analysis
from audit.engine.cni import detect_cni
from audit.engine.flows import FlowMapper, aggregate
from audit.inventory import Inventory
from audit.observed import TOP, FlowInput, ReadStats
from audit.report.build import build_report, report_connectivity, traffic_info
from audit.report.model import FindingRow, Report


def analyse(inventory: Inventory, config: Config, assume_enforced: bool = False) -> Analysis:
    """The analysis of an inventory, with its CNI report."""
    return Analysis(inventory, config.dns, detect_cni(inventory), assume_enforced)


def findings_of(analysis: Analysis, config: Config, today: dt.date, traffic: ObservedTraffic | None = None) -> tuple[FindingRow, ...]:
    """Every check's findings for an analysis (waivers, overrides and annotations applied)."""
    return run_checks(_context(analysis, config, today, traffic))


def _context(analysis: Analysis, config: Config, today: dt.date, traffic: ObservedTraffic | None) -> Context:
    cni = analysis.cni or detect_cni(analysis.inventory)
    return Context(analysis, config, cni, today, traffic)


def observe(analysis: Analysis, flows: FlowInput, top: int = TOP) -> tuple[ObservedTraffic, ReadStats]:
    """The flows placed on ``analysis`` and aggregated (streamed: read once per call); ``top``:
    the denied rows kept (most flows first; 0: every one)."""
    mapper = FlowMapper(analysis)
    stats = ReadStats()
    return ObservedTraffic(mapper, aggregate(mapper, flows.open(stats)), top), stats


def run_audit(inventory: Inventory, config: Config | None = None, now: dt.datetime | None = None,
              assume_enforced: bool = False, flows: FlowInput | None = None, candidate: Inventory | None = None,
              top: int = TOP, jobs: int = 1) -> Report:
    """Analyse an inventory and build the report. Pure apart from streaming ``flows`` through the
    reader it carries; deterministic given ``now``. With ``candidate``, its policies are applied
    to the inventory (as `kubectl apply` would) and the report judges that set; ``top``: the
    denied flow rows kept (most flows first; 0: every one); ``jobs``: processes sharing the checks
    (audit.forkshare)."""
    config = config or Config()
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    if candidate is not None:
        from audit.checks.propose import with_candidate

        inventory = with_candidate(inventory, candidate)
    analysis = analyse(inventory, config, assume_enforced)
    observed, stats = observe(analysis, flows, top) if flows is not None else (None, None)
    return report_of(analysis, config, now, observed, stats, "the inputs with the candidate applied" if candidate else "the inputs", jobs)


def report_of(analysis: Analysis, config: Config, now: dt.datetime, observed: ObservedTraffic | None = None,
              stats: ReadStats | None = None, policies_from: str = "the inputs", jobs: int = 1) -> Report:
    """The report of an analysis (and of flows already placed on it): checks, then the model."""
    ctx = _context(analysis, config, now.date(), observed)
    findings = run_checks(ctx, jobs=jobs)
    traffic = traffic_info(analysis, observed, stats, policies_from) if observed is not None and stats is not None else None
    return build_report(analysis, findings, checks_for(ctx), ctx.cni, config, now, report_connectivity(analysis, config.sensitive_ports),
                        traffic)
