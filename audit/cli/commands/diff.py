"""`diff`: which connections a change opens, closes, widens or narrows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from audit.cli.app import app
from audit.cli.common import analysis_of, connect_options, echo, fail, failing_cleanly, inputs_checked, say_enforcement
from audit.cli.options import ASSUME_ENFORCED, DNS_CONFIG
from audit.config import load_config
from audit.errors import InputError
from audit.ops.atomic import write_atomic
from audit.ops.run import EXIT_FINDINGS

if TYPE_CHECKING:
    from audit.engine.analysis import Analysis
    from audit.engine.connectivity import Connection


@app.command()
@inputs_checked
def diff(
    old: str = typer.Argument(..., help="Before: manifests (file or folder) or a connectivity JSON file."),
    new: Optional[str] = typer.Argument(None, help="After: manifests (file or folder) or a connectivity JSON file (default with --apply: OLD)."),
    apply: Optional[list[str]] = typer.Option(None, "--apply", help="Add these manifests to the after side (a `fix` bundle, a change to review); repeatable."),
    map_file: Optional[Path] = typer.Option(None, "--map", help="Also write the segmentation map before and after, side by side, as one SVG file."),
    fail_on_opened: bool = typer.Option(False, "--fail-on-opened", help="Exit 1 when the change opens or widens a connection."),
    config: Optional[Path] = DNS_CONFIG,
    assume_enforced: bool = ASSUME_ENFORCED,
) -> None:
    """Which connections a change opens (+), closes (-), widens (+~), narrows (-~) or changes (~)."""
    from audit.engine.connectivity import connections
    from audit.engine.diff import MalformedConnections
    from audit.engine.diff import diff as connection_diff
    from audit.sources.documents import load_connections

    analyses: list[Analysis] = []

    def side(spec: str, added: list[str]) -> list[Connection]:
        if spec.endswith(".json") and Path(spec).is_file() and not added:
            try:
                return load_connections(spec)
            except MalformedConnections as exc:
                raise fail(exc) from None
            except InputError:
                pass  # a JSON manifest, then
        analysis, _ = analysis_of([spec, *added], None, config, connect_options(None, None, 30.0, 500, None), assume_enforced)
        say_enforcement(analysis, f"{spec}: ")
        analyses.append(analysis)
        return list(connections(analysis))

    if new is None and not apply:
        raise fail(InputError("diff needs NEW, or --apply with the manifests to add to OLD"))
    with failing_cleanly():
        changes = connection_diff(side(old, []), side(new or old, list(apply or [])))
        if map_file:
            if len(analyses) != 2:
                raise InputError("--map draws manifests: give manifests (not saved connectivity JSON) on both sides")
            from audit.render.segmap import render_map_pair
            from audit.report.build import map_pair

            sensitive = load_config(str(config) if config else None).sensitive_ports
            after_title = f"{new or old}" + (f" + {', '.join(apply or [])}" if apply else "")
            write_atomic(map_file, render_map_pair(*map_pair(analyses[0], analyses[1], sensitive), old, after_title))
    for change in changes:
        echo(str(change))
    opened = sum(1 for c in changes if c.kind in ("opened", "widened", "changed"))
    closed = sum(1 for c in changes if c.kind in ("closed", "narrowed"))
    echo(f"{opened} opened or widened, {closed} closed or narrowed", err=True)
    if fail_on_opened and opened:
        raise typer.Exit(EXIT_FINDINGS)
