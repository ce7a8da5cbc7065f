"""A computed attribute kept on first use: `functools.cached_property` without its lock.

On Python 3.11 `functools.cached_property` takes a lock shared by every instance of the class on
each first use (Python 3.12 dropped it as a mistake). The engine's compiled rules, peers and
policies compute a dozen such attributes each, a few hundred thousand first uses on a large
cluster: the lock cost more than most of the values. The analysis runs in one thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

_T = TypeVar("_T")


class cached(Generic[_T]):
    """Decorate a method of no arguments: its value is computed on first use and kept in the
    instance's ``__dict__``, which then answers every later use (this is a non-data descriptor)."""

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> _T | cached[_T]:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value
