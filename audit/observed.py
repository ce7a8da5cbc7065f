"""Observed traffic as the sources hand it to the engine: flows between ends named as a capture names them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from audit.fastinit import fast_init

TOP = 1000
"""Denied flow rows a report keeps, most flows first, beside the totals of all (a capture of random
pairs denies millions of workload pairs; each row is text in every format)."""


@fast_init
@dataclass(frozen=True, slots=True)
class FlowEnd:
    """One end of a flow as the capture names it: any of namespace and pod (or workload), IP, labels."""

    namespace: str | None = None
    name: str | None = None
    ip: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    workload: str | None = None
    """The controlling workload's name, when the capture says it (Hubble's ``workloads``)."""

    def text(self) -> str:
        if self.namespace and self.name:
            return f"{self.namespace}/{self.name}"
        return self.ip or (self.namespace or "?")


@dataclass(frozen=True, slots=True)
class Flow:
    """One observed connection attempt (or ``count`` of them), source to destination port."""

    src: FlowEnd
    dst: FlowEnd
    port: int
    protocol: str
    count: int = 1
    first: str | None = None
    last: str | None = None
    dropped: bool = False
    """The capture saw it DROPPED (Hubble's verdict): the network refused it then."""


@dataclass
class ReadStats:
    """What reading the files found besides flows, so nothing is dropped silently."""

    files: list[str] = field(default_factory=list)
    lines: int = 0
    replies: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    """Lines that are no L3/L4 flow, by what they are (L7, lost events, ...)."""

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


@dataclass(frozen=True)
class FlowInput:
    """Flow files and how to stream them (the source's reader, handed to the pure pipeline)."""

    files: tuple[str, ...]
    open: Callable[[ReadStats], Iterator[Flow | FlowGroups]]


Placed = tuple[int, int, int, str, int, int, int | None, int | None, Sequence[str] | None, Sequence[str] | None]
"""Flows of one placed (source code, destination code, port, protocol), in this order: those four,
the flows, of them DROPPED, the first and last time in microseconds since the epoch (UTC), and
the outside addresses seen at an end whose code is below zero (the smallest eight, in text order;
None or empty at a pod end)."""


@dataclass(frozen=True)
class Placement:
    """What a grouping engine returns for codes given to its ends."""

    blamed: list[tuple[str, int, int]]
    """("source" or "destination", end, flows): flows not placed, charged to the end that is not
    (the source when neither is)."""
    examples: list[tuple[int, int, int, str]]
    """(source end, destination end, port, protocol) of unplaced flows: every one whose (source
    text, destination text, port, protocol) is among the first fifty."""
    outside_only: int
    """Flows whose ends are all outside addresses (every code below zero)."""
    pairs: Iterator[Sequence[Placed]]
    """The placed totals in batches (a few thousand rows each: read into columns at once)."""


class FlowGroups(Protocol):
    """Flows already grouped by an engine that can also total them per placed pair, so Python works
    once per distinct end and once per placed pair, never once per flow. An end's code is a pod
    class (zero or more) or an outside range (below zero); an end without codes is not placed."""

    def ends(self) -> Sequence[FlowEnd]:
        """Every distinct end of the flows; an end's number is its position."""

    def total(self) -> tuple[int, int, str | None, str | None]:
        """Every flow: count, dropped, first and last time."""

    def place(self, codes: Sequence[Sequence[int]]) -> Placement:
        """The flows totalled per (source code, destination code, port, protocol), each end
        standing for each of its codes."""

    def flows(self) -> Iterator[Flow]:
        """The groups as flows (what the line reader would have aggregated)."""
