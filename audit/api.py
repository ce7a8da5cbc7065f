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
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

from audit.config import Config, load_config
from audit.engine.analysis import Analysis
from audit.engine.connectivity import Connection
from audit.engine.diff import Change
from audit.engine.expectations import Outcome
from audit.engine.reach import PathResult
from audit.inventory import Inventory
from audit.ops.rotation import RunFiles
from audit.pipeline import analyse, run_audit
from audit.report.model import Report

__all__ = ["analysis", "config", "connectivity", "diff", "inventory", "reach", "render", "scan", "verify", "write_run"]


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
         now: dt.datetime | None = None, flows: Sequence[str | Path] = (), assume_enforced: bool = False) -> Report:
    """Audit manifests (or ``source``, an inventory; neither: the live cluster): the report model,
    as `netpol-audit scan` writes it. ``flows``: flow files to judge the policies against."""
    from audit.sources.flows import flow_input

    inv = source if source is not None else inventory(paths)
    return run_audit(inv, settings or Config(), now, assume_enforced=assume_enforced,
                     flows=flow_input([str(f) for f in flows]) if flows else None)


def render(report: Report, fmt: str, max_rows: int | None = None) -> str | bytes:
    """One format of a report: json, html, pdf (bytes), sarif, junit, markdown or txt."""
    if fmt == "json":
        from audit.render.json_report import render_json

        return render_json(report)
    if fmt == "html":
        from audit.render.html import DEFAULT_MAX_ROWS, render_html

        return render_html(report, max_rows or DEFAULT_MAX_ROWS)
    if fmt == "pdf":
        from audit.render.pdf import DEFAULT_MAX_ROWS as PDF_ROWS
        from audit.render.pdf import render_pdf

        return render_pdf(report, max_rows or PDF_ROWS)
    if fmt == "sarif":
        from audit.render.sarif import render_sarif

        return render_sarif(report)
    if fmt == "junit":
        from audit.render.junit import render_scan_junit

        return render_scan_junit(report)
    if fmt == "markdown":
        from audit.render.markdown import render_markdown

        return render_markdown(report)
    if fmt == "txt":
        from audit.render.terminal import render_terminal

        return render_terminal(report)
    raise ValueError(f"unknown format {fmt!r} (json, html, pdf, sarif, junit, markdown, txt)")


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


def write_run(report: Report, directory: str | Path, formats: Sequence[str] = ("json", "html", "pdf"), keep: int = 30) -> RunFiles:
    """CronJob mode: the report's files timestamped in ``directory``, latest.* switched (a complete
    scan only), runs beyond ``keep`` pruned."""
    from audit.ops.rotation import EXTENSIONS, prepare
    from audit.ops.rotation import write_run as rotate

    folder = Path(directory)
    prepare(folder)
    renders: dict[str, Callable[[], str | bytes]] = {EXTENSIONS.get(f, f): functools.partial(render, report, f) for f in formats}
    return rotate(folder, report.generated_datetime, renders, keep, publish=report.scan.complete)
