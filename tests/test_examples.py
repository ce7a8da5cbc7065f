"""Golden tests: each bundled example against the expected.yaml beside it."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from audit.config import load_config
from audit.pipeline import run_audit
from audit.sources.manifests import load_manifests
from tests.conftest import EXAMPLES, NOW, ROOT

GOLDEN = ROOT / "tests" / "golden"
EXAMPLE_DIRS = sorted(EXAMPLES / p.stem for p in GOLDEN.glob("*.yaml"))


def run_example(path):
    expected = yaml.safe_load((GOLDEN / f"{path.name}.yaml").read_text())
    config = load_config(str(ROOT / expected["config"])) if expected.get("config") else None
    return expected, run_audit(load_manifests([str(path)]), config, NOW.replace(month=11, day=26))


def test_every_example_has_a_golden_file():
    assert {p.name for p in EXAMPLE_DIRS} >= {"lab-before", "lab-solution", "war-story", "flannel", "mixed-cluster"}


@pytest.mark.parametrize("path", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_example_matches_golden(path):
    expected, report = run_example(path)
    summary = dataclasses.asdict(report.summary)
    assert {k: summary[k] for k in expected["summary"]} == expected["summary"]
    assert report.cni.verdict == expected["cni"]
    got = sorted({f"{f.check} {f.namespace + '/' if f.namespace and f.kind != 'Namespace' else ''}{f.name}"
                  + (" (waived)" if f.status == "waived" else "") for f in report.findings})
    assert got == expected["findings"]


def test_lab_solution_is_fully_covered_with_working_dns():
    _, report = run_example(EXAMPLES / "lab-solution")
    s = report.summary
    assert (s.default_deny_ingress, s.default_deny_egress, s.audited_namespaces) == (3, 3, 3)
    assert s.pods_isolated_both == s.pods == 3
    assert not [f for f in report.findings if f.check.startswith(("NP-DNS", "NP-COV"))]


def test_lab_before_reports_every_pod_unselected():
    _, report = run_example(EXAMPLES / "lab-before")
    s = report.summary
    assert (s.default_deny_ingress, s.default_deny_egress, s.pods_isolated_ingress, s.pods_isolated_egress) == (0, 0, 0, 0)
    for check in ("NP-COV-004", "NP-COV-005"):
        assert {f.namespace for f in report.findings if f.check == check} == {"frontend", "backend", "database"}


def test_war_story_flags_the_empty_selector():
    _, report = run_example(EXAMPLES / "war-story")
    (hit,) = [f for f in report.findings if f.check == "NP-PERM-002"]
    assert hit.name == "analytics-collector" and hit.severity == "high"


def test_flannel_puts_not_enforced_first():
    _, report = run_example(EXAMPLES / "flannel")
    assert report.findings[0].check == "NP-CNI-001"
    assert report.cni.verdict == "not-enforced"
