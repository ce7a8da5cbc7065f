"""The application object, its global flags and the console-script entry point."""

from __future__ import annotations

import os
import sys

import typer

from audit import __version__
from audit.cli.common import echo
from audit.cli.progress import QUIET
from audit.ops.run import EXIT_INTERNAL

app = typer.Typer(
    name="netpol-audit",
    help="Audit Kubernetes NetworkPolicy coverage by effect: default-deny, unselected pods, "
    "over-permissive rules, DNS under egress deny, and CNIs that enforce nothing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        echo(f"netpol-audit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display (it is shown only when stderr is a terminal)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every API request (method, URL, status) on stderr."),
) -> None:
    """netpol-audit."""
    QUIET.set(quiet)
    if verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("netpol-audit: %(name)s: %(message)s"))
        requests = logging.getLogger("urllib3.connectionpool")  # one line per request: method, URL, status
        requests.addHandler(handler)
        level = requests.level
        requests.setLevel(logging.DEBUG)

        def done() -> None:
            requests.removeHandler(handler)
            requests.setLevel(level)

        ctx.call_on_close(done)


GLOBAL_FLAGS = ("--debug", "--quiet", "-q", "--verbose", "-v")


def global_flags_first(args: list[str]) -> list[str]:
    """Global flags where people type them: `netpol-audit scan -q` as `netpol-audit -q scan`, as
    kubectl takes its global flags anywhere on the line (never after `--`)."""
    end = args.index("--") if "--" in args else len(args)
    found = [a for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    found.sort(key=lambda a: a != "--debug")  # --debug is read first, before the app parses the rest
    return found + rest + args[end:]


def main() -> None:
    """Console-script entry point: an unexpected error is one line and its own exit code (5);
    NETPOL_AUDIT_DEBUG=1 (or --debug first) shows the traceback."""
    debug = os.environ.get("NETPOL_AUDIT_DEBUG") == "1"
    sys.argv[1:] = global_flags_first(sys.argv[1:])
    if sys.argv[1:2] == ["--debug"]:
        debug = True
        del sys.argv[1]
    try:
        app()
    except Exception as exc:  # the last line of defence: never a bare traceback
        if debug:
            raise
        echo(f"netpol-audit: internal error: {type(exc).__name__}: {str(exc)[:300]} "
             "(a bug: run again with --debug for the traceback, and report it)", err=True)
        sys.exit(EXIT_INTERNAL)
