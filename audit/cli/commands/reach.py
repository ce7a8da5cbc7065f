"""`reach`: can one workload connect to another, per port, and which rules decided it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from audit.cli.app import app
from audit.cli.common import analysis_of, echo, failing_cleanly, inputs_checked, say_enforcement
from audit.cli.options import ASSUME_ENFORCED, DNS_CONFIG, INVENTORY, MANIFESTS, Cluster, grouped
from audit.errors import InputError
from audit.ops.run import EXIT_FINDINGS, EXIT_UNKNOWN


@app.command()
@inputs_checked
@grouped
def reach(
    source: str = typer.Argument(..., help="ns/name (pod or workload), ns (every pod), dns, or an IP address."),
    destination: str = typer.Argument(..., help="ns/name, ns, dns, an IP address, or a DNS name (api.stripe.com: a namespace never holds a dot)."),
    paths: Optional[list[str]] = MANIFESTS,
    *,
    port: Optional[str] = typer.Option(None, "--port", "-p", help="N or N/PROTO (default: every port the destination declares)."),
    src_selector: Optional[str] = typer.Option(None, "--src-selector", "-l", help="Narrow a namespace source by labels, as kubectl -l takes them (app=web, tier!=db, app in (a,b), !legacy)."),
    dst_selector: Optional[str] = typer.Option(None, "--dst-selector", "-L", help="Narrow a namespace destination by labels."),
    http: Optional[str] = typer.Option(None, "--http", help='An HTTP request to judge against the policies\' L7 rules: "GET /api/v1/products/42".'),
    header: Optional[list[str]] = typer.Option(None, "--header", help='A request header, "Name: value" (repeatable; Host included).'),
    address: Optional[str] = typer.Option(None, "--address", help="For a DNS name destination: the address it resolves to (else every range the policies cut is tried)."),
    config: Optional[Path] = DNS_CONFIG,
    assume_enforced: bool = ASSUME_ENFORCED,
    inventory_file: Optional[Path] = INVENTORY,
    cluster: Cluster,
) -> None:
    """Can SOURCE connect to DESTINATION? The verdict per port, with the policies and rules that decided each side.

    Exit codes: 0 every path allowed, 1 a path denied, 2 usage or input error, 3 cluster error,
    6 an answer is unknown or conditional (it depends on what the input does not hold: the address a
    DNS name resolves to, a secret, another pod's lookups).
    """
    from audit.engine.l7 import parse_request
    from audit.engine.reach import check_paths, parse_label_selector, render_paths, resolve

    with failing_cleanly():
        if header and not http:
            raise InputError("--header needs --http (the request the headers belong to)")
        request = parse_request(http, header or ()) if http else None
        analysis, _ = analysis_of(paths, inventory_file, config, cluster.connect(), assume_enforced)
        say_enforcement(analysis)
        sources = resolve(analysis, source, parse_label_selector(src_selector))
        destinations = resolve(analysis, destination, parse_label_selector(dst_selector))
        results = check_paths(analysis, sources, destinations, port, request, address)
    echo(render_paths(results), nl=False)
    if any(r.answer == "denied" for r in results):
        raise typer.Exit(EXIT_FINDINGS)
    if any(r.answer in ("unknown", "conditional") for r in results):
        raise typer.Exit(EXIT_UNKNOWN)
