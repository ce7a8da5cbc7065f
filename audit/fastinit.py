"""Frozen dataclasses built without the generated ``__init__``'s per-field lookups.

A frozen dataclass's generated ``__init__`` sets each field with
``__dataclass_builtins_object__.__setattr__(self, name, value)``: a global lookup, an attribute
lookup and a call per field. A 150k-pod scan builds some 700,000 such objects (workloads,
compiled rules, report rows), and those lookups alone took about a second of it. `fast_init`
gives a class an ``__init__`` with the same parameters, defaults and default factories that sets
every field in one call (the instance dict, for a class without slots) or with ``object.__setattr__``
bound once (with slots). Instances are the same: equal, hashed and frozen as before.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_FACTORY = object()
"""The default of a parameter whose field has a default factory: call the factory."""


def fast_init(cls: type[T]) -> type[T]:
    """Replace the generated ``__init__`` of frozen dataclass ``cls`` (decorate above ``@dataclass``).

    Raises TypeError at import for a class it does not fit: not a frozen dataclass with a generated
    ``__init__``, an ``InitVar``, a field that is no parameter and has no default, slots of a base.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or not params.init:
        raise TypeError(f"{cls.__qualname__}: fast_init needs a frozen dataclass with a generated __init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if len(fields) != len(cls.__dataclass_fields__):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__qualname__}: fast_init does not take InitVar or ClassVar pseudo-fields")
    slotted = "__slots__" in cls.__dict__
    if not slotted and any("__slots__" in base.__dict__ for base in cls.__mro__[1:-1]):
        raise TypeError(f"{cls.__qualname__}: fast_init cannot fill the slots of a base class through the instance dict")
    namespace: dict[str, Any] = {"_set": object.__setattr__, "_FACTORY": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    values: dict[str, str] = {}  # field -> the expression that sets it
    for f in fields:
        factory = f.default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING
        if f.default is not dataclasses.MISSING:
            namespace[f"_d_{f.name}"] = f.default
        elif factory:
            namespace[f"_f_{f.name}"] = f.default_factory
        elif not f.init:
            raise TypeError(f"{cls.__qualname__}.{f.name}: fast_init needs a default for a field that is no parameter")
        if not f.init:  # set to its default, as the generated __init__ does
            values[f.name] = f"_f_{f.name}()" if factory else f"_d_{f.name}"
            continue
        values[f.name] = f.name
        param = f.name
        if factory:
            param += "=_FACTORY"
            body.append(f"    if {f.name} is _FACTORY: {f.name} = _f_{f.name}()")
        elif f.default is not dataclasses.MISSING:
            param += f"=_d_{f.name}"
        (keyword if f.kw_only else positional).append(param)
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    if slotted:
        body += [f"    _set(self, {name!r}, {value})" for name, value in values.items()]
    else:
        body.append("    _set(self, '__dict__', {" + ", ".join(f"{name!r}: {value}" for name, value in values.items()) + "})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    exec(f"def __init__({signature}):\n" + ("\n".join(body) or "    pass") + "\n", namespace)  # code built from the field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
