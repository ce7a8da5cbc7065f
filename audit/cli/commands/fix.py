"""`fix`: every fix the audit offers as one bundle, verified by the engine before it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from audit.cli.app import app
from audit.cli.common import config_of, echo, fail, failing_cleanly, flow_input, inputs_checked, load_inventory, shows_progress
from audit.cli.options import AUDIT_CONFIG, EXCLUDE_NAMESPACE, INVENTORY, MANIFESTS, Cluster, VerifyFormat, grouped
from audit.cli.progress import status
from audit.errors import OutputError
from audit.ops.atomic import write_atomic
from audit.ops.run import EXIT_FINDINGS
from audit.remediation import FixPlan, fix_report, plan_fix
from audit.render.fixplan import render_fix_html, render_fix_json, render_fix_pdf, render_fix_summary
from audit.report.fixplan import FixReport


@app.command()
@inputs_checked
@shows_progress
@grouped
def fix(
    paths: Optional[list[str]] = MANIFESTS,
    *,
    out: Optional[Path] = typer.Option(None, "--out", help="Write the bundle here, one file per namespace, with SUMMARY.md (default: print it)."),
    flows: Optional[list[Path]] = typer.Option(None, "--flows", help="Observed flows (Hubble JSON lines, CSV/JSON): mark what the bundle closes with what was seen, and keep every forwarded flow open with least-privilege allows; repeatable."),
    format: VerifyFormat = typer.Option(VerifyFormat.text, "--format", "-f", help="text (the bundle's YAML, unless --out) or json (what it resolves, closes and keeps open)."),
    html_file: Optional[Path] = typer.Option(None, "--html", help="Also write what the bundle resolves, closes and keeps open as one self-contained HTML page."),
    pdf_file: Optional[Path] = typer.Option(None, "--pdf", help="Also write that page as a PDF."),
    config: Optional[Path] = AUDIT_CONFIG,
    exclude_namespace: Optional[list[str]] = EXCLUDE_NAMESPACE,
    inventory_file: Optional[Path] = INVENTORY,
    cluster: Cluster,
) -> None:
    """Every fix the audit offers as one reviewed bundle, verified by the engine before you apply it.

    The summary (stderr) says which findings the bundle resolves once applied, what it closes
    (connections allowed today that it denies) and whether it opens any connection (it must not).
    With --flows, what it closes is marked with the traffic seen, and allows are added so that no
    forwarded flow of the capture is denied. Exit codes: 0 written, 1 the bundle would open a
    connection (or still deny an observed flow), 2 usage or input error, 3 cluster error.
    """
    with failing_cleanly():
        cfg = config_of(config, exclude_namespace)
        inventory = load_inventory(paths, inventory_file, cluster.connect())
        plan = plan_fix(inventory, cfg, progress=status, flows=flow_input(flows))
        report = fix_report(plan)
        if html_file:
            write_atomic(html_file, render_fix_html(report))
        if pdf_file:
            write_atomic(pdf_file, render_fix_pdf(report))
        try:
            _write(plan, report, out, cfg.sensitive_ports, format is VerifyFormat.text)
        except OSError as exc:
            raise fail(OutputError(f"{out}: cannot write the bundle: {exc.strerror}")) from None
    if format is VerifyFormat.json:
        echo(render_fix_json(report), nl=False, kind="json")
    _say(plan)
    if not report.verified:
        raise typer.Exit(EXIT_FINDINGS)


def _say(plan: FixPlan) -> None:
    """The closing lines on stderr: resolved, closed, kept open, opened."""
    echo(f"netpol-audit fix: applied to the inputs, the bundle resolves {len(plan.resolved)} of {plan.offered} findings that have a "
         f"fix ({plan.failing} unwaived in all; no generated fix for {plan.no_fix})", err=True)
    echo(f"netpol-audit fix: {plan.summary.split('; ', 1)[1]}", err=True)
    for line in plan.traffic.still_denied[:20] if plan.traffic else ():
        echo(f"netpol-audit fix: the bundle still denies the observed flow {line}", err=True)
    for c in plan.restored[:20]:
        echo(f"netpol-audit fix: restores DNS: {c}", err=True)
    for c in plan.opened[:20]:
        echo(f"netpol-audit fix: the bundle would open {c}", err=True)
    if not plan.opened:
        echo("netpol-audit fix: verified by the engine: the bundle opens no connection"
             + (" other than DNS to the cluster DNS pods" if plan.restored else ""), err=True)


def _write(plan: FixPlan, report: FixReport, out: Optional[Path], sensitive_ports: tuple[int, ...], print_bundle: bool) -> None:
    """The bundle to the folder ``out`` (with SUMMARY.md and the segmentation map before and
    after), or printed (as text)."""
    if not out:
        if print_bundle:
            echo("\n---\n".join(file.text.rstrip("\n") for file in plan.files))
        return
    from audit.render.segmap import render_map_pair
    from audit.report.build import map_pair

    out.mkdir(parents=True, exist_ok=True)
    for file in plan.files:
        write_atomic(out / file.name, file.text)
        echo(f"wrote {out / file.name}: {len(file.documents)} document(s)", err=True)
    # kubectl apply -f DIR reads only .yaml, .yml and .json: the summary and the picture can sit beside the bundle.
    write_atomic(out / "SUMMARY.md", render_fix_summary(report))
    echo(f"wrote {out / 'SUMMARY.md'}", err=True)
    picture = out / "segmentation-before-after.svg"
    write_atomic(picture, render_map_pair(*map_pair(plan.before, plan.after, sensitive_ports), "now", "with this bundle"))
    echo(f"wrote {picture}", err=True)
