"""Independent tasks shared between this process and forked workers: each task runs once, in
whichever process takes it first, and the results come back in task order.

The analysis is hundreds of megabytes of Python objects; a forked worker sees them without a copy
(pages are shared until written), where a pool of fresh processes would have to be sent all of it.
Tasks are handed out one at a time through a pipe, so a worker that draws a long task simply takes
fewer of them. A worker is only ever a shortcut: a task whose result does not come back (the
worker raised, was killed, or the result cannot be pickled) runs again here, so its error, if any,
is raised in this process exactly as it would be without workers.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
"""A cgroup v2 CPU limit: "max PERIOD", or "QUOTA PERIOD" (microseconds of CPU per period)."""
_INDEX = struct.Struct("<H")  # one task number per read: reads of a few bytes from a pipe are atomic
MOST_TASKS = 2048
"""More tasks than this run here: every task number is written before any is read, and 4 KiB is
what any pipe holds."""


_IN_WORKER = False


def in_worker() -> bool:
    """Whether this process is a forked worker: it shows nothing (a display's lock may have been
    held by another thread of the parent when it forked, and no thread came along to free it)."""
    return _IN_WORKER


def available_cpus() -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a container's
    CPU limit) when one is set."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = CPU_MAX.read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def jobs_for(asked: int) -> int:
    """The processes to use when ``asked`` for (0: one per available CPU on Linux; elsewhere one:
    macOS's system libraries are not safe in a forked child, and Windows has no fork)."""
    return asked or (available_cpus() if sys.platform == "linux" else 1)


def run_shared(tasks: Sequence[Callable[[], T]], jobs: int) -> list[T]:
    """``[task() for task in tasks]``, with ``jobs - 1`` forked workers taking tasks too.

    This process takes the first task, the workers the next ones as they start, then whoever is
    free the next: the order of ``tasks`` decides where the long ones run. Tasks must not depend on
    one another's side effects: a worker's memos and writes stay in the worker. With ``jobs`` of 1,
    no fork support, or fewer than two tasks, everything runs here.
    """
    workers = min(jobs, len(tasks)) - 1
    if workers < 1 or not hasattr(os, "fork") or len(tasks) > MOST_TASKS:
        return [task() for task in tasks]
    queue_r, queue_w = os.pipe()
    # Every task number is in the pipe before any process reads: a read that finds it empty means
    # every task is taken.
    os.write(queue_w, b"".join(_INDEX.pack(i) for i in range(len(tasks))))
    os.close(queue_w)
    first = _INDEX.unpack(os.read(queue_r, _INDEX.size))[0]  # taken before any worker exists
    children: list[tuple[int, int]] = []
    try:
        for _ in range(workers):
            result_r, result_w = os.pipe()
            try:
                pid = os.fork()
            except OSError:  # no process to be had (a pids limit, no memory): fewer workers, or none
                os.close(result_r)
                os.close(result_w)
                break
            if pid == 0:  # the worker: never returns into the caller
                os.close(result_r)
                _work(tasks, queue_r, result_w)
            os.close(result_w)
            children.append((pid, result_r))
        results: dict[int, Any] = {first: tasks[first]()}  # a worker's results come back unpickled, untyped
        for index in _taken(queue_r):
            results[index] = tasks[index]()
        for pid, result_r in children:
            results.update(_results_of(result_r))
            _reap(pid)
        children.clear()
    finally:
        os.close(queue_r)
        for pid, result_r in children:  # an exception here: no worker outlives the call
            with contextlib.suppress(OSError):  # already closed by the reading that was interrupted
                os.close(result_r)
            _kill(pid)
    # A task a worker took but did not answer runs here: its error is raised as without workers.
    return [results[i] if i in results else task() for i, task in enumerate(tasks)]


def _taken(queue_r: int) -> Iterator[int]:
    """The task numbers this process takes, until every task is taken."""
    while data := os.read(queue_r, _INDEX.size):
        yield _INDEX.unpack(data)[0]


def _work(tasks: Sequence[Callable[[], object]], queue_r: int, result_w: int) -> None:
    global _IN_WORKER
    _IN_WORKER = True
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the worker; the parent reports it
        done: dict[int, bytes] = {}
        try:
            for index in _taken(queue_r):
                result = tasks[index]()
                try:
                    done[index] = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
                except Exception:  # not picklable: the parent runs this one again
                    continue
        except BaseException:  # the parent runs the task again and raises its error
            pass
        # Written once, after the last task: a worker blocked on a full pipe would take no more tasks.
        with os.fdopen(result_w, "wb") as out:
            pickle.dump(done, out, pickle.HIGHEST_PROTOCOL)
    finally:
        os._exit(0)  # the parent judges by the results that came back, not by the status


def _results_of(result_r: int) -> dict[int, object]:
    with os.fdopen(result_r, "rb") as stream:
        try:
            done = pickle.load(stream)
        except Exception:  # the worker died before writing: its tasks run here
            return {}
    out = {}
    for index, blob in done.items():
        try:
            out[index] = pickle.loads(blob)
        except Exception:  # a result that does not unpickle: its task runs here
            continue
    return out


def _reap(pid: int) -> None:
    os.waitpid(pid, 0)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):  # reaped already
        os.waitpid(pid, 0)
