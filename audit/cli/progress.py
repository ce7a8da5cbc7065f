"""Progress on stderr while long work runs (collection, analysis, PDF), only on a terminal.

Piped or redirected output, `-q`, and tests see nothing extra: the display exists only when
stderr is a terminal. Sources report through a plain callback (`status`), so they stay free of
any terminal code.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from audit.forkshare import in_worker

QUIET: ContextVar[bool] = ContextVar("quiet", default=False)
_CURRENT: ContextVar[Any] = ContextVar("progress", default=None)


def status(text: str) -> None:
    """Show ``text`` as the current step (nothing when no display is active)."""
    display = _CURRENT.get()
    if display is not None and not in_worker():
        display.update(text)


class _Display:
    def __init__(self, stream: TextIO, force: bool = False):
        from rich.console import Console

        self.console = Console(file=stream, force_terminal=force or None, stderr=stream is sys.stderr, highlight=False)
        self.started = time.monotonic()
        self.live = self.console.status("starting", spinner="dots")

    def update(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        # Input names can carry markup or escape sequences: shown as plain, escaped text.
        from rich.text import Text

        from audit.render.safe import terminal_safe

        self.live.update(Text(f"{terminal_safe(text)}  ({elapsed:.0f}s)"))


@contextmanager
def display(stream: TextIO | None = None, force: bool = False) -> Iterator[None]:
    """A progress display on ``stream`` (stderr) for the work inside, when it is a terminal and not `-q`."""
    stream = stream or sys.stderr
    if QUIET.get() or not (force or stream.isatty()) or _CURRENT.get() is not None:
        yield
        return
    shown = _Display(stream, force)
    token = _CURRENT.set(shown)
    try:
        with shown.live:
            yield
    finally:
        _CURRENT.reset(token)
