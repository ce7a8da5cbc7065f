"""The fix bundle, verified: every fix the audit offers as one set of files, applied to the inputs
and judged again by the engine, with what it resolves and anything it would open."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from audit.checks.bundle import BundleFile, apply, bundle, without_fix
from audit.config import Config
from audit.engine.analysis import Analysis
from audit.engine.connectivity import Connection
from audit.engine.diff import widened
from audit.engine.ports import parse_port_set
from audit.inventory import Inventory
from audit.pipeline import analyse, findings_of


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
    before: Analysis
    after: Analysis


def plan_fix(inventory: Inventory, cfg: Config, today: dt.date | None = None, progress: Callable[[str], None] | None = None) -> FixPlan:
    """Build the bundle for ``inventory``'s findings, apply it, and judge the result again."""
    today = today or dt.datetime.now(dt.UTC).date()
    now_analysis = analyse(inventory, cfg)
    before = findings_of(now_analysis, cfg, today)
    if progress is not None:
        progress("building the bundle and checking it with the engine")
    after_analysis = analyse(apply(inventory, bundle(before, cfg.excluded_namespaces, cfg.dns)), cfg)
    remaining = {f.id for f in findings_of(after_analysis, cfg, today) if f.status == "fail"}
    offered = [f for f in before if f.status == "fail" and f.fix_yaml]
    verified = frozenset(f.id for f in offered if f.id not in remaining)
    files = bundle(before, cfg.excluded_namespaces, cfg.dns, verified)
    # Restoring DNS (53 to the cluster DNS pods) is what the DNS fixes are for; anything else opened is a defect.
    dns_refs = {w.pod_ref for cid in now_analysis.dns_classes for w in now_analysis.classes[cid].workloads}
    dns_ports = parse_port_set("TCP 53,UDP 53")
    changes = widened(now_analysis, after_analysis)
    restored = tuple(c for c in changes if c.dst in dns_refs and not c.conns - dns_ports)
    opened = tuple(c for c in changes if c not in restored)
    return FixPlan(tuple(files), len(offered), verified, sum(1 for f in before if f.status == "fail"), without_fix(before),
                   restored, opened, now_analysis, after_analysis)
