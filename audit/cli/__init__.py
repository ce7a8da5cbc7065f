"""The command line: a thin client of the library (audit.api, audit.ops.run), one module per
command under ``audit.cli.commands``; this package only wires the app."""

from audit.cli import commands  # noqa: F401  (registers every command on the app)
from audit.cli.app import app, global_flags_first, main
from audit.cli.common import parse_duration, parse_now

__all__ = ["app", "global_flags_first", "main", "parse_duration", "parse_now"]
