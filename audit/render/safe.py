"""Text that is safe to show on a terminal: no control sequence from the input survives.

Object names, labels and annotations come from whoever wrote the manifests; printed raw, an ESC
in one could retitle the window, clear the screen or plant a hyperlink. Every C0 and C1 control
character (but newline and tab), DEL, and the bidirectional controls that reorder what a reader
sees are shown as escapes instead (``\\x1b``, ``\\u202e``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, TypeVar

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
T = TypeVar("T")


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def terminal_safe(text: str) -> str:
    """``text`` with every control character shown as an escape (newlines and tabs kept)."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def json_terminal_safe(text: str) -> str:
    """JSON text made terminal-safe and still the same JSON: encoders escape C0 controls
    themselves, but write DEL, C1 controls and bidirectional marks raw; those can only stand
    inside strings, where a ``\\uXXXX`` escape means the same character."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text) if _UNSAFE_IN_JSON.search(text) else text


def sanitized(value: T) -> T:
    """A copy of a report-model value with every string made terminal-safe, for renderers that
    add escape sequences of their own."""
    return map_strings(value, terminal_safe)


def map_strings(value: T, fn: Callable[[str], str]) -> T:
    """A copy of ``value`` with ``fn`` applied to every string in it (frozen dataclasses, tuples,
    lists and dict values walked)."""
    return _walk(value, fn)  # type: ignore[no-any-return]


def _walk(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(_walk(v, fn) for v in value)
    if isinstance(value, list):
        return [_walk(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, fn) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _walk(getattr(value, f.name), fn) for f in dataclasses.fields(value) if f.init})
    return value


PRINT_LIMIT = 400
"""Characters of one string a printed page shows (the attached JSON has all of it)."""
_LONG_WORD = re.compile(r"\S{60}")


def printable(text: str) -> str:
    """``text`` cut to PRINT_LIMIT characters, with a break opportunity (U+200B) every 60
    characters of an unbroken run: PDF layout time grows with the square of an unbreakable word."""
    if len(text) > PRINT_LIMIT:
        text = text[:PRINT_LIMIT] + f"… ({len(text):,} characters; the attached JSON has them all)"
    return _LONG_WORD.sub(lambda m: m.group(0) + "\u200b", text) if len(text) > 60 else text
