"""The command line: a thin layer over sources, the pipeline and the renderers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import os
import sys
from pathlib import Path
from typing import Callable, Optional

import typer
from tabulate import tabulate

from audit import __version__
from audit.atomic import write_atomic
from audit.checks.registry import all_checks
from audit.config import load_config
from audit.errors import AuditError, InputError
from audit.pipeline import run_audit
from audit.render.json_report import render_json
from audit.render.sarif import render_sarif
from audit.render.terminal import render_terminal
from audit.report import Report
from audit.severity import SEVERITIES
from audit.sources.manifests import load_manifests

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="netpol-audit",
    help="Audit Kubernetes NetworkPolicy coverage by effect: default-deny, unselected pods, "
    "over-permissive rules, DNS under egress deny, and CNIs that enforce nothing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(str, enum.Enum):
    text = "text"
    json = "json"
    sarif = "sarif"


class FailOn(str, enum.Enum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"
    none = "none"


RENDERERS: dict[Format, Callable[[Report], str]] = {
    Format.json: render_json,
    Format.sarif: render_sarif,
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"netpol-audit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """netpol-audit."""


def parse_now(value: str | None) -> dt.datetime | None:
    """``--now``: an ISO 8601 time (or date) to stamp the report with, for reproducible output."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--now: {value!r} is not an ISO 8601 time (e.g. 2026-01-31T00:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def _use_colour(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def _fail(exc: AuditError) -> typer.Exit:
    typer.echo(f"netpol-audit: error: {exc}", err=True)
    return typer.Exit(exc.exit_code)


@app.command()
def scan(
    paths: Optional[list[str]] = typer.Argument(None, help="Manifest files or folders (recursive); '-' reads stdin."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Audit configuration (YAML)."),
    format: Format = typer.Option(Format.text, "--format", "-f", help="What to print (or write with -o)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the --format output to this file instead of stdout."),
    json_file: Optional[Path] = typer.Option(None, "--json", help="Also write the JSON result to this file."),
    sarif_file: Optional[Path] = typer.Option(None, "--sarif", help="Also write SARIF 2.1.0 to this file."),
    fail_on: FailOn = typer.Option(FailOn.none, "--fail-on", help="Exit 1 when an unwaived finding is at or above this severity."),
    exclude_namespace: Optional[list[str]] = typer.Option(None, "--exclude-namespace", "-x", help="Also exclude this namespace (glob; repeatable)."),
    now: Optional[str] = typer.Option(None, "--now", help="Report time (ISO 8601), for reproducible output."),
    no_color: bool = typer.Option(False, "--no-color", help="No ANSI colour (also off when NO_COLOR is set or stdout is not a terminal)."),
) -> None:
    """Audit manifests (files, folders, stdin) and report coverage and findings.

    Exit codes: 0 done, 1 a finding at or above --fail-on, 2 usage or input error.
    """
    try:
        if not paths:
            raise InputError("give manifest files or folders to scan (or '-' for stdin)")
        known = {c.id for c in all_checks()}
        cfg = load_config(str(config) if config else None, known)
        if exclude_namespace:
            cfg = dataclasses.replace(cfg, excluded_namespaces=cfg.excluded_namespaces + tuple(exclude_namespace))
        inventory = load_manifests(paths, sys.stdin)
        report = run_audit(inventory, cfg, parse_now(now))
        if json_file:
            write_atomic(json_file, render_json(report))
        if sarif_file:
            write_atomic(sarif_file, render_sarif(report))
        if format is Format.text:
            text = render_terminal(report, colour=output is None and _use_colour(no_color))
        else:
            text = RENDERERS[format](report)
        if output:
            write_atomic(output, text)
        else:
            typer.echo(text, nl=False)
    except AuditError as exc:
        raise _fail(exc) from None
    if fail_on is not FailOn.none and report.failing(fail_on.value):
        raise typer.Exit(EXIT_FINDINGS)


@app.command("checks")
def list_checks(
    format: Format = typer.Option(Format.text, "--format", "-f", help="text or json."),
) -> None:
    """List the check catalogue: ids, severities, titles and compliance references."""
    checks = all_checks()
    if format is Format.text:
        rows = [[c.id, c.severity, c.category, c.title, "; ".join(c.references[:3]) + (" ..." if len(c.references) > 3 else "")] for c in checks]
        typer.echo(tabulate(rows, headers=["Id", "Severity", "Category", "Title", "References"], tablefmt="simple"))
        return
    import json

    typer.echo(json.dumps([
        {"id": c.id, "title": c.title, "severity": c.severity, "category": c.category,
         "rationale": c.rationale, "remediation": c.remediation, "references": list(c.references)}
        for c in checks
    ], indent=2))


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main", "SEVERITIES", "EXIT_OK", "EXIT_FINDINGS", "EXIT_USAGE"]
