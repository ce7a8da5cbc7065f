"""Frozen dataclasses to and from JSON-ready values, with camelCase keys."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


_SCALARS = (str, int, float, bool, type(None))


@functools.cache
def keys_of(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, camelCase key) per field, computed once per dataclass."""
    return tuple((f.name, camel(f.name)) for f in dataclasses.fields(cls))


_SCALAR_TYPES = frozenset(_SCALARS)
_FIELD_KEYS: dict[type, tuple[tuple[str, str], ...] | None] = {}
"""Per type: `keys_of` for a dataclass, None for any other type (asked once per type, not per value)."""


def _field_keys(kind: type) -> tuple[tuple[str, str], ...] | None:
    """`keys_of` of a dataclass type, None for any other type; remembered in `_FIELD_KEYS`."""
    if kind not in _FIELD_KEYS:
        _FIELD_KEYS[kind] = keys_of(kind) if dataclasses.is_dataclass(kind) else None
    return _FIELD_KEYS[kind]


def to_jsonable(obj: Any) -> Any:
    """Dataclasses become dicts with camelCase keys in field order; tuples become lists."""
    kind = type(obj)
    if kind in _SCALAR_TYPES:
        return obj
    if kind is tuple or kind is list:  # the common cases first, by exact type; subclasses below
        return [v if type(v) in _SCALAR_TYPES else to_jsonable(v) for v in obj]
    keys = _field_keys(kind)
    if keys is not None:
        return {key: v if type(v := getattr(obj, attr)) in _SCALAR_TYPES else to_jsonable(v) for attr, key in keys}
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, (list, tuple)):
        return [v if isinstance(v, _SCALARS) else to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    return obj


def fields_by_key(obj: Any) -> dict[str, Any]:
    """orjson's ``default`` for a dataclass (dumped with ``OPT_PASSTHROUGH_DATACLASS``): its fields
    by camelCase key, one level deep. orjson writes the values itself, in C: strings, numbers and
    lists as they are, a nested dataclass through this again; what `to_jsonable` gives, dumped."""
    keys = _field_keys(type(obj))
    if keys is None:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")
    return {key: getattr(obj, attr) for attr, key in keys}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class DecodeError(ValueError):
    """A JSON value that does not fit the model; the message names the field by its path."""


def from_jsonable(tp: Any, data: Any, path: str = "") -> Any:
    """Rebuild a value of type ``tp`` from what ``to_jsonable`` produced, checking every type
    on the way: a saved result or inventory edited by hand gets a ``DecodeError`` naming the
    field, never a crash deep in the analysis."""
    origin = typing.get_origin(tp)
    where = path or "the document"
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in typing.get_args(tp):
            return None
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        errors = []
        for option in options:
            try:
                return from_jsonable(option, data, path)
            except DecodeError as exc:
                errors.append(exc)
        raise errors[0]
    if tp is Any or tp is object:
        return data
    if origin is typing.Literal:
        if data not in typing.get_args(tp):
            raise DecodeError(f"{where}: {data!r} is not one of {', '.join(map(repr, typing.get_args(tp)))}")
        return data
    if origin is tuple:
        if not isinstance(data, list):
            raise DecodeError(f"{where}: must be a list")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], v, f"{path}[{i}]") for i, v in enumerate(data))
        if len(data) != len(args):
            raise DecodeError(f"{where}: must be a list of {len(args)} items")
        return tuple(from_jsonable(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=True)))
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(data, dict):
            raise DecodeError(f"{where}: must be an object")
        args = typing.get_args(tp)
        value_type = args[1] if args else Any
        return {k: from_jsonable(value_type, v, f"{path}.{k}") for k, v in data.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise DecodeError(f"{where}: must be an object")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            key = camel(f.name)
            if key in data:
                kwargs[f.name] = from_jsonable(hints[f.name], data[key], f"{path}.{key}" if path else key)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise DecodeError(f"{path + '.' if path else ''}{key}: required")
        return tp(**kwargs)
    if tp is bool:
        if not isinstance(data, bool):
            raise DecodeError(f"{where}: must be true or false")
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise DecodeError(f"{where}: must be an integer")
        return data
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise DecodeError(f"{where}: must be a number")
        return float(data)
    if tp is str:
        if not isinstance(data, str):
            raise DecodeError(f"{where}: must be a string")
        return data
    return data
