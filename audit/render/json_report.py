"""The JSON result: the report model, versioned, with stable key order and bytes."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import orjson

from audit.errors import InputError
from audit.gcpause import gc_paused
from audit.report.model import SCHEMA_VERSION, Report
from audit.serde import DecodeError, from_jsonable, to_jsonable


@gc_paused()
def render_json_bytes(report: Report) -> bytes:
    """The JSON result as the UTF-8 bytes a file holds. Written and signed as bytes: decoding a
    70 MB result into a str costs up to four times its size (one non-ASCII character widens it)."""
    # orjson writes the same bytes as json.dumps(indent=2, ensure_ascii=False), 5-10x faster; the
    # newline is appended by orjson, so a 70 MB result is not copied once more to end it.
    return orjson.dumps(to_jsonable(report), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def render_json(report: Report) -> str:
    """The JSON result as text."""
    return render_json_bytes(report).decode()


def schema() -> dict[str, Any]:
    """The JSON Schema of the result, shipped inside the package."""
    loaded: dict[str, Any] = json.loads(resources.files("audit.report").joinpath("schema/report.schema.json").read_text(encoding="utf-8"))
    return loaded


def load_report(text: str, name: str) -> Report:
    """Read a saved JSON result back into the report model."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}: not JSON ({exc.msg} at line {exc.lineno})") from None
    version = data.get("schemaVersion") if isinstance(data, dict) else None
    if not isinstance(version, str) or version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise InputError(f"{name}: schemaVersion {version!r} is not supported (this version reads {SCHEMA_VERSION})")
    try:
        report: Report = from_jsonable(Report, data)
        return report
    except DecodeError as exc:
        raise InputError(f"{name}: not a netpol-audit result: {exc}") from None
