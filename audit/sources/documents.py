"""Small input documents beside the cluster: `verify` expectations and saved connectivity lists."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from audit.engine.connectivity import Connection
from audit.engine.diff import parse_connections
from audit.engine.expectations import Expectation, parse_expectations
from audit.errors import InputError


def load_expectations(path: str) -> list[Expectation]:
    """Read an expectations file; every problem names the file, the entry and the field."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    return parse_expectations(raw, path)


def load_connections(path: str) -> list[Connection]:
    """A connectivity JSON file (`connectivity -f json`)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise InputError(f"{path}: not a connectivity list (write one with `netpol-audit connectivity -f json`): {exc}") from None
    return parse_connections(data, path)
