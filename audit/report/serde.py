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
def _keys(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, camelCase key) per field, computed once per dataclass."""
    return tuple((f.name, camel(f.name)) for f in dataclasses.fields(cls))


def to_jsonable(obj: Any) -> Any:
    """Dataclasses become dicts with camelCase keys in field order; tuples become lists."""
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, (list, tuple)):
        return [v if isinstance(v, _SCALARS) else to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {key: to_jsonable(getattr(obj, attr)) for attr, key in _keys(type(obj))}
    return obj


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_jsonable(tp: Any, data: Any) -> Any:
    """Rebuild a value of type ``tp`` from what ``to_jsonable`` produced."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return from_jsonable(options[0], data)
    if origin is tuple:
        (item, *_rest) = typing.get_args(tp)
        return tuple(from_jsonable(item, v) for v in data)
    if origin in (dict, typing.Mapping) or tp is dict:
        args = typing.get_args(tp)
        value_type = args[1] if args else Any
        return {k: from_jsonable(value_type, v) for k, v in data.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            key = camel(f.name)
            if key in data:
                kwargs[f.name] = from_jsonable(hints[f.name], data[key])
        return tp(**kwargs)
    return data
