"""`flows`: what observed traffic says about the policies, and least-privilege policies for it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from audit.cli.app import app
from audit.cli.common import config_of, echo, failing_cleanly, flow_input, inputs_checked, load_inventory, parse_now, shows_progress
from audit.cli.options import ASSUME_ENFORCED, AUDIT_CONFIG, FLOWS, INVENTORY, NOW, TOP, Cluster, Format, Printed, ReportFiles, grouped
from audit.cli.outputs import emit
from audit.cli.progress import status
from audit.config import Config
from audit.errors import InputError, OutputError
from audit.inventory import Inventory
from audit.ops.atomic import write_atomic
from audit.ops.run import EXIT_FINDINGS, Outputs
from audit.pipeline import analyse, observe, report_of, run_audit
from audit.sources.manifests import load_manifests

if TYPE_CHECKING:
    from audit.checks.registry import ObservedTraffic
    from audit.engine.analysis import Analysis


@app.command("flows")
@inputs_checked
@shows_progress
@grouped
def flows_command(
    inputs: list[str] = typer.Argument(..., help="Flow files (Hubble JSON lines; CSV or JSON with src, dst, port, protocol), then manifest files or folders; no manifests: --inventory or the live cluster."),
    *,
    flows: Optional[list[Path]] = FLOWS,
    candidate: Optional[list[str]] = typer.Option(None, "--candidate", help="Judge the inputs with these manifests applied (a folder of policies not applied yet); repeatable."),
    since: Optional[str] = typer.Option(None, "--since", help="Only flows seen at or after this time (ISO 8601)."),
    until: Optional[str] = typer.Option(None, "--until", help="Only flows seen before this time (ISO 8601)."),
    propose_dir: Optional[Path] = typer.Option(None, "--propose", help="Write least-privilege policies for the observed traffic here (one file per namespace), verified by the engine."),
    top: int = TOP,
    printed: Printed,
    files: ReportFiles,
    config: Optional[Path] = AUDIT_CONFIG,
    now: Optional[str] = NOW,
    assume_enforced: bool = ASSUME_ENFORCED,
    inventory_file: Optional[Path] = INVENTORY,
    cluster: Cluster,
) -> None:
    """What observed traffic says about the policies: flows they would break, rules no flow used,
    traffic no policy isolates; with --propose, least-privilege policies for that traffic.

    Flow files are told from manifests by name (.csv, .jsonl, .ndjson) or by their first line;
    --flows names one explicitly. Exit codes: 0 nothing observed is denied (and a proposal
    verified), 1 an observed flow is denied (or the proposal failed verification), 2 usage or
    input error, 3 cluster error.
    """
    from audit.render.traffic import render_traffic
    from audit.sources.flows import is_flow_file

    with failing_cleanly():
        flow_files = [str(p) for p in flows or ()] + [p for p in inputs if is_flow_file(p)]
        paths = [p for p in inputs if p not in flow_files]
        if not flow_files:
            raise InputError("no flow file given: name one (Hubble JSON lines, or CSV/JSON with src, dst, port, protocol) or use --flows")
        cfg = config_of(config, None)
        inventory = load_inventory(paths or None, inventory_file, cluster.connect())
        status("reading the flows and judging the policies")
        source = flow_input(flow_files, since, until)
        assert source is not None
        stamp = parse_now(now) or dt.datetime.now(dt.UTC).replace(microsecond=0)
        # The inputs' own analysis and placed flows serve the report (without a candidate) and the proposal.
        current = analyse(inventory, cfg, assume_enforced) if propose_dir is not None or not candidate else None
        observed = observe(current, source, top) if current is not None else None
        if candidate:
            report = run_audit(inventory, cfg, stamp, assume_enforced=assume_enforced, flows=source, candidate=load_manifests(candidate), top=top)
        else:
            assert current is not None and observed is not None
            report = report_of(current, cfg, stamp, *observed)
        assert report.traffic is not None
        # One call writes the files and, for -f json/sarif/markdown, prints; text is the traffic section alone.
        text_only = printed.format.canonical is Format.text
        emit(report, printed, Outputs(files.files(), files.render_options(), progress=status), print_report=not text_only)
        if text_only:
            if printed.output:
                write_atomic(printed.output, render_traffic(report.traffic))
            else:
                echo(render_traffic(report.traffic), nl=False, kind="trusted")
        failed = report.traffic.denied_forwarded > 0  # already DROPPED: nothing new stops
        if propose_dir is not None:
            assert current is not None and observed is not None
            failed = _propose(inventory, cfg, current, observed[0], propose_dir) or failed
    if failed:
        raise typer.Exit(EXIT_FINDINGS)


def _propose(inventory: Inventory, cfg: Config, analysis: Analysis, observed: ObservedTraffic, out: Path) -> bool:
    """Write the proposal and say what the engine found applying it; True when verification failed."""
    from audit.checks.propose import propose, verify

    proposal = propose(analysis, observed.mapper, observed.traffic, analysis.dns_target, cfg.excluded_namespaces)
    result = verify(inventory, analysis, observed.mapper, observed.traffic, proposal)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for file in proposal.files:
            write_atomic(out / file.name, file.text)
            echo(f"wrote {out / file.name}: {len(file.documents)} document(s)", err=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the proposal: {exc.strerror}") from None
    for note in proposal.notes:
        echo(f"netpol-audit flows: {note}", err=True)
    for line in result.still_denied[:20]:
        echo(f"netpol-audit flows: the proposal still denies {line}", err=True)
    for conn in result.opened[:20]:
        echo(f"netpol-audit flows: the proposal would open {conn}", err=True)
    if result.passed:
        echo(f"netpol-audit flows: verified by the engine: the proposal allows all {len(proposal.flows)} observed (source, destination, "
             "port) and opens nothing the current policies deny", err=True)
    return not result.passed
