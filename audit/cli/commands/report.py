"""`report`: render a saved JSON result again, in any format, signed or not."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli.app import app
from audit.cli.common import check_output, failing_cleanly, load_result
from audit.cli.options import Printed, ReportFiles, Signing, grouped
from audit.cli.outputs import emit
from audit.ops.run import Outputs


@app.command()
@grouped
def report(
    result: Path = typer.Argument(..., help="A JSON result written by `scan --json` (or `-f json`)."),
    *,
    printed: Printed,
    files: ReportFiles,
    signing: Signing,
) -> None:
    """Render a saved JSON result (terminal, HTML, PDF, SARIF, JUnit) without scanning again."""
    with failing_cleanly():
        check_output(printed.output, "text, json, sarif or markdown")
        signer = signing.signer()
        saved = load_result(result)
        emit(saved, printed, Outputs(files.files(), files.render_options(), signer))
