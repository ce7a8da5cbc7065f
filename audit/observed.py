"""Observed traffic as the sources hand it to the engine: flows between ends named as a capture names them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


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
    open: Callable[[ReadStats], Iterator[Flow]]
