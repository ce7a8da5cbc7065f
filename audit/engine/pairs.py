"""Observed flows totalled per placed (source, destination, port, protocol), kept in columns.

A capture of random pod pairs places millions of distinct pairs; as a dict of tuple keys and tally
objects they cost hundreds of bytes each (at 3.4 million pairs, 420 MB more than these columns).
A pair is read back as its key and a ``Tally`` made on demand; the answers walk the rows by
number (``Pairs.row``), a verdict per row (``Verdicts``).
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import ItemsView, Iterator, Mapping, Sequence
from dataclasses import dataclass

Outside = tuple[str, int]
"""("outside", segment index): an address range outside the pods that every policy treats alike."""
End = int | Outside
Key = tuple[End, End, int, str]
MAX_IPS = 8
"""Outside addresses kept per end of a pair: the smallest, in text order."""

_EPOCH = dt.datetime(1970, 1, 1)
_MICRO = dt.timedelta(microseconds=1)
_NO_TIME = -(2**63)
"""A time column's value for no time (a flow without one)."""


def stamp_micros(text: str | None) -> int | None:
    """A time as the readers write it (UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``) in microseconds since the epoch."""
    if not text:
        return None
    return (dt.datetime.fromisoformat(text.removesuffix("Z")) - _EPOCH) // _MICRO


def stamp_text(micros: int | None) -> str | None:
    """Microseconds since the epoch as the readers write a time (the inverse of ``stamp_micros``)."""
    if micros is None:
        return None
    return (_EPOCH + micros * _MICRO).isoformat(timespec="microseconds") + "Z"


def encode(end: End) -> int:
    """An end as a number: a pod class as itself, outside range i as -1 - i (the grouping engines' codes)."""
    return end if isinstance(end, int) else -1 - end[1]


def decode(code: int) -> End:
    return code if code >= 0 else ("outside", -1 - code)


def keep_ips(kept: tuple[str, ...], ips: tuple[str, ...]) -> tuple[str, ...]:
    """The MAX_IPS smallest addresses in text order of both, sorted, whatever order they come in."""
    if len(ips) == 1 and (ips[0] in kept or (len(kept) >= MAX_IPS and ips[0] > kept[-1])):
        return kept  # the common case, one flow at a time: nothing changes
    return tuple(sorted(set(kept).union(ips))[:MAX_IPS])


@dataclass(slots=True)
class Tally:
    """Flows of one (source, destination, port, protocol): how many, dropped ones apart, when."""

    count: int = 0
    dropped: int = 0
    start: int | None = None
    end: int | None = None
    """The first and last time, in microseconds since the epoch (UTC)."""
    src_ips: tuple[str, ...] = ()
    dst_ips: tuple[str, ...] = ()
    """Outside addresses seen at each end: the smallest few in text order, sorted (empty for a pod end)."""

    @property
    def first(self) -> str | None:
        return stamp_text(self.start)

    @property
    def last(self) -> str | None:
        return stamp_text(self.end)

    def merge(self, count: int, dropped: int, first: str | None, last: str | None) -> None:
        """Count more flows in (times as the readers write them: UTC text, microseconds)."""
        self.merge_us(count, dropped, stamp_micros(first), stamp_micros(last))

    def merge_us(self, count: int, dropped: int, start: int | None, end: int | None) -> None:
        """Count more flows in, their times in microseconds since the epoch."""
        self.count += count
        self.dropped += dropped
        if start is not None and (self.start is None or start < self.start):
            self.start = start
        if end is not None and (self.end is None or end > self.end):
            self.end = end

    def seen(self, side: str) -> set[str]:
        """The outside addresses kept for an end ("src"/"dst")."""
        return set(self.src_ips if side == "src" else self.dst_ips)


class Pairs(Mapping[Key, Tally]):
    """Tallies per (source, destination, port, protocol), a row each in typed columns; read as a
    mapping of keys to tallies (made on each read: change them through ``add``)."""

    def __init__(self) -> None:
        self._src = array("q")
        self._dst = array("q")
        self._port = array("l")
        self._proto = array("H")
        # Counts are Python ints (a list slot each, small ones shared): a count has no bound.
        self._count: list[int] = []
        self._dropped: list[int] = []
        self._start = array("q")
        self._end = array("q")
        self._protocols: list[str] = []
        self._proto_ids: dict[str, int] = {}
        self._ips: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        """Rows with an outside end: the addresses kept at each end."""
        self._ends: dict[int, End] = {}
        """One object per end read back (sets of peers hold millions of references, not millions of ints)."""
        self._index: dict[tuple[int, int, int, int], int] | None = None
        """Row of each key, built when a key is looked up or merged into rows already there (rows
        known to be new, a grouping engine's, are appended without it)."""

    def add(self, src: int, dst: int, port: int, protocol: str, count: int, dropped: int, start: int | None, end: int | None,
            src_ips: tuple[str, ...] = (), dst_ips: tuple[str, ...] = (), new: bool = False) -> None:
        """Count flows of (source code, destination code, port, protocol) in (ends as ``encode``
        writes them); ``new``: the caller knows no row has this key (no lookup is made)."""
        proto = self._proto_ids.get(protocol)
        if proto is None:
            proto = self._proto_ids[protocol] = len(self._protocols)
            self._protocols.append(protocol)
        at = None if new else self._lookup().get((src, dst, port, proto))
        if at is None:
            at = len(self._src)
            if self._index is not None:
                self._index[(src, dst, port, proto)] = at
            self._src.append(src)
            self._dst.append(dst)
            self._port.append(port)
            self._proto.append(proto)
            self._count.append(count)
            self._dropped.append(dropped)
            self._start.append(_NO_TIME if start is None else start)
            self._end.append(_NO_TIME if end is None else end)
            if src_ips or dst_ips:
                self._ips[at] = (keep_ips((), src_ips) if src_ips else (), keep_ips((), dst_ips) if dst_ips else ())
            return
        self._count[at] += count
        self._dropped[at] += dropped
        if start is not None and (self._start[at] == _NO_TIME or start < self._start[at]):
            self._start[at] = start
        if end is not None and (self._end[at] == _NO_TIME or end > self._end[at]):
            self._end[at] = end
        if src_ips or dst_ips:
            kept = self._ips.get(at, ((), ()))
            self._ips[at] = (keep_ips(kept[0], src_ips) if src_ips else kept[0], keep_ips(kept[1], dst_ips) if dst_ips else kept[1])

    def extend(self, rows: Sequence[tuple[int, int, int, str, int, int, int | None, int | None, Sequence[str] | None, Sequence[str] | None]]) -> None:
        """Rows whose keys no row has (a grouping engine's totals, one row per key), column by
        column: (source code, destination code, port, protocol, flows, dropped, first and last
        time in microseconds, outside addresses at each end)."""
        if not rows:
            return
        base = len(self._src)
        src, dst, port, protocol, count, dropped, start, end, src_ips, dst_ips = zip(*rows, strict=True)
        for name in dict.fromkeys(protocol):  # ids in the order met: the same run after run
            if name not in self._proto_ids:
                self._proto_ids[name] = len(self._protocols)
                self._protocols.append(name)
        self._src.extend(src)
        self._dst.extend(dst)
        self._port.extend(port)
        self._proto.extend(map(self._proto_ids.__getitem__, protocol))
        self._count.extend(count)
        self._dropped.extend(dropped)
        self._start.extend(_NO_TIME if t is None else t for t in start)
        self._end.extend(_NO_TIME if t is None else t for t in end)
        for i, (s, d) in enumerate(zip(src_ips, dst_ips, strict=True)):
            if s or d:
                self._ips[base + i] = (keep_ips((), tuple(s)) if s else (), keep_ips((), tuple(d)) if d else ())
        if self._index is not None:
            for i in range(base, len(self._src)):
                self._index[(self._src[i], self._dst[i], self._port[i], self._proto[i])] = i

    def _lookup(self) -> dict[tuple[int, int, int, int], int]:
        if self._index is None:
            self._index = {(self._src[i], self._dst[i], self._port[i], self._proto[i]): i for i in range(len(self._src))}
        return self._index

    def row(self, at: int) -> tuple[Key, int]:
        """Row ``at``'s key and flow count."""
        return (self._decoded(self._src[at]), self._decoded(self._dst[at]), self._port[at], self._protocols[self._proto[at]]), self._count[at]

    def _decoded(self, code: int) -> End:
        end = self._ends.get(code)
        if end is None:
            end = self._ends[code] = decode(code)
        return end

    def flows(self, at: int) -> tuple[int, int]:
        """Row ``at``'s flows and, of them, those seen DROPPED."""
        return self._count[at], self._dropped[at]

    def tally(self, at: int) -> Tally:
        """Row ``at``'s totals, a tally of its own."""
        start, end = self._start[at], self._end[at]
        src_ips, dst_ips = self._ips.get(at, ((), ()))
        return Tally(self._count[at], self._dropped[at], None if start == _NO_TIME else start, None if end == _NO_TIME else end,
                     src_ips, dst_ips)

    def __len__(self) -> int:
        return len(self._src)

    def __iter__(self) -> Iterator[Key]:
        return (self.row(at)[0] for at in range(len(self._src)))

    def at(self, key: Key) -> int | None:
        """The row of ``key``, if any."""
        proto = self._proto_ids.get(key[3])
        return None if proto is None else self._lookup().get((encode(key[0]), encode(key[1]), key[2], proto))

    def __getitem__(self, key: Key) -> Tally:
        at = self.at(key)
        if at is None:
            raise KeyError(key)
        return self.tally(at)

    def items(self) -> ItemsView[Key, Tally]:
        """Every key and its tally, in row order (no lookup)."""
        return _Items(self)

    def items_by_row(self) -> Iterator[tuple[Key, Tally]]:
        return ((self.row(at)[0], self.tally(at)) for at in range(len(self._src)))


class _Items(ItemsView[Key, Tally]):
    _mapping: Pairs

    def __iter__(self) -> Iterator[tuple[Key, Tally]]:
        return self._mapping.items_by_row()


class Verdicts(Mapping[Key, bool]):
    """A yes or no per row of ``pairs`` (a byte each), read as a mapping of keys."""

    def __init__(self, pairs: Pairs, by_row: bytearray):
        self.pairs = pairs
        self.by_row = by_row

    def __getitem__(self, key: Key) -> bool:
        at = self.pairs.at(key)
        if at is None:
            raise KeyError(key)
        return bool(self.by_row[at])

    def __iter__(self) -> Iterator[Key]:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.by_row)
