"""`verify`: expected connections (allowed or denied) checked against the policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from tabulate import tabulate

from audit.cli.app import app
from audit.cli.common import analysis_of, echo, failing_cleanly, inputs_checked, say_enforcement
from audit.cli.options import ASSUME_ENFORCED, DNS_CONFIG, INVENTORY, MANIFESTS, Cluster, VerifyFormat, grouped
from audit.ops.atomic import write_atomic
from audit.ops.run import EXIT_FINDINGS


@app.command()
@inputs_checked
@grouped
def verify(
    expectations: Path = typer.Argument(..., help="YAML file of expected connections (see examples/lab-expectations.yaml)."),
    paths: Optional[list[str]] = MANIFESTS,
    *,
    format: VerifyFormat = typer.Option(VerifyFormat.text, "--format", "-f", help="text or json."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write JUnit XML (one test case per expectation)."),
    config: Optional[Path] = DNS_CONFIG,
    assume_enforced: bool = ASSUME_ENFORCED,
    inventory_file: Optional[Path] = INVENTORY,
    cluster: Cluster,
) -> None:
    """Check expected connections (allowed / denied) against the policies, before deploying.

    Exit codes: 0 every expectation holds, 1 one fails, 2 usage or input error, 3 cluster error.
    """
    from audit.engine.expectations import evaluate
    from audit.render.junit import render_junit
    from audit.sources.documents import load_expectations

    with failing_cleanly():
        wanted = load_expectations(str(expectations))
        analysis, _ = analysis_of(paths, inventory_file, config, cluster.connect(), assume_enforced)
        say_enforcement(analysis)
        outcomes = evaluate(analysis, wanted)
        if junit:
            write_atomic(junit, render_junit(outcomes))
    if format is VerifyFormat.json:
        echo(kind="json", text=json.dumps([{"name": o.expectation.name, "from": o.expectation.source, "to": o.expectation.destination,
                                            "port": o.expectation.port, "expect": o.expectation.expect, "passed": o.passed,
                                            "detail": o.detail} for o in outcomes], indent=2))
    else:
        rows = [["PASS" if o.passed else "FAIL", o.expectation.name, o.expectation.expect, o.detail] for o in outcomes]
        echo(tabulate(rows, headers=["Result", "Expectation", "Expect", "Detail"], tablefmt="simple", maxcolwidths=[None, 40, None, 80]))
        failed = sum(1 for o in outcomes if not o.passed)
        echo(f"{len(outcomes) - failed} passed, {failed} failed")
    unenforced = analysis.cni is not None and analysis.cni.verdict == "not-enforced" and not assume_enforced
    if unenforced:
        # The expectations may hold on paper; on this network no expected denial does.
        echo("netpol-audit: verify fails: the CNI does not enforce NetworkPolicy, so no expected denial holds on this network "
             "(--assume-enforced checks the policies as declared)", err=True)
    if unenforced or any(not o.passed for o in outcomes):
        raise typer.Exit(EXIT_FINDINGS)
