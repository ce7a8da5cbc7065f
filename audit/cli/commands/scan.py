"""`scan`: audit manifests, a saved inventory or the live cluster; the CronJob's run folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from audit.cli.app import app
from audit.cli.common import (
    check_output,
    config_of,
    echo,
    failing_cleanly,
    flow_input,
    inputs_checked,
    left_out,
    load_inventory,
    load_result,
    parse_now,
    shows_progress,
)
from audit.cli.options import ASSUME_ENFORCED, AUDIT_CONFIG, EXCLUDE_NAMESPACE, FLOWS, JOBS, NOW, TOP, Cluster, FailOn, Printed, ReportFiles, Signing, grouped
from audit.cli.outputs import emit
from audit.cli.progress import status
from audit.errors import InputError
from audit.forkshare import jobs_for
from audit.ops.rotation import previous_result
from audit.ops.run import Outputs, export_metrics, outcome, renderers, write_rotation
from audit.ops.trend import with_trend
from audit.pipeline import run_audit
from audit.render.formats import parse_formats
from audit.render.summary import render_summary_line


@app.command()
@inputs_checked
@shows_progress
@grouped
def scan(
    paths: Optional[list[str]] = typer.Argument(None, help="Manifest files or folders (recursive); '-' reads stdin. None: the live cluster."),
    *,
    config: Optional[Path] = AUDIT_CONFIG,
    printed: Printed,
    files: ReportFiles,
    fail_on: FailOn = typer.Option(FailOn.none, "--fail-on", help="Exit 1 when an unwaived finding is at or above this severity."),
    fail_on_new: FailOn = typer.Option(FailOn.none, "--fail-on-new", help="Exit 1 when a finding NEW since --baseline (or the last run in --output-dir) is at or above this severity."),
    exclude_namespace: Optional[list[str]] = EXCLUDE_NAMESPACE,
    namespace: Optional[list[str]] = typer.Option(None, "--namespace", "-n", help="Audit only this namespace (glob; repeatable); the rest are still read, as peers."),
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Audit every namespace, kube-system and the other built-in exclusions too."),
    now: Optional[str] = NOW,
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="CronJob mode: write timestamped reports and latest.* here, prune old runs, print one JSON summary line."),
    formats: str = typer.Option("json,html,pdf", "--formats", help="Formats written to --output-dir (json, html, pdf, sarif, txt, markdown, junit)."),
    keep: int = typer.Option(30, "--keep", min=1, help="Runs kept in --output-dir; older ones are pruned."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A previous JSON result to compare with (default with --output-dir: its latest.json)."),
    metrics_file: Optional[Path] = typer.Option(None, "--metrics-file", help="Write Prometheus metrics (text exposition format) to this file."),
    pushgateway: Optional[str] = typer.Option(None, "--pushgateway", help="Push the metrics to this Prometheus Pushgateway URL."),
    inventory_file: Optional[Path] = typer.Option(None, "--inventory", help="Analyse an inventory saved by `netpol-audit collect`."),
    assume_enforced: bool = ASSUME_ENFORCED,
    flows: Optional[list[Path]] = FLOWS,
    top: int = TOP,
    jobs: int = JOBS,
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Exit 0/1 even when a core resource could not be read (the report still says INCOMPLETE)."),
    signing: Signing,
    cluster: Cluster,
) -> None:
    """Audit manifests (files, folders, stdin), a saved inventory, or the live cluster.

    Exit codes: 0 done, 1 a finding at or above --fail-on, 2 usage or input error,
    3 cluster unreachable or credentials rejected, 4 incomplete scan (without --allow-partial).
    """
    started = time.monotonic()
    with failing_cleanly(on_interrupt=True):
        check_output(printed.output, "text, json, sarif or markdown")
        if fail_on_new is not FailOn.none and not (baseline or output_dir):
            raise InputError("--fail-on-new compares with a baseline: give --baseline RESULT.json (or use --output-dir)")
        cfg = config_of(config, exclude_namespace, namespace, all_namespaces)
        stamp = parse_now(now)
        outputs = Outputs(files.files(), files.render_options(), signing.signer(), output_dir,
                          parse_formats(formats) if output_dir else (), keep, metrics_file, pushgateway, status, jobs_for(jobs))
        outputs.check()
        previous = load_result(baseline) if baseline else None
        if previous is not None and not previous.scan.complete:
            echo(f"netpol-audit: warning: the baseline {baseline} is an incomplete scan; it is not used for the trend", err=True)
            previous = None
        inventory = load_inventory(paths, inventory_file, cluster.connect(namespace))
        status(f"analysing {len(inventory.workloads):,} workloads, {len(inventory.policies):,} policies")
        report = run_audit(inventory, cfg, stamp, assume_enforced=assume_enforced, flows=flow_input(flows), top=top,
                            jobs=outputs.jobs)
        del inventory  # the report holds what it needs: at 150k pods the inventory is hundreds of MB the renderers never read
        status("writing the reports")
        if output_dir and not baseline:
            previous, problem = previous_result(output_dir)
            if problem:
                echo(f"netpol-audit: warning: {problem}", err=True)
        report = with_trend(report, previous)
        render = renderers(report, outputs)  # a format asked for as a file and in the run folder is rendered once
        emit(report, printed, outputs, print_report=output_dir is None, render=render)
        if output_dir:
            run = write_rotation(report, outputs, render)
            echo(render_summary_line(report, [str(p) for p in run.written]), nl=False, kind="json")
        export_metrics(report, outputs, time.monotonic() - started, previous)
    decided = outcome(report, fail_on.value, fail_on_new.value, allow_partial, left_out())
    if decided.reason:
        echo(f"netpol-audit: {decided.reason}", err=True)
    if decided.code:
        raise typer.Exit(decided.code)
