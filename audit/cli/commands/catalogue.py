"""The small commands: `rbac` (the ClusterRole the scanner needs), `checks` (the catalogue) and `version`."""

from __future__ import annotations

import json
from typing import Optional

import typer
from tabulate import tabulate

from audit import __version__
from audit.checks.catalogue import all_checks
from audit.cli.app import app
from audit.cli.common import echo
from audit.cli.options import VerifyFormat


@app.command()
def rbac(
    name: str = typer.Option("netpol-audit", "--name", help="metadata.name of the ClusterRole (or Roles)."),
    namespace: Optional[list[str]] = typer.Option(None, "--namespace", "-n", help="Print Roles for `scan -n` of these namespaces instead (repeatable)."),
) -> None:
    """Print the ClusterRole the scanner needs: get and list on exactly what it reads, nothing else."""
    import yaml

    from audit.sources.cluster import rbac_cluster_role, rbac_namespace_roles

    docs = rbac_namespace_roles(list(namespace), name) if namespace else [rbac_cluster_role(name)]
    echo(yaml.safe_dump_all(docs, sort_keys=False), nl=False)


@app.command("checks")
def list_checks(
    format: VerifyFormat = typer.Option(VerifyFormat.text, "--format", "-f", help="text or json."),
) -> None:
    """List the check catalogue: ids, severities, titles and compliance references."""
    checks = all_checks()
    if format is VerifyFormat.text:
        rows = [[c.id, c.severity, c.category, c.title, "; ".join(c.references[:3]) + (" ..." if len(c.references) > 3 else "")] for c in checks]
        echo(tabulate(rows, headers=["Id", "Severity", "Category", "Title", "References"], tablefmt="simple"))
        return
    echo(kind="json", text=json.dumps([
        {"id": c.id, "title": c.title, "severity": c.severity, "category": c.category,
         "rationale": c.rationale, "remediation": c.remediation, "references": list(c.references), "needs": c.needs}
        for c in checks
    ], indent=2))


@app.command("version")
def version_command() -> None:
    """Print the version of netpol-audit and of what it runs on."""
    import platform
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    def of(name: str) -> str:
        try:
            return dist_version(name)
        except PackageNotFoundError:
            return "not installed"

    echo(f"netpol-audit {__version__}")
    echo(f"python {platform.python_version()}; kubernetes client {of('kubernetes')}; weasyprint {of('weasyprint')}")
