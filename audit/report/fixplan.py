"""The fix bundle's report: what `netpol-audit fix` resolves, closes and keeps open, as the
renderers read it (SUMMARY.md, `fix -f json`, the terminal). A leaf, like the report model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClosedRow:
    """A connection allowed today that the bundle closes (or narrows), with the ports taken away
    and what the capture saw on them (``flows`` None: not checked against traffic)."""

    kind: str
    source: str
    destination: str
    ports: str
    between_workloads: bool
    flows: int | None = None
    first_seen: str | None = None
    last_seen: str | None = None


@dataclass(frozen=True)
class BundleFileRow:
    name: str
    namespace: str | None
    documents: int
    resolves: tuple[str, ...]
    """Finding ids this file's fixes are for."""
    observed_closed: int | None = None
    """Observed flows closed in this file's namespace (None: no capture)."""


@dataclass(frozen=True)
class TrafficRow:
    """What the bundle does to the observed traffic, verified by the engine."""

    flows: int
    kept: tuple[str, ...]
    still_denied: tuple[str, ...]
    denied_today: tuple[str, ...]
    unplaced: int
    unplaced_examples: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class FixReport:
    """Everything `fix` says about its bundle."""

    summary: str
    offered: int
    resolved: tuple[str, ...]
    failing: int
    no_fix: str
    files: tuple[BundleFileRow, ...]
    closes: tuple[ClosedRow, ...]
    closes_between_workloads: int
    opened: tuple[str, ...]
    restored_dns: tuple[str, ...]
    traffic: TrafficRow | None
    dry_run: tuple[str, ...]

    @property
    def verified(self) -> bool:
        """Nothing opened, and no observed forwarded flow left denied by the bundle."""
        return not self.opened and (self.traffic is None or not self.traffic.still_denied)
