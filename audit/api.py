"""netpol-audit as a library: what each command does, as a function that returns the report model
(``audit.report.model``) or an answer object, for tools built on it (an operator, a notebook, a
test suite). The CLI is one client of these functions; nothing here prints or exits.

    from audit import api

    report = api.scan(["examples/lab-before"])
    for finding in report.findings:
        print(finding.check, finding.severity, finding.namespace, finding.message)

Inputs are manifest paths, a saved inventory (``inventory_file``), or a live cluster (neither:
the kubeconfig, or the pod's ServiceAccount in a cluster). Errors are ``audit.errors.AuditError``
subclasses whose message is one line naming the input and the field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from audit.config import Config, load_config
from audit.engine.analysis import Analysis
from audit.engine.connectivity import Connection
from audit.engine.diff import Change
from audit.engine.expectations import Outcome
from audit.engine.reach import PathResult
from audit.inventory import Inventory
from audit.observed import TOP
from audit.ops.rotation import RunFiles
from audit.ops.run import Outcome as RunOutcome
from audit.ops.run import Outputs, outcome, write_rotation
from audit.pipeline import analyse, run_audit
from audit.remediation import FixPlan
from audit.render import formats as registry
from audit.render.formats import RenderOptions
from audit.report.model import Report

__all__ = ["analysis", "config", "connectivity", "diff", "exit_code", "fix", "flows", "inventory", "reach", "render", "scan", "verify",
           "write_run"]


def config(path: str | Path | None = None) -> Config:
    """The audit configuration in ``path`` (checks, waivers, DNS, environments), or the defaults."""
    from audit.checks.catalogue import all_checks

    return load_config(str(path) if path else None, {c.id for c in all_checks()})


def inventory(paths: Sequence[str | Path] = (), *, inventory_file: str | Path | None = None, kubeconfig: str | Path | None = None,
              context: str | None = None, namespaces: Sequence[str] = ()) -> Inventory:
    """What the audit reads: manifest files or folders; else a saved inventory; else the live cluster."""
    if paths:
        from audit.sources.manifests import load_manifests

        return load_manifests([str(p) for p in paths])
    if inventory_file is not None:
        from audit.sources.replay import load_inventory

        return load_inventory(str(inventory_file))
    from audit.sources.cluster import ConnectOptions, collect

    return collect(ConnectOptions(str(kubeconfig) if kubeconfig else None, context, namespaces=tuple(namespaces)))


def analysis(source: Inventory | Sequence[str | Path], settings: Config | None = None, assume_enforced: bool = False) -> Analysis:
    """The engine's view of an inventory (or of manifest paths): selection, isolation, reachability."""
    inv = source if isinstance(source, Inventory) else inventory(source)
    return analyse(inv, settings or Config(), assume_enforced)


def scan(paths: Sequence[str | Path] = (), *, source: Inventory | None = None, settings: Config | None = None,
         now: dt.datetime | None = None, flows: Sequence[str | Path] = (), assume_enforced: bool = False, top: int = TOP,
         jobs: int = 1) -> Report:
    """Audit manifests (or ``source``, an inventory; neither: the live cluster): the report model,
    as `netpol-audit scan` writes it. ``flows``: flow files to judge the policies against;
    ``top``: the denied flow rows kept, most flows first (0: every one); ``jobs``: processes sharing
    the checks (forked workers; `netpol-audit` takes two where two CPUs are free)."""
    from audit.sources.flows import flow_input

    inv = source if source is not None else inventory(paths)
    return run_audit(inv, settings or Config(), now, assume_enforced=assume_enforced,
                     flows=flow_input([str(f) for f in flows]) if flows else None, top=top, jobs=jobs)


def render(report: Report, fmt: str, max_rows: int | None = None, options: RenderOptions | None = None) -> str | bytes:
    """One format of a report: json, html, pdf (bytes), sarif, junit, markdown or txt (see
    ``audit.render.formats.FORMATS``)."""
    chosen = options or RenderOptions(max_rows=max_rows)
    out = registry.render(report, fmt, chosen)
    return out.decode() if isinstance(out, bytes) and registry.report_format(fmt).name != "pdf" else out


def reach(source: str, destination: str, paths: Sequence[str | Path] = (), *, engine: Analysis | None = None, port: str | None = None,
          http: str | None = None, headers: Sequence[str] = (), address: str | None = None) -> list[PathResult]:
    """Whether ``source`` can connect to ``destination`` (ns/name, ns, dns, an address, a DNS name),
    per port: each result's ``answer`` (allowed, denied, unknown, conditional) and ``explain()``."""
    from audit.engine.l7 import parse_request
    from audit.engine.reach import check_paths, resolve

    a = engine or analysis(paths)
    request = parse_request(http, tuple(headers)) if http else None
    return check_paths(a, resolve(a, source), resolve(a, destination), port, request, address)


def connectivity(paths: Sequence[str | Path] = (), *, engine: Analysis | None = None, namespaces: set[str] | None = None) -> list[Connection]:
    """Every allowed connection (``str()`` of each is the `connectivity` line)."""
    from audit.engine.connectivity import connections

    return list(connections(engine or analysis(paths), namespaces))


def diff(before: Sequence[str | Path], after: Sequence[str | Path]) -> list[Change]:
    """What changes from one set of manifests to another: opened, closed, widened, narrowed."""
    from audit.engine.diff import diff as compare

    return compare(connectivity(before), connectivity(after))


def verify(expectations: str | Path, paths: Sequence[str | Path] = (), *, engine: Analysis | None = None) -> list[Outcome]:
    """Expected connections checked against the policies: each outcome's ``passed`` and ``detail``."""
    from audit.engine.expectations import evaluate
    from audit.sources.documents import load_expectations

    return evaluate(engine or analysis(paths), load_expectations(str(expectations)))


def flows(flow_files: Sequence[str | Path], paths: Sequence[str | Path] = (), *, source: Inventory | None = None,
          settings: Config | None = None, candidate: Sequence[str | Path] = (), since: dt.datetime | None = None,
          until: dt.datetime | None = None, now: dt.datetime | None = None, assume_enforced: bool = False, top: int = TOP,
          jobs: int = 1) -> Report:
    """What observed flows say about the policies (of ``paths``, or ``source``; with ``candidate``,
    those manifests applied): the report with its ``traffic`` section (flows the policies would
    break, the ``top`` with the most flows beside the totals of all, 0: every one; rules no flow
    used; traffic no policy isolates)."""
    from audit.sources.flows import flow_input
    from audit.sources.flowsql import Window
    from audit.sources.manifests import load_manifests

    inv = source if source is not None else inventory(paths)
    read = flow_input([str(f) for f in flow_files], Window(since, until))
    return run_audit(inv, settings or Config(), now or dt.datetime.now(dt.UTC).replace(microsecond=0), assume_enforced=assume_enforced,
                     flows=read, candidate=load_manifests([str(c) for c in candidate]) if candidate else None, top=top, jobs=jobs)


def fix(paths: Sequence[str | Path] = (), *, source: Inventory | None = None, settings: Config | None = None,
        flows: Sequence[str | Path] = ()) -> FixPlan:
    """The fix bundle for the findings (``files``, one per namespace), verified by the engine:
    which findings it resolves once applied (``resolved``), the connections allowed today that it
    denies (``closes``), any it would open (``opened``); with ``flows``, the closed connections
    marked with the traffic seen and allows added so that no forwarded flow is denied
    (``traffic``). ``remediation.fix_report(plan)`` is what `fix -f json` prints."""
    from audit.remediation import plan_fix
    from audit.sources.flows import flow_input

    read = flow_input([str(f) for f in flows]) if flows else None
    return plan_fix(source if source is not None else inventory(paths), settings or config(), flows=read)


def write_run(report: Report, directory: str | Path, formats: Sequence[str] = ("json", "html", "pdf"), keep: int = 30) -> RunFiles:
    """CronJob mode: the report's files timestamped in ``directory``, latest.* switched (a complete
    scan only), runs beyond ``keep`` pruned. For signing, metrics and the Pushgateway build an
    ``audit.ops.run.Outputs`` and call ``write_rotation`` and ``export_metrics``."""
    outputs = Outputs(output_dir=Path(directory), formats=tuple(formats), keep=keep)
    outputs.check()
    return write_rotation(report, outputs)


def exit_code(report: Report, fail_on: str | None = None, fail_on_new: str | None = None, allow_partial: bool = False) -> RunOutcome:
    """The exit decision `scan` makes: 4 for an incomplete scan, 1 for a finding at or above
    ``fail_on`` (or a new one at or above ``fail_on_new``), else 0, with the reason."""
    return outcome(report, fail_on, fail_on_new, allow_partial)
