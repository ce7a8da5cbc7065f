"""Errors that reach the user as one clear line instead of a traceback."""

from __future__ import annotations


class AuditError(Exception):
    """Base class for errors the CLI reports without a traceback."""

    exit_code = 2


class InputError(AuditError):
    """Input that cannot be read: malformed YAML, a wrong field type, a missing file."""


class ConfigError(AuditError):
    """A configuration file that is not valid."""


class OutputError(AuditError):
    """A report that cannot be written."""
