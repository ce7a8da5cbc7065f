"""Tasks shared with forked workers (audit.forkshare): each task once, results in task order, a
worker's failure never changes the outcome; the checks' findings the same with any --jobs."""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit import forkshare
from audit.checks.catalogue import SHARING, all_checks, sharing_groups
from audit.cli import app
from audit.config import load_config
from audit.forkshare import available_cpus, jobs_for, run_shared
from audit.pipeline import run_audit
from audit.sources.flows import flow_input
from audit.sources.manifests import load_manifests
from benchmarks.generate import generate
from tests.conftest import EXAMPLES, NOW

PARENT = os.getpid()


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _record(log: Path, index: int) -> int:
    with log.open("a") as fh:  # O_APPEND: lines from both processes never interleave
        fh.write(f"{index} {os.getpid()}\n")
    return index * index


def _wait_for(log: Path, index: int) -> int:
    """Task 0: done only once another process has done ``index``, so both must have run at once."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if log.exists() and any(line.split()[0] == str(index) for line in log.read_text().splitlines()):
            return _record(log, 0)
        time.sleep(0.01)
    raise AssertionError("no other process took a task")


def test_every_task_runs_once_in_task_order_and_two_processes_share_them(tmp_path):
    log = tmp_path / "log"
    tasks = [functools.partial(_wait_for, log, 1)] + [functools.partial(_record, log, i) for i in range(1, 12)]
    assert run_shared(tasks, 2) == [i * i for i in range(12)]
    lines = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(i) for i, _ in lines) == list(range(12))
    assert len({pid for _, pid in lines}) == 2
    assert _no_children_left() and os.getpid() == PARENT  # the caller goes on in its own process


def test_three_jobs_use_two_workers(tmp_path):
    log = tmp_path / "log"
    assert run_shared([functools.partial(_record, log, i) for i in range(30)], 3) == [i * i for i in range(30)]
    assert sorted(int(line.split()[0]) for line in log.read_text().splitlines()) == list(range(30))
    assert _no_children_left()


def test_when_no_process_can_be_forked_everything_runs_here(tmp_path, monkeypatch):
    def refused():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    log = tmp_path / "log"
    assert run_shared([functools.partial(_record, log, i) for i in range(5)], 2) == [i * i for i in range(5)]
    assert {line.split()[1] for line in log.read_text().splitlines()} == {str(PARENT)}


def test_one_job_or_one_task_never_forks(tmp_path):
    log = tmp_path / "log"
    assert run_shared([functools.partial(_record, log, i) for i in range(3)], 1) == [0, 1, 4]
    assert run_shared([functools.partial(_record, log, 7)], 4) == [49]
    assert {line.split()[1] for line in log.read_text().splitlines()} == {str(os.getpid())}


def _fails_in_worker(index: int) -> tuple[int, int]:
    if os.getpid() != PARENT:
        raise ValueError("worker only")
    return index, os.getpid()


def _exits_in_worker(index: int) -> int:
    if os.getpid() != PARENT:
        os._exit(9)  # as if killed: no result, no exception
    return index


def _unpicklable_in_worker(index: int) -> object:
    if os.getpid() != PARENT:
        return lambda: index  # a result pickle refuses
    return index


class _RefusedHere:
    """Pickles anywhere, unpickles only outside the test's process."""

    def __init__(self, index: int):
        self.index = index

    def __setstate__(self, state: dict) -> None:
        if os.getpid() == PARENT:
            raise ValueError("not here")
        self.__dict__.update(state)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _RefusedHere) and other.index == self.index


def _unpicklable_here(index: int) -> object:
    return _RefusedHere(index) if os.getpid() != PARENT else index


@pytest.mark.parametrize("task", [_fails_in_worker, _exits_in_worker, _unpicklable_in_worker, _unpicklable_here])
def test_a_task_whose_result_does_not_come_back_runs_here(task):
    # Slow tasks beside them make sure the worker takes some.
    tasks = [functools.partial(task, i) for i in range(6)] + [functools.partial(time.sleep, 0.05) for _ in range(6)]
    results = run_shared(tasks, 2)
    here = [task(i) for i in range(6)]
    assert results[:6] == here and results[6:] == [None] * 6
    assert _no_children_left()


def _always_fails(index: int) -> int:
    if index == 3:
        raise KeyError(f"task {index}")
    time.sleep(0.02)
    return index


def test_an_error_is_raised_here_as_without_workers():
    with pytest.raises(KeyError, match="task 3"):
        run_shared([functools.partial(_always_fails, i) for i in range(8)], 2)
    assert _no_children_left()


def _raises_here_sleeps_there() -> None:
    if os.getpid() == PARENT:
        raise RuntimeError("here")
    time.sleep(30)


def test_an_error_here_kills_the_worker_at_once():
    started = time.monotonic()
    with pytest.raises(RuntimeError):
        run_shared([_raises_here_sleeps_there, _raises_here_sleeps_there], 2)
    assert _no_children_left()
    assert time.monotonic() - started < 20  # not waited for: killed


def test_more_tasks_than_a_pipe_holds_run_here(tmp_path):
    log = tmp_path / "log"
    many = forkshare.MOST_TASKS + 1
    assert run_shared([functools.partial(_record, log, i) for i in range(many)], 2) == [i * i for i in range(many)]
    assert {line.split()[1] for line in log.read_text().splitlines()} == {str(PARENT)}
    assert run_shared([functools.partial(int, i) for i in range(forkshare.MOST_TASKS)], 2) == list(range(forkshare.MOST_TASKS))
    assert _no_children_left()


@pytest.mark.parametrize(("cpu_max", "expected"), [("max 100000\n", None), ("150000 100000\n", 1), ("100000 100000\n", 1),
                                                    ("50000 100000\n", 1), ("garbage\n", None)])
def test_a_cgroup_cpu_quota_caps_the_cpus(tmp_path, monkeypatch, cpu_max, expected):
    (tmp_path / "cpu.max").write_text(cpu_max)
    monkeypatch.setattr(forkshare, "CPU_MAX", tmp_path / "cpu.max")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3} if pid == 0 else set())
    assert available_cpus() == (expected or 4)
    assert jobs_for(0) == (expected or 4) and jobs_for(3) == 3
    monkeypatch.setattr(sys, "platform", "darwin")
    assert jobs_for(0) == 1 and jobs_for(2) == 2


def test_a_quota_of_several_cpus_and_no_cgroup_file(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3, 4, 5})
    (tmp_path / "cpu.max").write_text("350000 100000\n")
    monkeypatch.setattr(forkshare, "CPU_MAX", tmp_path / "cpu.max")
    assert available_cpus() == 3
    monkeypatch.setattr(forkshare, "CPU_MAX", tmp_path / "absent")
    assert available_cpus() == 6


@pytest.mark.parametrize(("counted", "expected"), [(3, 3), (None, 1)])
def test_without_affinity_the_cpu_count(monkeypatch, tmp_path, counted, expected):
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: counted)
    monkeypatch.setattr(forkshare, "CPU_MAX", tmp_path / "absent")
    assert available_cpus() == expected


def test_sharing_groups_keep_each_listed_category_together_and_lose_no_check():
    checks = all_checks()
    groups = sharing_groups(checks)
    assert sorted(c.id for g in groups for c in g) == sorted(c.id for c in checks)
    for cats in SHARING:
        holding = [g for g in groups if any(c.category in cats for c in g)]
        assert len(holding) == 1 and all(c.category in cats for c in holding[0])
    assert sharing_groups([c for c in checks if c.category == "hygiene"]) == [[c for c in checks if c.category == "hygiene"]]
    # Every category is placed, once; the first group runs in this process.
    listed = [cat for cats in SHARING for cat in cats]
    assert sorted(listed) == sorted({c.category for c in checks} | {"flows"}) and len(listed) == len(set(listed))
    assert all([c.id for c in g] == sorted(c.id for c in g) for g in groups)  # all_checks' order kept within a group
    assert {c.category for c in groups[0]} == {"coverage", "hygiene", "permissive", "cni", "config", "flows"}


def _inputs():
    yield "mixed-cluster", load_manifests([str(EXAMPLES / "mixed-cluster")]), load_config(str(EXAMPLES / "config.yaml")), None
    yield "war-story", load_manifests([str(EXAMPLES / "war-story")]), None, None
    yield "lab-flows", load_manifests([str(EXAMPLES / "lab-before")]), None, [str(EXAMPLES / "lab-flows" / "hubble.jsonl")]
    generated = generate({"namespaces": 12, "pods": 300, "policies": 40}, seed=5)
    yield "generated", load_manifests_from(generated), None, None


def load_manifests_from(objects):
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cluster.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [o for kind in objects.values() for o in kind]}))
        return load_manifests([str(path)])


@pytest.mark.parametrize(("name", "inventory", "config", "flows"), list(_inputs()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_report_is_the_same_with_any_number_of_jobs(name, inventory, config, flows):
    reports = [run_audit(inventory, config, NOW, flows=flow_input(flows) if flows else None, jobs=jobs) for jobs in (1, 2, 3)]
    assert reports[0].findings, name  # a comparison of empty reports would prove nothing
    assert reports[1] == reports[0] and reports[2] == reports[0]
    assert {f.category for f in reports[0].findings} & {"exposure", "dns"} or name != "generated"


def test_each_check_is_timed_once_within_the_run_whichever_process_ran_it():
    from audit.checks.catalogue import checks_for
    from audit.checks.registry import Context
    from audit.checks.runner import run_checks
    from audit.config import Config
    from audit.engine.cni import detect_cni
    from audit.pipeline import analyse

    inventory = load_manifests([str(EXAMPLES / "mixed-cluster")])
    ctx = Context(analyse(inventory, Config()), Config(), detect_cni(inventory), NOW.date())
    for jobs in (1, 2):
        timings: dict[str, float] = {}
        started = time.perf_counter()
        run_checks(ctx, timings, jobs)
        elapsed = time.perf_counter() - started
        assert sorted(timings) == sorted(c.id for c in checks_for(ctx))
        assert all(0 <= seconds <= elapsed for seconds in timings.values())


def test_scan_passes_jobs_on_and_writes_the_same_json(tmp_path, monkeypatch):
    import audit.pipeline

    asked: list[int] = []
    real = audit.pipeline.run_checks

    def recording(ctx, timings=None, jobs=1):
        asked.append(jobs)
        return real(ctx, timings, jobs)

    monkeypatch.setattr(audit.pipeline, "run_checks", recording)
    monkeypatch.setattr(forkshare, "available_cpus", lambda: 3)
    runner = CliRunner()
    out = []
    for jobs in ("1", "2", "0"):
        path = tmp_path / f"r{jobs}.json"
        result = runner.invoke(app, ["scan", str(EXAMPLES / "mixed-cluster"), "--json", str(path), "--now", "2026-01-01T00:00:00Z",
                                     "--jobs", jobs])
        assert result.exit_code == 0, result.output
        out.append(path.read_bytes())
    assert out[0] == out[1] == out[2]
    assert asked == [1, 2, 3]
    result = runner.invoke(app, ["scan", str(EXAMPLES / "mixed-cluster"), "--now", "2026-01-01T00:00:00Z"])
    assert result.exit_code == 0 and asked[-1] == 3  # by default one process per available CPU
    # `flows` stays in one process: its peak is the flows' groups, and a worker would add the analysis again.
    flows = runner.invoke(app, ["flows", str(EXAMPLES / "lab-flows" / "hubble.jsonl"), str(EXAMPLES / "lab-before")])
    assert asked[-1] == 1, flows.output
    refused = runner.invoke(app, ["scan", str(EXAMPLES / "mixed-cluster"), "--jobs", "-1"])
    assert refused.exit_code == 2


def _pid_and_role() -> tuple[int, bool]:
    time.sleep(0.03)
    return os.getpid(), forkshare.in_worker()


def test_a_worker_knows_it_is_one():
    results = run_shared([_pid_and_role] * 8, 2)
    assert all(worker == (pid != PARENT) for pid, worker in results)
    assert not forkshare.in_worker()


def test_report_files_written_side_by_side_are_the_same(tmp_path):
    from audit.errors import OutputError
    from audit.ops.run import Outputs, write_files

    report = run_audit(load_manifests([str(EXAMPLES / "mixed-cluster")]), None, NOW)
    written = {}
    for jobs in (1, 2):
        files = tuple((fmt, tmp_path / f"j{jobs}.{fmt}") for fmt in ("json", "html", "sarif", "junit"))
        assert write_files(report, Outputs(files=files, jobs=jobs)) == [p for _, p in files]
        written[jobs] = [p.read_bytes() for _, p in files]
    assert written[1] == written[2]
    missing = tmp_path / "no" / "such" / "dir"
    errors = []
    for jobs in (1, 2):
        with pytest.raises(OutputError) as caught:
            write_files(report, Outputs(files=(("json", tmp_path / "ok.json"), ("html", missing / "r.html")), jobs=jobs))
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "r.html" in errors[0]
    assert _no_children_left()
