"""Inventory in, report out: the pure core in one call."""

from __future__ import annotations

import datetime as dt

from audit.checks.registry import Context, all_checks
from audit.checks.runner import run_checks
from audit.config import Config
from audit.engine.analysis import Analysis
from audit.engine.cni import detect_cni
from audit.inventory import Inventory
from audit.report.build import build_report, report_connectivity
from audit.report.model import FindingRow, Report


def analyse(inventory: Inventory, config: Config, assume_enforced: bool = False) -> Analysis:
    """The analysis of an inventory, with its CNI report."""
    return Analysis(inventory, config.dns, detect_cni(inventory.daemonsets, inventory.node_hints), assume_enforced)


def findings_of(analysis: Analysis, config: Config, today: dt.date) -> tuple[FindingRow, ...]:
    """Every check's findings for an analysis (waivers, overrides and annotations applied)."""
    cni = analysis.cni or detect_cni(analysis.inventory.daemonsets, analysis.inventory.node_hints)
    return run_checks(Context(analysis, config, cni, today))


def run_audit(inventory: Inventory, config: Config | None = None, now: dt.datetime | None = None,
              assume_enforced: bool = False) -> Report:
    """Analyse an inventory and build the report. Pure: no I/O, deterministic given ``now``."""
    config = config or Config()
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    analysis = analyse(inventory, config, assume_enforced)
    cni = analysis.cni or detect_cni(inventory.daemonsets, inventory.node_hints)
    findings = findings_of(analysis, config, now.date())
    return build_report(analysis, findings, all_checks(), cni, config, now, report_connectivity(analysis, config.sensitive_ports))
