"""Write outputs without damaging what they write to.

A regular file (or a new path) is replaced atomically: a reader sees the old file or the whole
new one, never half, and a failure leaves the old one. A symlink is followed, and the file it
points to is replaced the same way (the link stays). A device, FIFO or socket (``/dev/null``,
``/dev/stdout``, a named pipe) is written through, never replaced by a regular file; ``-`` is
standard output.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from audit.errors import OutputError

_WRITTEN: list[str] = []


def written() -> tuple[str, ...]:
    """Every output this process has written in full (for an interrupted run to say so)."""
    return tuple(_WRITTEN)


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` (see the module docstring for what happens to each kind of path)."""
    write_atomic_chunks(path, (data,))


def as_bytes(chunk: str | bytes) -> bytes:
    """What a write of ``chunk`` writes: text as UTF-8."""
    return chunk.encode("utf-8") if isinstance(chunk, str) else chunk


def write_atomic_chunks(path: str | os.PathLike[str], chunks: Iterable[str | bytes]) -> None:
    """Like ``write_atomic`` for output produced piece by piece (never all in memory at once).

    An exception from ``chunks`` removes the temporary file and leaves ``path`` as it was.
    """
    if str(path) == "-":
        out = sys.stdout.buffer
        for chunk in chunks:
            out.write(as_bytes(chunk))
        out.flush()
        return
    target = Path(path)
    try:
        mode = os.stat(target).st_mode  # follows a symlink to what it points at
    except FileNotFoundError:
        mode = None  # a new path (or a dangling link: its target is created)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        _write_through(target, chunks, str(path))
        return
    if target.is_symlink():
        target = target.resolve()  # replace the file the link points to; the link stays
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(as_bytes(chunk))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, stat.S_IMODE(mode) if mode is not None else 0o644)
        os.replace(tmp, target)
        _WRITTEN.append(str(path))
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write: {exc.strerror}") from None
        raise


def _write_through(target: Path, chunks: Iterable[str | bytes], shown: str) -> None:
    """Write into a device, FIFO or socket as it is (nothing to replace, nothing to truncate)."""
    try:
        with open(target, "ab") as handle:
            for chunk in chunks:
                handle.write(as_bytes(chunk))
        _WRITTEN.append(shown)
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write: {exc.strerror}") from None
