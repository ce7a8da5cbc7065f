"""The model's JSON form: dataclasses to camelCase dicts and back, every type checked on the way back.

Expected values are written out literally: the oracle is never the code under test.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, NamedTuple

import orjson
import pytest

from audit.serde import DecodeError, fields_by_key, from_jsonable, to_jsonable


@dataclasses.dataclass(frozen=True)
class Inner:
    port_number: int
    ratio: float = 0.5


@dataclasses.dataclass(frozen=True)
class Outer:
    display_name: str
    inner: Inner
    tags: tuple[str, ...] = ()
    pair: tuple[int, str] = (0, "")
    mode: Literal["fast", "slow"] = "fast"
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    maybe: Inner | None = None
    anything: Any = None
    enabled: bool = False


class Point(NamedTuple):
    x: int
    y: int


SAMPLE = Outer("web", Inner(80, 1.5), ("a", "b"), (3, "x"), "slow", {"k": 1}, Inner(8), [1, {"z": 2}], True)
SAMPLE_JSON = {"displayName": "web", "inner": {"portNumber": 80, "ratio": 1.5}, "tags": ["a", "b"], "pair": [3, "x"],
               "mode": "slow", "counts": {"k": 1}, "maybe": {"portNumber": 8, "ratio": 0.5}, "anything": [1, {"z": 2}],
               "enabled": True}


def test_dataclasses_become_camel_case_dicts_in_field_order():
    assert to_jsonable(SAMPLE) == SAMPLE_JSON
    assert list(to_jsonable(SAMPLE)) == list(SAMPLE_JSON)


def test_every_container_and_scalar_as_json_holds_it():
    assert to_jsonable((1, "a", None, True, 2.5)) == [1, "a", None, True, 2.5]
    assert to_jsonable([Inner(1)]) == [{"portNumber": 1, "ratio": 0.5}]
    assert to_jsonable(Point(1, 2)) == [1, 2]  # a tuple subclass is a list too
    assert to_jsonable({1: Inner(2), "b": (3,)}) == {"1": {"portNumber": 2, "ratio": 0.5}, "b": [3]}
    assert to_jsonable(((Inner(1),),)) == [[{"portNumber": 1, "ratio": 0.5}]]
    class Name(str):
        pass

    assert to_jsonable(Name("a")) == "a" and to_jsonable([Name("b")]) == ["b"]
    marker = object()
    assert to_jsonable(marker) is marker  # left to the JSON writer, which refuses it


def test_orjson_with_fields_by_key_writes_the_dict_form():
    """What the JSON result is written with: orjson handed the dataclasses themselves."""
    written = orjson.dumps(SAMPLE, default=fields_by_key, option=orjson.OPT_PASSTHROUGH_DATACLASS)
    assert orjson.loads(written) == SAMPLE_JSON
    assert written.startswith(b'{"displayName":"web","inner":{"portNumber":80')

    @dataclasses.dataclass(frozen=True)
    class Unseen:  # a type no call has met yet: its keys are worked out here
        first_field: tuple[int, ...]

    assert orjson.dumps(Unseen((1,)), default=fields_by_key, option=orjson.OPT_PASSTHROUGH_DATACLASS) == b'{"firstField":[1]}'
    with pytest.raises(TypeError):
        orjson.dumps(object(), default=fields_by_key)


def test_the_dict_form_decodes_back_to_the_same_value():
    assert from_jsonable(Outer, SAMPLE_JSON) == SAMPLE
    assert from_jsonable(Outer, {"displayName": "x", "inner": {"portNumber": 1}}) == Outer("x", Inner(1))
    assert from_jsonable(Inner, {"portNumber": 1, "ratio": 2}) == Inner(1, 2.0)
    assert isinstance(from_jsonable(Inner, {"portNumber": 1, "ratio": 2}).ratio, float)
    assert from_jsonable(Outer | None, None) is None
    assert from_jsonable(int | str, "a") == "a"
    assert from_jsonable(tuple[int, ...], [1, 2, 3]) == (1, 2, 3)
    assert from_jsonable(tuple[int], [7]) == (7,)
    assert from_jsonable(list[int], [1, 2]) == [1, 2]  # a type the model does not use: taken as it is


@pytest.mark.parametrize(("tp", "data", "message"), [
    (Outer, [], "the document: must be an object"),
    (tuple[int], [7, 8], "the document: must be a list of 1 items"),  # one item, as the type says (not a variadic tuple)
    (tuple[int], [], "the document: must be a list of 1 items"),
    (Outer, {"inner": {"portNumber": 1}}, "displayName: required"),
    (Outer, {"displayName": "x", "inner": {}}, "inner.portNumber: required"),
    (Outer, {"displayName": 5, "inner": {"portNumber": 1}}, "displayName: must be a string"),
    (Outer, {"displayName": "x", "inner": {"portNumber": True}}, "inner.portNumber: must be an integer"),
    (Outer, {"displayName": "x", "inner": {"portNumber": "80"}}, "inner.portNumber: must be an integer"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1, "ratio": False}}, "inner.ratio: must be a number"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1, "ratio": "1"}}, "inner.ratio: must be a number"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1}, "mode": "medium"}, "mode: 'medium' is not one of 'fast', 'slow'"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1}, "tags": "a"}, "tags: must be a list"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1}, "tags": ["a", 1]}, "tags[1]: must be a string"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1}, "pair": [1]}, "pair: must be a list of 2 items"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1}, "pair": [1, 2]}, "pair[1]: must be a string"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1}, "counts": []}, "counts: must be an object"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1}, "counts": {"a": "1"}}, "counts.a: must be an integer"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1}, "maybe": 3}, "maybe: must be an object"),
    (Outer, {"displayName": "x", "inner": {"portNumber": 1}, "enabled": 1}, "enabled: must be true or false"),
])
def test_a_value_that_does_not_fit_is_named_by_its_path(tp, data, message):
    with pytest.raises(DecodeError) as caught:
        from_jsonable(tp, data)
    assert str(caught.value) == message


def test_a_field_with_a_default_factory_is_not_required():
    @dataclasses.dataclass(frozen=True)
    class WithFactory:
        items: dict[str, int] = dataclasses.field(default_factory=dict)

    assert from_jsonable(WithFactory, {}) == WithFactory()
