"""Pairs in columns against a plain model: every key's flows summed, dropped summed, the earliest
first and latest last time, the eight smallest outside addresses per end, whatever the order of
the adds and whether rows came in as known-new ones or were looked up."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.engine.pairs import MAX_IPS, Pairs, Tally, Verdicts, decode, encode

codes = st.integers(min_value=-4, max_value=4)
ips = st.lists(st.sampled_from([f"10.0.0.{i}" for i in range(12)]), max_size=3).map(tuple)
times = st.one_of(st.none(), st.integers(min_value=-(10**15), max_value=10**17))
adds = st.tuples(codes, codes, st.sampled_from([53, 80, 443]), st.sampled_from(["TCP", "UDP"]),
                 st.integers(min_value=1, max_value=10**30), st.integers(min_value=0, max_value=3), times, times, ips, ips)


def _model(rows):
    out: dict = {}
    for src, dst, port, proto, count, dropped, start, end, sips, dips in rows:
        key = (decode(src), decode(dst), port, proto)
        m = out.setdefault(key, {"count": 0, "dropped": 0, "starts": [], "ends": [], "sips": set(), "dips": set()})
        m["count"] += count
        m["dropped"] += dropped
        m["starts"] += [start] if start is not None else []
        m["ends"] += [end] if end is not None else []
        m["sips"] |= set(sips)
        m["dips"] |= set(dips)
    return {k: Tally(m["count"], m["dropped"], min(m["starts"], default=None), max(m["ends"], default=None),
                     tuple(sorted(m["sips"])[:MAX_IPS]), tuple(sorted(m["dips"])[:MAX_IPS])) for k, m in out.items()}


@settings(max_examples=300, deadline=None)
@given(st.lists(adds, max_size=40), st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40), st.booleans())
def test_pairs_total_each_key_as_the_model_does(rows, fresh, cut, looked_up):
    pairs = Pairs()
    # Rows of keys not seen yet go in as a grouping engine's: known-new ones, or whole batches.
    seen: set = set()
    batch = []
    rest = []
    first = 0
    if looked_up and rows:
        pairs.add(*rows[0])  # a lookup before the batches: the index is kept up to date after
        seen.add(rows[0][:4])
        first = 1
    for i, row in enumerate(rows[first:], start=first):
        key = row[:4]
        if i < fresh and key not in seen:
            batch.append(row)
        else:
            rest.append(row)
        seen.add(key)
    pairs.extend(batch[:cut])
    for row in batch[cut:]:
        pairs.add(*row, new=True)
    for row in rest:
        pairs.add(*row)
    model = _model(rows)
    assert dict(pairs.items()) == model
    assert len(pairs) == len(model) and set(pairs) == set(model)
    for key, tally in model.items():
        at = pairs.at(key)
        assert at is not None and pairs[key] == tally
        assert pairs.row(at) == (key, tally.count) and pairs.flows(at) == (tally.count, tally.dropped)
    assert pairs == model


def test_a_key_not_there_is_a_key_error_and_verdicts_read_by_key():
    pairs = Pairs()
    pairs.add(1, -1, 80, "TCP", 2, 0, None, None, (), ("8.8.8.8",), new=True)
    pairs.add(1, 2, 80, "TCP", 1, 1, 5, 9)
    assert pairs[(1, ("outside", 0), 80, "TCP")] == Tally(2, 0, None, None, (), ("8.8.8.8",))
    assert pairs[(1, 2, 80, "TCP")].first == "1970-01-01T00:00:00.000005Z"
    for missing in ((1, 2, 80, "UDP"), (2, 1, 80, "TCP"), (1, 2, 81, "TCP")):
        with pytest.raises(KeyError):
            pairs[missing]
    verdicts = Verdicts(pairs, bytearray([1, 0]))
    assert dict(verdicts) == {(1, ("outside", 0), 80, "TCP"): True, (1, 2, 80, "TCP"): False}
    with pytest.raises(KeyError):
        verdicts[(1, 2, 80, "UDP")]


@given(st.one_of(st.integers(min_value=0, max_value=10**6), st.tuples(st.just("outside"), st.integers(min_value=0, max_value=10**6))))
def test_an_end_encodes_to_one_number_and_back(end):
    assert decode(encode(end)) == end and (encode(end) >= 0) == isinstance(end, int)
