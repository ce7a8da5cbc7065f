"""`fix`: every fix the audit offers as one bundle, verified by the engine before it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from audit.cli.app import app
from audit.cli.common import config_of, echo, fail, failing_cleanly, inputs_checked, load_inventory, shows_progress
from audit.cli.options import AUDIT_CONFIG, EXCLUDE_NAMESPACE, INVENTORY, MANIFESTS, Cluster, grouped
from audit.cli.progress import status
from audit.errors import OutputError
from audit.ops.atomic import write_atomic
from audit.ops.run import EXIT_FINDINGS
from audit.remediation import FixPlan, plan_fix


@app.command()
@inputs_checked
@shows_progress
@grouped
def fix(
    paths: Optional[list[str]] = MANIFESTS,
    *,
    out: Optional[Path] = typer.Option(None, "--out", help="Write the bundle here, one file per namespace (default: print it)."),
    config: Optional[Path] = AUDIT_CONFIG,
    exclude_namespace: Optional[list[str]] = EXCLUDE_NAMESPACE,
    inventory_file: Optional[Path] = INVENTORY,
    cluster: Cluster,
) -> None:
    """Every fix the audit offers as one reviewed bundle, verified by the engine before you apply it.

    The summary (stderr) says which findings the bundle resolves once applied, and whether it
    opens any connection (it must not). Exit codes: 0 written, 1 the bundle would open a
    connection, 2 usage or input error, 3 cluster error.
    """
    with failing_cleanly():
        cfg = config_of(config, exclude_namespace)
        inventory = load_inventory(paths, inventory_file, cluster.connect())
        plan = plan_fix(inventory, cfg, progress=status)
        try:
            _write(plan, out, cfg.sensitive_ports)
        except OSError as exc:
            raise fail(OutputError(f"{out}: cannot write the bundle: {exc.strerror}")) from None
    echo(f"netpol-audit fix: applied to the inputs, the bundle resolves {len(plan.resolved)} of {plan.offered} findings that have a "
         f"fix ({plan.failing} unwaived in all; no generated fix for {plan.no_fix})", err=True)
    for c in plan.restored[:20]:
        echo(f"netpol-audit fix: restores DNS: {c}", err=True)
    if plan.opened:
        for c in plan.opened[:20]:
            echo(f"netpol-audit fix: the bundle would open {c}", err=True)
        raise typer.Exit(EXIT_FINDINGS)
    echo("netpol-audit fix: verified by the engine: the bundle opens no connection"
         + (" other than DNS to the cluster DNS pods" if plan.restored else ""), err=True)


def _write(plan: FixPlan, out: Optional[Path], sensitive_ports: tuple[int, ...]) -> None:
    """The bundle to the folder ``out`` (with the segmentation map before and after), or printed."""
    if not out:
        echo("\n---\n".join(file.text.rstrip("\n") for file in plan.files))
        return
    from audit.render.segmap import render_map_pair
    from audit.report.build import map_pair

    out.mkdir(parents=True, exist_ok=True)
    for file in plan.files:
        write_atomic(out / file.name, file.text)
        echo(f"wrote {out / file.name}: {len(file.documents)} document(s)", err=True)
    # kubectl apply -f DIR reads only .yaml, .yml and .json: the picture can sit beside the bundle.
    picture = out / "segmentation-before-after.svg"
    write_atomic(picture, render_map_pair(*map_pair(plan.before, plan.after, sensitive_ports), "now", "with this bundle"))
    echo(f"wrote {picture}", err=True)
