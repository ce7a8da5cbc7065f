"""Saved inventories: `collect` writes one, `scan --inventory` analyses it offline."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import msgspec

from audit.errors import InputError
from audit.inventory import Collection, Inventory
from audit.serde import DecodeError, from_jsonable

KIND = "NetpolAuditInventory"
VERSION = 3
"""3: policy objects of every kind in one list; 2: the inventory's own field names, encoded and
decoded (with every type checked) by msgspec in C, NetworkPolicies apart from the other kinds;
1 (camelCase keys, decoded in Python, ten times slower). 1 and 2 are still read."""

_AT = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def dump_inventory(inventory: Inventory) -> str:
    return msgspec.json.encode({"kind": KIND, "version": VERSION, "inventory": inventory}).decode() + "\n"


def _one_policy_list(inventory: Any, api_version: str) -> Any:
    """A version 1 or 2 inventory with its NetworkPolicies and other kinds in one list, as version 3 keeps them."""
    if not isinstance(inventory, dict):
        return inventory
    policies = inventory.get("policies")
    if isinstance(policies, list):
        inventory["policies"] = [{"kind": "NetworkPolicy", api_version: "networking.k8s.io/v1", **p} if isinstance(p, dict) else p
                                 for p in policies]
    extended = inventory.pop("extended", None)
    if isinstance(extended, list) and isinstance(inventory.get("policies"), list):
        inventory["policies"] += extended
    return inventory


def _decode_v3(raw: msgspec.Raw | bytes, path: str) -> Inventory:
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
    if version not in (1, 2, VERSION):
        raise InputError(f"{path}: inventory version {version!r} is not supported (this version reads 1, 2 and {VERSION})")
    inv: Inventory
    raw = data.get("inventory", msgspec.Raw(b"null"))
    if version == VERSION:
        inv = _decode_v3(raw, path)
    elif version == 2:
        inv = _decode_v3(msgspec.json.encode(_one_policy_list(msgspec.json.decode(raw), "api_version")), path)
    else:
        try:
            inv = from_jsonable(Inventory, _one_policy_list(msgspec.json.decode(raw), "apiVersion"), "inventory")
        except DecodeError as exc:
            raise InputError(f"{path}: malformed inventory: {exc}") from None
    original = inv.collection
    replayed: Collection = dataclasses.replace(
        original, source="inventory",
        notices=original.notices + (f"replayed from {path}, collected from {original.source} {', '.join(original.inputs)}",),
    )
    return dataclasses.replace(inv, collection=replayed)
