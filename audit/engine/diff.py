"""Which connections a change opens, closes or changes: `netpol-audit diff OLD NEW`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from audit.engine.connectivity import Connection, with_suffix
from audit.engine.ports import PortSet, parse_port_set
from audit.errors import InputError


@dataclass(frozen=True)
class Change:
    kind: str  # "opened" | "closed" | "widened" | "narrowed" | "changed"
    src: str
    dst: str
    before: PortSet
    after: PortSet

    def __str__(self) -> str:
        mark = {"opened": "+", "closed": "-", "widened": "+~", "narrowed": "-~", "changed": "~"}[self.kind]
        if self.kind == "opened":
            return f"{mark} {self.src} => {self.dst} : {self.after}"
        if self.kind == "closed":
            return f"{mark} {self.src} => {self.dst} : {self.before}"
        return f"{mark} {self.src} => {self.dst} : {self.before} -> {self.after}"


class MalformedConnections(InputError):
    """A connectivity list whose entries have the wrong shape (not some other JSON document)."""


def load_connections(path: str) -> list[Connection]:
    """A connectivity JSON file (`connectivity -f json`)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise InputError(f"{path}: not a connectivity list (a JSON array of src, dst, conn; write one with `netpol-audit connectivity -f json`)")
        out = []
        for i, c in enumerate(data):
            if not isinstance(c, dict) or not all(isinstance(c.get(k), str) for k in ("src", "dst", "conn")):
                error = MalformedConnections if isinstance(c, dict) and {"src", "dst"} & set(c) else InputError
                raise error(f"{path}: item {i}: src, dst and conn must be strings (as `netpol-audit connectivity -f json` writes them)")
            # Files written before outside ranges carried `[External]` still compare with today's.
            out.append(Connection(with_suffix(c["src"]), with_suffix(c["dst"]), parse_port_set(c["conn"])))
        return out
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a connectivity list (write one with `netpol-audit connectivity -f json`): {exc}") from None


def diff(before: list[Connection], after: list[Connection]) -> list[Change]:
    old = {(c.src, c.dst): c.conns for c in before}
    new = {(c.src, c.dst): c.conns for c in after}
    changes = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, PortSet()), new.get(key, PortSet())
        if a == b:
            continue
        if not a:
            kind = "opened"
        elif not b:
            kind = "closed"
        elif (a & b) == a:
            kind = "widened"
        elif (a & b) == b:
            kind = "narrowed"
        else:
            kind = "changed"
        changes.append(Change(kind, key[0], key[1], a, b))
    return changes
