"""`evidence verify`: check that a report was signed and not changed since."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from audit.cli.app import app
from audit.cli.common import echo, failing_cleanly
from audit.errors import InputError
from audit.ops.run import EXIT_FINDINGS

evidence_app = typer.Typer(help="Signed evidence: check that a report was signed and not changed since.", no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")


@evidence_app.command("verify")
def evidence_verify(
    file: Path = typer.Argument(..., help="A signed PDF report, or a file with a detached signature beside it (FILE.sig)."),
    cert: Optional[Path] = typer.Option(None, "--cert", help="The CA certificate (PEM) the signer must chain to; without it the chain is not checked."),
    signature: Optional[Path] = typer.Option(None, "--signature", help="The detached signature (default: FILE.sig)."),
) -> None:
    """Check a signed report: the signature is intact and covers it (the whole PDF), the signer chains
    to --cert, and a PDF's attached JSON result has the digest the report states.

    Exit codes: 0 valid, 1 invalid (one line says why), 2 usage or input error.
    """
    from audit.ops.evidence import verify_detached, verify_pdf

    with failing_cleanly():
        try:
            with file.open("rb") as fh:
                is_pdf = fh.read(5) == b"%PDF-"
        except OSError as exc:
            raise InputError(f"{file}: cannot read: {exc.strerror}") from None
        if is_pdf and signature is None:
            verdict = verify_pdf(file, cert)
        else:
            sig = signature or file.with_name(file.name + ".sig")
            if not sig.exists():
                raise InputError(f"{sig}: no detached signature (give --signature FILE)")
            verdict = verify_detached(file, sig, cert)
    echo(verdict.reason)
    if not verdict.valid:
        raise typer.Exit(EXIT_FINDINGS)
