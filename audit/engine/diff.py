"""Which connections a change opens, closes or changes: `netpol-audit diff OLD NEW`."""

from __future__ import annotations

import bisect
import ipaddress
import itertools
from dataclasses import dataclass
from typing import Any

from audit.engine.analysis import Analysis
from audit.engine.connectivity import Connection, connections, order, segments, with_suffix
from audit.engine.direction import Direction
from audit.engine.ports import PortSet, parse_port_set
from audit.errors import InputError
from audit.inventory import ContainerPort
from audit.report.model import EXTERNAL, is_external


@dataclass(frozen=True)
class Change:
    kind: str  # "opened" | "closed" | "widened" | "narrowed" | "changed"
    src: str
    dst: str
    before: PortSet
    after: PortSet

    def __str__(self) -> str:
        mark = {"opened": "+", "closed": "-", "widened": "+~", "narrowed": "-~", "changed": "~"}[self.kind]
        if self.kind == "opened":
            return f"{mark} {self.src} => {self.dst} : {self.after}"
        if self.kind == "closed":
            return f"{mark} {self.src} => {self.dst} : {self.before}"
        return f"{mark} {self.src} => {self.dst} : {self.before} -> {self.after}"


class MalformedConnections(InputError):
    """A connectivity list whose entries have the wrong shape (not some other JSON document)."""


def parse_connections(data: Any, path: str) -> list[Connection]:
    """A connectivity list as `connectivity -f json` writes it (read by audit.sources.documents)."""
    try:
        if not isinstance(data, list):
            raise InputError(f"{path}: not a connectivity list (a JSON array of src, dst, conn; write one with `netpol-audit connectivity -f json`)")
        out = []
        for i, c in enumerate(data):
            if not isinstance(c, dict) or not all(isinstance(c.get(k), str) for k in ("src", "dst", "conn")):
                error = MalformedConnections if isinstance(c, dict) and {"src", "dst"} & set(c) else InputError
                raise error(f"{path}: item {i}: src, dst and conn must be strings (as `netpol-audit connectivity -f json` writes them)")
            # Files written before outside ranges carried `[External]` still compare with today's.
            out.append(Connection(with_suffix(c["src"]), with_suffix(c["dst"]), parse_port_set(c["conn"])))
        return out
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a connectivity list (write one with `netpol-audit connectivity -f json`): {exc}") from None


def external_range(end: str) -> tuple[int, int, int] | None:
    """(IP version, first, last) of an outside range end; None for a workload."""
    if not is_external(end):
        return None
    first, _, last = end.removesuffix(EXTERNAL).partition("-")
    try:
        a, b = ipaddress.ip_address(first), ipaddress.ip_address(last or first)
    except ValueError:
        return None
    return a.version, int(a), int(b)


def _text(version: int, first: int, last: int) -> str:
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return f"{make(first)}-{make(last)}{EXTERNAL}"


def _pieces(conns: list[Connection], cuts: dict[int, list[int]]) -> list[Connection]:
    """Each outside range split at every cut either listing makes, so both compare range by range."""
    out = []
    for c in conns:
        for side in (0, 1):
            end = (c.src, c.dst)[side]
            found = external_range(end)
            if found is None:
                continue
            version, first, last = found
            points = cuts[version]
            start = bisect.bisect_right(points, first)
            bounds = [first] + [p for p in points[start:bisect.bisect_right(points, last)] if p > first] + [last + 1]
            for lo, hi in itertools.pairwise(bounds):
                piece = _text(version, lo, hi - 1)
                out.append(Connection(piece, c.dst, c.conns) if side == 0 else Connection(c.src, piece, c.conns))
            break
        else:
            out.append(c)
    return out


def _joined(changes: list[Change]) -> list[Change]:
    """Adjacent outside ranges changed alike (same kind, other end, before and after) as one."""
    out: list[Change] = []
    groups: dict[tuple[int, str, str, PortSet, PortSet], list[tuple[int, int, int]]] = {}
    for change in changes:
        side = 0 if external_range(change.src) else 1 if external_range(change.dst) else None
        if side is None:
            out.append(change)
            continue
        found = external_range((change.src, change.dst)[side])
        assert found is not None
        other = (change.src, change.dst)[1 - side]
        groups.setdefault((side, other, change.kind, change.before, change.after), []).append(found)
    for (at, end_other, kind, before, after), ranges in groups.items():
        joined: list[list[int]] = []
        for version, first, last in sorted(ranges):
            if joined and joined[-1][0] == version and joined[-1][2] + 1 == first:
                joined[-1][2] = last
            else:
                joined.append([version, first, last])
        for version, first, last in joined:
            end = _text(version, first, last)
            out.append(Change(kind, end, end_other, before, after) if at == 0 else Change(kind, end_other, end, before, after))
    return sorted(out, key=lambda c: (order(c.src), order(c.dst)))


def diff(before: list[Connection], after: list[Connection]) -> list[Change]:
    """What changed from ``before`` to ``after``, outside ranges compared address by address (the two
    listings may cut the address space apart), then joined again where they changed alike."""
    cuts: dict[int, set[int]] = {4: set(), 6: set()}
    for c in (*before, *after):
        for end in (c.src, c.dst):
            if (found := external_range(end)) is not None:
                cuts[found[0]].update((found[1], found[2] + 1))
    points = {v: sorted(p) for v, p in cuts.items()}
    old = {(c.src, c.dst): c.conns for c in _pieces(before, points)}
    new = {(c.src, c.dst): c.conns for c in _pieces(after, points)}
    changes = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, PortSet()), new.get(key, PortSet())
        if a == b:
            continue
        if not a:
            kind = "opened"
        elif not b:
            kind = "closed"
        elif (a & b) == a:
            kind = "widened"
        elif (a & b) == b:
            kind = "narrowed"
        else:
            kind = "changed"
        changes.append(Change(kind, key[0], key[1], a, b))
    return _joined(changes)


def widened(before: Analysis, after: Analysis) -> list[Connection]:
    """Every connection ``after`` allows that ``before`` did not (same workloads, other policies),
    with only the ports it adds.

    Workload pairs are compared line by line; outside addresses at the first address of every
    range either side's policies cut out, for every pod class in both directions, so a change in
    how the address space is cut never reads as an opening. Empty: the change opens nothing."""
    out = [Connection(c.src, c.dst, c.after - c.before) for c in diff(list(connections(before)), list(connections(after)))
           if c.kind in ("opened", "widened", "changed") and not is_external(c.src) and not is_external(c.dst)]
    probes = sorted({s.probe for s in segments(before) + segments(after)}, key=lambda ip: (ip.version, int(ip)))
    for cls in before.real_classes():
        if not cls.governed:
            continue
        ref = cls.workloads[0].pod_ref if cls.workloads else f"class {cls.id}"
        for ip in probes:
            sides: tuple[tuple[Direction, tuple[ContainerPort, ...] | None], ...] = (("Egress", None), ("Ingress", cls.ports))
            for direction, ports in sides:
                extra = after.side_ports(cls.id, direction, ip, ports) - before.side_ports(cls.id, direction, ip, ports)
                if extra:
                    outside = f"{ip}{EXTERNAL}"
                    out.append(Connection(ref, outside, extra) if direction == "Egress" else Connection(outside, ref, extra))
    return out
