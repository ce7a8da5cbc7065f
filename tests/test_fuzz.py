"""A bounded fuzzer of our own: mutated examples never crash the tool.

Each example is mutated the way broken or hostile manifests are (a value replaced by another
type, a field removed, a document duplicated, a string grown or filled with control
characters), then scanned. Whatever the input, the run ends with a documented exit code
(0, 1 findings, 2 bad input, 4 incomplete), no traceback, and a bad input is one error line.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from audit.cli import app
from tests.conftest import EXAMPLES

runner = CliRunner()
EXIT_CODES = {0, 1, 2, 4}
SEEDS = [d for name in ("lab-before", "lab-solution", "war-story", "mixed-cluster")
         for path in sorted((EXAMPLES / name).glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]
REPLACEMENTS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.text(max_size=20),
                         st.just("\x1b]0;x\x07"), st.just([]), st.just({}), st.just([1, "a", None]), st.just({"a": [1]}))
FUZZ = settings(max_examples=int(os.environ.get("NETPOL_FUZZ_EXAMPLES", "120")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a document."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


def mutate(doc: dict[str, Any], path: tuple[Any, ...], action: str, replacement: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        return replacement if action == "replace" else doc
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "grow" and isinstance(parent[last], str):
        # Long, but bounded: the same string grown four times would be 200**4 times its length (gigabytes).
        parent[last] = parent[last] * 200 if len(parent[last]) < 2_000 else parent[last] + "x"
    else:
        parent[last] = replacement
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> list[Any]:
    docs = [copy.deepcopy(d) for d in draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=6))]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(docs) - 1))
        if not isinstance(docs[i], dict):
            continue
        path = draw(st.sampled_from(paths(docs[i])))
        docs[i] = mutate(docs[i], path, draw(st.sampled_from(["replace", "delete", "grow"])), draw(REPLACEMENTS))
    if draw(st.booleans()):
        docs.append(copy.deepcopy(docs[0]))  # the same object twice
    return docs


def check_run(result: Any) -> None:
    assert result.exit_code in EXIT_CODES, (result.exit_code, result.output[-2000:])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        # The enforcement note an answer starts with is not an error line.
        lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("NOTE: ")]
        assert lines and all(len(line) < 1000 for line in lines), result.stderr[-2000:]
        summary = [line for line in lines if line.endswith("invalid object(s) left out (see above); exit 2")]
        left_out = [line for line in lines if line.endswith("left out; the run goes on)")]
        others = [line for line in lines if line not in summary and line not in left_out]
        # Invalid objects that are not policies: one error line each, the run went on, a summary;
        # anything else ends the command with one error line (after the left-out ones, if any).
        assert all(line.startswith("netpol-audit: error: ") for line in left_out + others), result.stderr[-2000:]
        assert len(others) + len(summary) == 1, result.stderr[-2000:]
        if summary:
            assert summary == [f"netpol-audit: {len(left_out)} invalid object(s) left out (see above); exit 2"]
        if not left_out:
            assert not result.stdout.strip()


@FUZZ
@given(mutated_documents())
def test_mutated_manifests_never_crash_scan(tmp_path_factory, docs):
    path = Path(tmp_path_factory.mktemp("fuzz")) / "input.yaml"
    path.write_text(yaml.safe_dump_all(docs, allow_unicode=True))
    result = runner.invoke(app, ["scan", str(path), "-f", "json", "--now", "2026-11-26T00:00:00Z"])
    check_run(result)
    if result.exit_code in (0, 1):
        data = json.loads(result.stdout)
        assert data["scan"]["complete"] is True
    elif result.exit_code == 2 and result.stdout.strip():
        data = json.loads(result.stdout)  # the whole report, with what was left out
        left_out = [i for i in data["scan"]["issues"] if i["invalid"]]
        assert left_out and data["scan"]["complete"] is False and data["summary"]["score"] is None
        assert len(left_out) == result.stderr.count("left out; the run goes on")


@FUZZ
@given(mutated_documents(), st.sampled_from(["connectivity", "reach", "verify"]))
def test_mutated_manifests_never_crash_the_questions(tmp_path_factory, docs, command):
    folder = Path(tmp_path_factory.mktemp("fuzz"))
    path = folder / "input.yaml"
    path.write_text(yaml.safe_dump_all(docs, allow_unicode=True))
    if command == "connectivity":
        args = ["connectivity", str(path)]
    elif command == "reach":
        args = ["reach", "frontend", "backend", str(path)]
    else:
        args = ["verify", str(EXAMPLES / "lab-expectations.yaml"), str(path)]
    check_run(runner.invoke(app, args))
