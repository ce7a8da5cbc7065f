"""CronJob mode: timestamped reports in a directory, stable latest.* copies, old runs pruned."""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import InputError, OutputError
from audit.ops.atomic import as_bytes, write_atomic
from audit.render.json_report import load_report
from audit.report.model import Report

PREFIX = "netpol-audit-"
_RUN_RE = re.compile(rf"^{re.escape(PREFIX)}(\d{{8}}T\d{{6}}Z)(?:-\d+)?\.[a-z]+(?:\.sig)?$")


@dataclass(frozen=True)
class RunFiles:
    written: tuple[Path, ...]
    latest: tuple[Path, ...]
    pruned: tuple[Path, ...]


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
        previous = load_report(path.read_text(encoding="utf-8"), str(path))
    except (OSError, InputError) as exc:
        return None, f"the previous result {path} could not be read for the trend: {exc}"
    if not previous.scan.complete:
        return None, f"the previous result {path} is an incomplete scan; it is not used for the trend"
    return previous, None


def write_run(directory: Path, stamp: dt.datetime, renders: dict[str, Callable[[], str | bytes]], keep: int,
              publish: bool = True) -> RunFiles:
    """Write each format to a timestamped file, then (``publish``) switch latest.*, then prune.

    Every file is written atomically. A run whose files cannot all be written leaves none of
    them behind (it is no run). latest.* are then switched to the new run's files by hard
    links: no data is written any more, so a full disk cannot leave latest.json from the new
    run beside latest.pdf from the old one. (Where hard links are not supported, each latest.*
    is copied atomically instead.) An incomplete scan is written but not published.
    """
    base = f"{PREFIX}{stamp.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"
    name, n = base, 1
    while any((directory / f"{name}.{ext}").exists() for ext in renders):
        n += 1
        name = f"{base}-{n}"
    contents = {ext: render() for ext, render in renders.items()}
    written: list[Path] = []
    try:
        for ext, content in contents.items():
            path = directory / f"{name}.{ext}"
            write_atomic(path, content)
            written.append(path)
    except BaseException:
        for path in written:  # half a run is no run
            path.unlink(missing_ok=True)
        raise
    latest: list[Path] = []
    if publish:
        for ext, content in contents.items():
            path = directory / f"latest.{ext}"
            _link_or_copy(directory / f"{name}.{ext}", path, content)
            latest.append(path)
    return RunFiles(tuple(written), tuple(latest), prune(directory, keep))


def signed_renders(renders: dict[str, Callable[[], str | bytes]], signer: Any) -> dict[str, Callable[[], str | bytes]]:
    """With ``signer`` (``audit.ops.evidence.SigningKey``), each format but the PDF (signed inside)
    gets a detached signature beside it (``.json.sig``): every file a run writes is signed, latest.*
    included. Each format is rendered once."""
    if signer is None:
        return renders
    out: dict[str, Callable[[], str | bytes]] = {}
    for ext, render in renders.items():
        once = functools.cache(render)
        out[ext] = once
        if ext != "pdf":
            out[f"{ext}.sig"] = functools.partial(_signature, signer, once)
    return out


def _signature(signer: Any, render: Callable[[], str | bytes]) -> bytes:
    return bytes(signer.sign_detached(as_bytes(render())))


def _link_or_copy(source: Path, target: Path, content: str | bytes) -> None:
    """Point ``target`` at ``source``'s data (a hard link renamed into place), or copy it."""
    tmp = target.with_name(f".{target.name}.link.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        write_atomic(target, content)


STALE_TMP_SECONDS = 3600
"""Temporary files older than this are what a killed run left behind: pruning removes them."""


def prune(directory: Path, keep: int, now: float | None = None) -> tuple[Path, ...]:
    """Delete the files of all but the newest ``keep`` runs, and stale temporary files."""
    runs: dict[str, list[Path]] = {}
    removed = []
    now = time.time() if now is None else now
    for path in directory.iterdir():
        match = _RUN_RE.match(path.name)
        if match:
            runs.setdefault(path.name.split(".", 1)[0], []).append(path)
        elif path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file():
            try:
                if now - path.stat().st_mtime > STALE_TMP_SECONDS:
                    path.unlink()
                    removed.append(path)
            except OSError:
                continue
    for run in sorted(runs, reverse=True)[keep:]:
        for path in runs[run]:
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                continue
    return tuple(sorted(removed))
