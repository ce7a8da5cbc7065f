"""CronJob mode: timestamped reports in a directory, stable latest.* copies, old runs pruned."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audit.errors import InputError, OutputError
from audit.ops.atomic import write_atomic
from audit.render.json_report import load_report
from audit.report.model import Report

PREFIX = "netpol-audit-"
_RUN_RE = re.compile(rf"^{re.escape(PREFIX)}(\d{{8}}T\d{{6}}Z)(?:-\d+)?\.[a-z]+$")
FORMATS = ("json", "html", "pdf", "sarif", "txt")


@dataclass(frozen=True)
class RunFiles:
    written: tuple[Path, ...]
    latest: tuple[Path, ...]
    pruned: tuple[Path, ...]


def parse_formats(value: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(f.strip().lower() for f in value.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError(f"--formats {value!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return formats


def prepare(directory: Path) -> None:
    """Fail early, before scanning, when the directory cannot take reports."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{directory}: cannot create the report directory: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"{directory}: the report directory is not writable")


def previous_result(directory: Path) -> tuple[Report | None, str | None]:
    """The last run's result (latest.json), or None with the reason it could not be used."""
    path = directory / "latest.json"
    if not path.exists():
        return None, None
    try:
        return load_report(path.read_text(encoding="utf-8"), str(path)), None
    except (OSError, InputError) as exc:
        return None, f"the previous result {path} could not be read for the trend: {exc}"


def write_run(directory: Path, stamp: dt.datetime, renders: dict[str, Callable[[], str | bytes]], keep: int) -> RunFiles:
    """Write each format to a timestamped file, then refresh latest.*, then prune old runs.

    Every file is written atomically; latest.* changes only once every timestamped file of
    this run is complete, so a failure (disk full) never leaves a half-written report.
    """
    base = f"{PREFIX}{stamp.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"
    name, n = base, 1
    while any((directory / f"{name}.{ext}").exists() for ext in renders):
        n += 1
        name = f"{base}-{n}"
    contents = {ext: render() for ext, render in renders.items()}
    written = []
    for ext, content in contents.items():
        path = directory / f"{name}.{ext}"
        write_atomic(path, content)
        written.append(path)
    latest = []
    for ext, content in contents.items():
        path = directory / f"latest.{ext}"
        write_atomic(path, content)
        latest.append(path)
    return RunFiles(tuple(written), tuple(latest), prune(directory, keep))


def prune(directory: Path, keep: int) -> tuple[Path, ...]:
    """Delete the files of all but the newest ``keep`` runs."""
    runs: dict[str, list[Path]] = {}
    for path in directory.iterdir():
        match = _RUN_RE.match(path.name)
        if match:
            runs.setdefault(path.name.rsplit(".", 1)[0], []).append(path)
    removed = []
    for run in sorted(runs, reverse=True)[keep:]:
        for path in runs[run]:
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                continue
    return tuple(sorted(removed))
