"""fast_init: the same constructor as the generated one, only faster."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

import audit
from audit.fastinit import _FACTORY, fast_init


def _twins(**options):
    """The same class twice: with the generated __init__, and with fast_init's."""

    def make():
        @dataclasses.dataclass(frozen=True, **options)
        class Thing:
            a: int
            b: str = "b"
            c: tuple[int, ...] = dataclasses.field(default_factory=lambda: (1, 2))
            d: list[int] = dataclasses.field(default_factory=list, kw_only=True)
            e: int | None = dataclasses.field(default=None, kw_only=True)

        return Thing

    return make(), fast_init(make())


@pytest.mark.parametrize("slots", [False, True])
@pytest.mark.parametrize(("args", "kwargs"), [((1,), {}), ((1, "x"), {}), ((1, "x", (3,)), {"d": [4], "e": 5}), ((), {"a": 7, "e": 0})])
def test_same_fields_as_the_generated_init(slots, args, kwargs):
    plain, fast = _twins(slots=slots)
    want, got = plain(*args, **kwargs), fast(*args, **kwargs)
    assert [getattr(got, f.name) for f in dataclasses.fields(got)] == [getattr(want, f.name) for f in dataclasses.fields(want)]
    assert repr(got).split("(", 1)[1] == repr(want).split("(", 1)[1]
    assert got == fast(*args, **kwargs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.a = 2  # type: ignore[misc]
    if not slots:
        assert list(vars(got)) == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize("slots", [False, True])
def test_each_factory_call_makes_a_new_value(slots):
    _, fast = _twins(slots=slots)
    first, second = fast(1), fast(1)
    assert first.d == [] and first.d is not second.d


@pytest.mark.parametrize("slots", [False, True])
def test_same_signature_and_errors(slots):
    plain, fast = _twins(slots=slots)
    want, got = inspect.signature(plain), inspect.signature(fast)
    assert [(p.name, p.kind) for p in got.parameters.values()] == [(p.name, p.kind) for p in want.parameters.values()]
    for cls in (plain, fast):
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'a'"):
            cls()
        with pytest.raises(TypeError, match="positional argument"):
            cls(1, "b", (), [], 0)  # d and e are keyword-only


@pytest.mark.parametrize("slots", [False, True])
def test_fields_that_are_no_parameters_get_their_defaults(slots):
    def make():
        @dataclasses.dataclass(frozen=True, slots=slots)
        class Cached:
            a: int
            memo: int | None = dataclasses.field(default=None, init=False, compare=False)
            seen: list[int] = dataclasses.field(default_factory=list, init=False)

        return Cached

    plain, fast = make(), fast_init(make())
    assert [p.name for p in inspect.signature(fast).parameters.values()] == ["a"]
    got, want = fast(1), plain(1)
    assert (got.a, got.memo, got.seen) == (want.a, want.memo, want.seen) == (1, None, [])
    assert got.seen is not fast(1).seen


def test_post_init_runs():
    @fast_init
    @dataclasses.dataclass(frozen=True)
    class Doubled:
        a: int
        twice: int = 0

        def __post_init__(self):
            object.__setattr__(self, "twice", self.a * 2)

    assert Doubled(3).twice == 6


def test_refuses_classes_it_does_not_fit():
    @dataclasses.dataclass
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True)
    class Hidden:
        a: int
        b: int = dataclasses.field(init=False)

    @dataclasses.dataclass(frozen=True)
    class WithInitVar:
        a: int
        b: dataclasses.InitVar[int] = 0

    class Slotted:
        __slots__ = ("a",)

    @dataclasses.dataclass(frozen=True)
    class OverSlots(Slotted):
        a: int

    for cls in (Mutable, Hidden, WithInitVar, OverSlots):
        with pytest.raises(TypeError, match="fast_init"):
            fast_init(cls)


def _decorated() -> list[type]:
    found = {}
    for info in pkgutil.walk_packages(audit.__path__, "audit."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            init = getattr(obj, "__init__", None)
            if isinstance(obj, type) and getattr(init, "__globals__", {}).get("_FACTORY") is _FACTORY:
                found[obj] = None
    return list(found)


def test_the_model_classes_keep_their_fields():
    """Each decorated class of the tool takes its fields in order, with their defaults."""
    classes = _decorated()
    names = {c.__name__ for c in classes}
    assert {"Workload", "CompiledRule", "FindingRow", "PodSelection"} <= names
    for cls in classes:
        params = list(inspect.signature(cls).parameters.values())
        fields = [f for f in dataclasses.fields(cls) if f.init]
        assert [p.name for p in params] == [f.name for f in fields], cls
        for p, f in zip(params, fields):
            if f.default is not dataclasses.MISSING:
                assert p.default == f.default, (cls, f.name)
            elif f.default_factory is not dataclasses.MISSING:
                assert p.default is _FACTORY, (cls, f.name)
            else:
                assert p.default is inspect.Parameter.empty, (cls, f.name)
