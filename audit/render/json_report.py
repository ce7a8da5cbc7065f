"""The JSON result: the report model, versioned, with stable key order and bytes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import orjson

from audit.errors import InputError
from audit.gcpause import gc_paused
from audit.report.model import SCHEMA_VERSION, Report
from audit.serde import DecodeError, fields_by_key, from_jsonable

_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATACLASS
"""Dataclasses through `fields_by_key` (camelCase keys), everything under them written by orjson."""


@gc_paused()
def render_json_bytes(report: Report) -> bytes:
    """The JSON result as the UTF-8 bytes a file holds. Written and signed as bytes: decoding a
    70 MB result into a str costs up to four times its size (one non-ASCII character widens it)."""
    # orjson writes the same bytes as json.dumps(indent=2, ensure_ascii=False), 5-10x faster; the
    # newline is appended by orjson, so a 70 MB result is not copied once more to end it.
    return orjson.dumps(report, default=fields_by_key, option=_OPTIONS | orjson.OPT_APPEND_NEWLINE)


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


_STREAMED = 2
"""Levels written piece by piece: the report's fields and the elements of its lists (findings,
policies, namespaces); anything deeper is dumped as one piece."""


@gc_paused()
def json_chunks(report: Report) -> Iterator[bytes]:
    """The JSON result in pieces, byte for byte what ``render_json_bytes`` writes: the report's
    object and its lists are written here, each element dumped on its own and indented, so a file
    is written without the whole result (or its dict form) in memory at once."""
    yield from _pieces(report, 0)
    yield b"\n"


def _pieces(value: Any, depth: int) -> Iterator[bytes]:
    if depth < _STREAMED:
        items: list[tuple[str, Any]] | None = None
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            items = list(fields_by_key(value).items())
        elif isinstance(value, dict):
            items = [(str(k), v) for k, v in value.items()]
        if items:
            inner = b"  " * (depth + 1)
            yield b"{\n"
            for i, (key, item) in enumerate(items):
                yield inner + orjson.dumps(key) + b": "
                yield from _pieces(item, depth + 1)
                yield b",\n" if i < len(items) - 1 else b"\n"
            yield b"  " * depth + b"}"
            return
        if isinstance(value, (list, tuple)) and value:
            inner = b"  " * (depth + 1)
            last = len(value) - 1
            yield b"[\n"
            for i, item in enumerate(value):
                yield inner + _dump(item, depth + 1) + (b",\n" if i < last else b"\n")
            yield b"  " * depth + b"]"
            return
    yield _dump(value, depth)


def _dump(value: Any, depth: int) -> bytes:
    """One value as orjson indents it at ``depth`` (a string holds no raw newline: each newline of
    the text starts an indented line)."""
    text = orjson.dumps(value, default=fields_by_key, option=_OPTIONS)
    return text.replace(b"\n", b"\n" + b"  " * depth) if depth and b"\n" in text else text
