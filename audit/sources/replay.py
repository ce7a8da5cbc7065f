"""Saved inventories: `collect` writes one, `scan --inventory` analyses it offline."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import msgspec

from audit.errors import InputError
from audit.inventory import Collection, Inventory
from audit.report.serde import DecodeError, from_jsonable

KIND = "NetpolAuditInventory"
VERSION = 2
"""2: the inventory's own field names, encoded and decoded (with every type checked) by msgspec in
C; 1 (camelCase keys, decoded in Python, ten times slower) is still read."""

_AT = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def dump_inventory(inventory: Inventory) -> str:
    return msgspec.json.encode({"kind": KIND, "version": VERSION, "inventory": inventory}).decode() + "\n"


def _decode_v2(raw: msgspec.Raw, path: str) -> Inventory:
    try:
        return msgspec.json.decode(raw, type=Inventory)
    except msgspec.ValidationError as exc:
        found = _AT.match(str(exc))
        where = f"inventory{found['path'] or ''}" if found else "inventory"
        problem = (found["problem"] if found else str(exc)).replace("`", "")
        raise InputError(f"{path}: malformed inventory: {where}: {problem[:1].lower()}{problem[1:]}") from None


def load_inventory(path: str) -> Inventory:
    """Read a saved inventory; the report says it was replayed, and from what."""
    try:
        data = msgspec.json.decode(Path(path).read_bytes(), type=dict[str, msgspec.Raw])
        kind = msgspec.json.decode(data["kind"]) if "kind" in data else None
        version = msgspec.json.decode(data["version"]) if "version" in data else None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InputError(f"{path}: not a saved inventory (invalid JSON: {exc})") from None
    if kind != KIND:
        raise InputError(f"{path}: not a saved inventory (expected kind {KIND}; write one with `netpol-audit collect`)")
    if version not in (1, VERSION):
        raise InputError(f"{path}: inventory version {version!r} is not supported (this version reads 1 and {VERSION})")
    inv: Inventory
    if version == VERSION:
        inv = _decode_v2(data.get("inventory", msgspec.Raw(b"null")), path)
    else:
        try:
            inv = from_jsonable(Inventory, msgspec.json.decode(data.get("inventory", msgspec.Raw(b"null"))), "inventory")
        except DecodeError as exc:
            raise InputError(f"{path}: malformed inventory: {exc}") from None
    original = inv.collection
    replayed: Collection = dataclasses.replace(
        original, source="inventory",
        notices=original.notices + (f"replayed from {path}, collected from {original.source} {', '.join(original.inputs)}",),
    )
    return dataclasses.replace(inv, collection=replayed)
