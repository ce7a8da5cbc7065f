"""Sets of (protocol, port) as sorted disjoint ranges, for connectivity."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from audit.engine.cached import cached
from audit.fastinit import fast_init
from audit.inventory import ContainerPort

_PORT_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

PROTOCOLS = ("TCP", "UDP", "SCTP")
Ranges = tuple[tuple[int, int], ...]
FULL_RANGE: Ranges = ((1, 65535),)


def _normalize(ranges: Iterable[tuple[int, int]]) -> Ranges:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


@fast_init
@dataclass(frozen=True)
class PortSet:
    """Protocol -> port ranges; absent protocols have no ports."""

    ranges: tuple[tuple[str, Ranges], ...] = ()

    @classmethod
    def everything(cls) -> PortSet:
        return cls(tuple((p, FULL_RANGE) for p in sorted(PROTOCOLS)))

    @classmethod
    def of(cls, items: Mapping[str, Iterable[tuple[int, int]]]) -> PortSet:
        return cls(tuple((p, r) for p, r in sorted((p, _normalize(v)) for p, v in items.items()) if r))

    def as_dict(self) -> dict[str, Ranges]:
        return dict(self.ranges)

    # The fast paths matter: connectivity combines millions of sets, mostly empty or everything.
    def __or__(self, other: PortSet) -> PortSet:
        if not other.ranges or self.ranges == other.ranges or self.ranges == _FULL:
            return self
        if not self.ranges or other.ranges == _FULL:
            return other
        merged: dict[str, list[tuple[int, int]]] = {}
        for p, r in self.ranges + other.ranges:
            merged.setdefault(p, []).extend(r)
        return PortSet.of(merged)

    def __and__(self, other: PortSet) -> PortSet:
        if not self.ranges or self.ranges == other.ranges or other.ranges == _FULL:
            return self
        if not other.ranges or self.ranges == _FULL:
            return other
        mine, theirs = self.as_dict(), other.as_dict()
        return PortSet.of({p: _intersect(mine[p], theirs[p]) for p in mine if p in theirs})

    def __sub__(self, other: PortSet) -> PortSet:
        if not other.ranges or not self.ranges:
            return self
        if other.ranges == _FULL or self.ranges == other.ranges:
            return NONE
        theirs = other.as_dict()
        out: dict[str, list[tuple[int, int]]] = {}
        for p, ranges in self.ranges:
            holes = theirs.get(p, ())
            keep: list[tuple[int, int]] = []
            for lo, hi in ranges:
                cursor = lo
                for a, b in holes:
                    if b < cursor or a > hi:
                        continue
                    if a > cursor:
                        keep.append((cursor, a - 1))
                    cursor = max(cursor, b + 1)
                if cursor <= hi:
                    keep.append((cursor, hi))
            out[p] = keep
        return PortSet.of(out)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    @property
    def is_everything(self) -> bool:
        return self.ranges == _FULL

    def __str__(self) -> str:
        return self.text

    @cached
    def text(self) -> str:
        """As connectivity analyzers print it: `All Connections`, or `TCP 80,443,UDP 53`."""
        if self.is_everything:
            return "All Connections"
        if not self.ranges:
            return "No Connections"
        return ",".join(f"{p} " + ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in r) for p, r in self.ranges)


ALL = PortSet.everything()
_FULL = ALL.ranges
NONE = PortSet()


def parse_port_set(text: str) -> PortSet:
    """The inverse of str(PortSet): `All Connections`, `No Connections` or `TCP 80-90,8080,UDP 53`."""
    text = text.strip()
    if text == "All Connections":
        return ALL
    if text in ("No Connections", ""):
        return NONE
    items: dict[str, list[tuple[int, int]]] = {}
    protocol = None
    for token in text.replace(" ", ",").split(","):
        if not token:
            continue
        if token in PROTOCOLS:
            protocol = token
            items.setdefault(protocol, [])
            continue
        if protocol is None:
            raise ValueError(f"{text!r}: a port range before any protocol")
        lo, _, hi = token.partition("-")
        items[protocol].append((int(lo), int(hi or lo)))
    return PortSet.of(items)


PortEntry = tuple[Iterable[str], "int | str | None", "int | None"]
"""(protocols, port number | port name | None for every port, end of a range or None)."""


def resolve_ports(entries: Iterable[PortEntry], dst_ports: tuple[ContainerPort, ...] | None) -> PortSet:
    """Port entries of any policy kind as a PortSet; a name resolves against the destination's
    container ports of the same protocol (a destination that is not a pod has none)."""
    items: dict[str, list[tuple[int, int]]] = {}
    for protocols, port, end in entries:
        for proto in protocols:
            if port is None:
                items.setdefault(proto, []).append((1, 65535))
            elif isinstance(port, str):
                items.setdefault(proto, []).extend(
                    (cp.port, cp.port) for cp in dst_ports or () if cp.name == port and cp.protocol == proto)
            else:
                items.setdefault(proto, []).append((port, end or port))
    return PortSet.of(items)


class MemoPorts:
    """A rule's port set for each destination's container ports, computed once (rules are
    asked millions of times in a connectivity listing, always for a few distinct port lists)."""

    __slots__ = ("_ports",)

    def __init__(self) -> None:
        self._ports: dict[tuple[ContainerPort, ...] | None, PortSet] = {}

    def ports(self, dst_ports: tuple[ContainerPort, ...] | None) -> PortSet:
        hit = self._ports.get(dst_ports)
        if hit is None:
            hit = self._ports[dst_ports] = self.port_set(dst_ports)
        return hit

    def port_set(self, dst_ports: tuple[ContainerPort, ...] | None) -> PortSet:
        raise NotImplementedError


def port_name_error(value: str) -> str | None:
    """Why ``value`` is not a valid IANA service name (what a named port must be), or None."""
    if len(value) > 15:
        return f"{value!r} must be no more than 15 characters"
    if not _PORT_NAME_RE.fullmatch(value):
        return f"{value!r} must contain only lower-case alphanumerics and '-', starting and ending with an alphanumeric"
    if "--" in value:
        return f"{value!r} must not contain consecutive hyphens"
    if not re.search(r"[a-z]", value):
        return f"{value!r} must contain at least one letter (a number in quotes is a name, not a port)"
    return None
