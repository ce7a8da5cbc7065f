"""`collect`: read the live cluster into an inventory file to analyse later."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli.app import app
from audit.cli.common import echo, failing_cleanly, inputs_checked, shows_progress
from audit.cli.options import Cluster, grouped
from audit.ops.atomic import write_atomic
from audit.ops.run import EXIT_INCOMPLETE


@app.command()
@inputs_checked
@shows_progress
@grouped
def collect(
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the inventory (JSON)."),
    *,
    cluster: Cluster,
) -> None:
    """Read the live cluster into a compact inventory file, to analyse later with `scan --inventory`.

    The inventory keeps only what the audit needs (labels, named ports, policies, CNI
    DaemonSet images): no environment variables, no secrets.
    """
    from audit.sources.cluster import collect as collect_cluster
    from audit.sources.replay import dump_inventory

    with failing_cleanly(on_interrupt=True):
        inventory = collect_cluster(cluster.connect())
        write_atomic(output, dump_inventory(inventory))
    col = inventory.collection
    counts = ", ".join(f"{k} {v}" for k, v in col.object_counts)
    echo(f"wrote {output}: {counts} ({col.api_requests} API requests)", err=True)
    for issue in col.issues:
        echo(f"netpol-audit: could not read {issue.resource}: {issue.reason}", err=True)
    if not col.complete:
        raise typer.Exit(EXIT_INCOMPLETE)
