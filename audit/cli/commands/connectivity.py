"""`connectivity`: every allowed connection, as text, JSON, CSV, Graphviz, a matrix or blast radius."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from audit.cli.app import app
from audit.cli.common import analysis_of, check_output, echo, failing_cleanly, inputs_checked, say_enforcement, shows_progress
from audit.cli.options import ASSUME_ENFORCED, DNS_CONFIG, INVENTORY, MANIFESTS, OUTPUT, Cluster, ConnFormat, grouped
from audit.cli.progress import status
from audit.ops.atomic import write_atomic_chunks


@app.command()
@inputs_checked
@shows_progress
@grouped
def connectivity(
    paths: Optional[list[str]] = MANIFESTS,
    *,
    format: ConnFormat = typer.Option(ConnFormat.txt, "--format", "-f", help="txt, json, csv, dot (Graphviz), matrix (namespace x namespace) or blast (blast radius per namespace)."),
    output: Optional[Path] = OUTPUT,
    namespace: Optional[list[str]] = typer.Option(None, "--namespace", "-n", help="Only connections from or to these namespaces (repeatable)."),
    bare_ranges: bool = typer.Option(False, "--bare-ranges", help="Outside ranges as `first-last`, without netpol-analyzer's `[External]` suffix."),
    config: Optional[Path] = DNS_CONFIG,
    assume_enforced: bool = ASSUME_ENFORCED,
    inventory_file: Optional[Path] = INVENTORY,
    cluster: Cluster,
) -> None:
    """List every allowed connection: `src => dst : connections`, workloads and outside address ranges."""
    from audit.engine.connectivity import bare, connections
    from audit.render.connectivity import render
    from audit.report.build import blast_rows, namespaces_with_pods

    with failing_cleanly():
        check_output(output, "txt, json, csv, dot, matrix or blast")
        analysis, _ = analysis_of(paths, inventory_file, config, cluster.connect(), assume_enforced)
        say_enforcement(analysis)
        status("listing connections")
        focus = set(namespace) if namespace else None
        conns = connections(analysis, focus)
        blast = blast_rows(analysis, focus) if format.value == "blast" else ()
        chunks = render(map(bare, conns) if bare_ranges else conns, format.value, namespaces_with_pods(analysis), blast)
        if output:
            write_atomic_chunks(output, chunks)
        else:
            for chunk in chunks:
                echo(chunk, nl=False, kind="json" if format.value == "json" else "text")
