"""The library API: the README's example runs as written, and the functions answer as the commands do."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit import api
from audit.cli import app
from audit.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_the_readme_example_runs_as_written():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Use as a library"):readme.index("## Configuration")]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "fail 0" and lines[1].startswith("NP-COV-001 high ")
    assert lines[4].startswith("allowed ") and lines[-1] == "True"


def test_scan_equals_the_command(tmp_path):
    import datetime as dt

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    report = api.scan(["examples/lab-solution"], now=now)
    cli = json.loads(runner.invoke(app, ["scan", "examples/lab-solution", "-f", "json", "--now", "2026-01-01T00:00:00Z"]).stdout)
    assert json.loads(str(api.render(report, "json"))) == cli


def test_answers_and_errors():
    engine = api.analysis(["examples/lab-solution"])
    assert [r.answer for r in api.reach("frontend/web", "database/db", engine=engine, port="5432")] == ["denied"]
    assert any(str(c).startswith("frontend/web[Pod] => backend/api[Pod]") for c in api.connectivity(engine=engine))
    with pytest.raises(InputError, match="no namespace 'nope'"):
        api.reach("nope/x", "backend/api", engine=engine, port="80")
    with pytest.raises(InputError, match="unknown report format 'docx'"):
        api.render(api.scan(["examples/lab-solution"]), "docx")


def test_flows_fix_and_the_exit_decision():
    """The library answers what `flows`, `fix` and scan's --fail-on decide, with the CLI's numbers."""
    report = api.flows(["examples/lab-flows/hubble.jsonl"], ["examples/lab-before"])
    assert report.traffic is not None and report.traffic.flows > 0
    plan = api.fix(["examples/lab-before"])
    assert (plan.offered, len(plan.resolved), plan.opened) == (19, 19, ())
    assert [f.name.split("-")[1] for f in plan.files] == ["backend", "database", "frontend", "kyverno"]
    before = api.scan(["examples/lab-before"])
    assert api.exit_code(before, "high").code == 1 and api.exit_code(before, "none").code == 0
    assert api.exit_code(api.scan(["examples/lab-solution"]), "critical").code == 0


def test_write_run(tmp_path):
    files = api.write_run(api.scan(["examples/lab-solution"]), tmp_path, ("json", "markdown", "junit"))
    assert sorted(p.suffix for p in files.written) == [".json", ".md", ".xml"]
    assert (tmp_path / "latest.json").exists()
