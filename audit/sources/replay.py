"""Saved inventories: `collect` writes one, `scan --inventory` analyses it offline."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from audit.errors import InputError
from audit.inventory import Collection, Inventory
from audit.report.serde import DecodeError, from_jsonable, to_jsonable

KIND = "NetpolAuditInventory"
VERSION = 1


def dump_inventory(inventory: Inventory) -> str:
    return json.dumps({"kind": KIND, "version": VERSION, "inventory": to_jsonable(inventory)},
                      ensure_ascii=False, separators=(",", ":")) + "\n"


def load_inventory(path: str) -> Inventory:
    """Read a saved inventory; the report says it was replayed, and from what."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a saved inventory (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise InputError(f"{path}: not a saved inventory (expected kind {KIND}; write one with `netpol-audit collect`)")
    if data.get("version") != VERSION:
        raise InputError(f"{path}: inventory version {data.get('version')!r} is not supported (this version reads {VERSION})")
    try:
        inv: Inventory = from_jsonable(Inventory, data.get("inventory"), "inventory")
    except DecodeError as exc:
        raise InputError(f"{path}: malformed inventory: {exc}") from None
    original = inv.collection
    replayed: Collection = dataclasses.replace(
        original, source="inventory",
        notices=original.notices + (f"replayed from {path}, collected from {original.source} {', '.join(original.inputs)}",),
    )
    return dataclasses.replace(inv, collection=replayed)
