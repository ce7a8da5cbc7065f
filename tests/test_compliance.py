"""Control verdicts follow their stated criteria, and no answer hides a CNI that enforces nothing.

The oracle here reads only the JSON result (findings, CNI verdict, completeness, namespace
table) and the rules written in the README; it never calls the code that decides the verdicts.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from audit.checks.compliance import CONTROLS, assess
from audit.cli import app
from tests.conftest import EXAMPLES

runner = CliRunner()
NOW = ["--now", "2026-12-01T00:00:00Z"]
EXAMPLE_NAMES = ["flannel", "lab-before", "lab-solution", "mixed-cluster", "war-story"]


def result_of(*args: str) -> dict:
    out = runner.invoke(app, ["scan", *args, "-f", "json", *NOW])
    assert out.exit_code in (0, 1), out.output
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    return {name: result_of(str(EXAMPLES / name)) for name in EXAMPLE_NAMES}


def failing_checks(data: dict) -> set[str]:
    return {f["check"] for f in data["findings"] if f["status"] == "fail" and f["severity"] != "info"}


def undecided_checks(data: dict) -> set[str]:
    return {f["check"] for f in data["findings"] if f["status"] == "fail" and f["severity"] == "info"}


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_verdict_follows_from_the_findings_it_lists(results, name):
    data = results[name]
    failing, undecided, cni = failing_checks(data), undecided_checks(data), data["cni"]["verdict"]
    complete = data["scan"]["complete"]
    assert len(data["controls"]) == len(CONTROLS)
    for c in data["controls"]:
        counted = set(c["checks"])
        assert c["criteria"] and c["reason"], c
        if c["status"] == "manual":
            assert c["kind"] == "manual" and "cannot judge" in c["criteria"]
        elif c["status"] == "pass":
            assert not counted & (failing | undecided) and complete, c
            assert c["kind"] != "segmentation" or cni == "enforced", c
            assert c["failing"] == []
        elif c["status"] == "fail":
            assert c["failing"], c
            for check in c["failing"]:
                # Each listed check has a failing finding, or is the CNI that enforces nothing.
                assert check in failing & counted or (check == "NP-CNI-001" and cni == "not-enforced"), (c, check)
        else:
            assert c["status"] == "not-assessable"
            assert not counted & failing and not (c["kind"] == "segmentation" and cni == "not-enforced"), c
            assert (not complete or (c["kind"] == "segmentation" and cni != "enforced") or counted & undecided), c


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_no_segmentation_control_passes_unless_the_cni_enforces(results, name):
    data = results[name]
    for c in data["controls"]:
        if c["kind"] == "segmentation" and data["cni"]["verdict"] != "enforced":
            assert c["status"] != "pass", c


def test_no_control_passes_on_flannel(results):
    data = results["flannel"]
    assert data["cni"]["verdict"] == "not-enforced"
    statuses = {(c["framework"], c["id"]): c["status"] for c in data["controls"]}
    assert "pass" not in statuses.values(), statuses
    pci = next(c for c in data["controls"] if c["id"] == "1.3.1")
    assert pci["status"] == "fail" and "NP-CNI-001" in pci["failing"] and "does not enforce" in pci["reason"]
    # Without kube-flannel the shop's policies satisfy PCI DSS 1.3.1 on paper: the CNI alone fails it.
    shop = result_of(str(EXAMPLES / "flannel"), "-x", "kube-flannel")
    pci = next(c for c in shop["controls"] if c["id"] == "1.3.1")
    assert pci["status"] == "fail" and pci["failing"] == ["NP-CNI-001"], pci
    assert "pass" not in {c["status"] for c in shop["controls"]}


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_the_control_matrix_never_contradicts_the_namespace_table(results, name):
    data = results[name]
    for c in data["controls"]:
        if c["title"] == "Ensure that all Namespaces have Network Policies defined" and c["status"] == "pass":
            assert all(row["policies"] > 0 for row in data["namespaces"] if not row["excluded"]), (c, data["namespaces"])


def test_a_hostnetwork_only_namespace_is_judged_like_any_other(results):
    data = results["flannel"]
    [row] = [r for r in data["namespaces"] if r["name"] == "kube-flannel"]
    assert row["policies"] == 0 and row["pods"] == 0 and row["hostNetworkPods"] == 1
    assert {f["check"] for f in data["findings"] if f["namespace"] == "kube-flannel"} >= {"NP-COV-001", "NP-COV-002", "NP-COV-003"}


def test_waiving_the_cni_finding_does_not_make_segmentation_pass(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("waivers:\n  - {check: NP-CNI-001, namespace: '*', object: '*', reason: accepted, expires: 2099-01-01}\n")
    data = result_of(str(EXAMPLES / "flannel"), "-c", str(config))
    assert not [f for f in data["findings"] if f["check"] == "NP-CNI-001" and f["status"] == "fail"]
    for c in data["controls"]:
        if c["kind"] == "segmentation":
            assert c["status"] == "fail" and "NP-CNI-001" in c["failing"], c


def test_framework_versions_are_named():
    for c in CONTROLS:
        assert any(ch.isdigit() for ch in c.framework), c.framework


SEG = next(c for c in CONTROLS if c.id == "1.3.1")
CNI = next(c for c in CONTROLS if c.id == "5.3.1")
MANUAL = next(c for c in CONTROLS if c.id == "11.4.5")


@pytest.mark.parametrize("control,failing,undecided,complete,cni,expected", [
    (SEG, set(), set(), True, "enforced", "pass"),
    (SEG, set(), set(), True, "not-enforced", "fail"),
    (SEG, set(), set(), True, "unknown", "not-assessable"),
    (SEG, set(), set(), True, "conditional", "not-assessable"),
    (SEG, set(), set(), False, "enforced", "not-assessable"),
    (SEG, set(), set(), False, "not-enforced", "fail"),
    (SEG, {"NP-COV-002"}, set(), False, "unknown", "fail"),
    (SEG, {"NP-HYG-001"}, set(), True, "enforced", "pass"),  # not a check 1.3.1 counts
    (SEG, set(), {"NP-PERM-005"}, True, "enforced", "not-assessable"),
    (CNI, set(), set(), True, "unknown", "pass"),
    (CNI, set(), {"NP-CNI-002"}, True, "unknown", "not-assessable"),
    (CNI, {"NP-CNI-001"}, set(), True, "not-enforced", "fail"),
    (CNI, set(), set(), False, "enforced", "not-assessable"),
    (MANUAL, {"NP-CNI-001"}, set(), False, "not-enforced", "manual"),
])
def test_verdict_truth_table(control, failing, undecided, complete, cni, expected):
    assert assess(control, frozenset(failing), frozenset(undecided), complete, cni).status == expected


def test_every_answer_says_when_the_cni_enforces_nothing(tmp_path):
    flannel = str(EXAMPLES / "flannel")
    note = "does not enforce NetworkPolicy"
    for args in (["reach", "shop/storefront", "shop/orders-db", flannel, "-p", "5432"], ["connectivity", flannel],
                 ["connectivity", flannel, "-f", "json"], ["diff", flannel, flannel]):
        result = runner.invoke(app, args)
        assert note in result.stderr.splitlines()[0], (args, result.stderr)
        assert note not in result.stdout
    assert json.loads(runner.invoke(app, ["connectivity", flannel, "-f", "json"]).stdout)  # stdout stays data
    unknown = runner.invoke(app, ["connectivity", str(EXAMPLES / "lab-solution")])
    assert "unknown" in unknown.stderr.splitlines()[0]
    enforced = runner.invoke(app, ["connectivity", str(EXAMPLES / "mixed-cluster")])
    assert "NOTE" not in enforced.stderr


def test_verify_fails_on_a_cni_that_enforces_nothing_unless_assumed(tmp_path):
    expectations = tmp_path / "e.yaml"
    expectations.write_text("expectations:\n  - {name: db only from storefront, from: shop/storefront, to: shop/orders-db, port: 5432, expect: allowed}\n")
    flannel = str(EXAMPLES / "flannel")
    plain = runner.invoke(app, ["verify", str(expectations), flannel])
    assert plain.exit_code == 1 and "1 passed, 0 failed" in plain.stdout and "no expected denial holds" in plain.stderr
    assumed = runner.invoke(app, ["verify", str(expectations), flannel, "--assume-enforced"])
    assert assumed.exit_code == 0 and "--assume-enforced" in assumed.stderr


def test_criteria_say_the_cni_precondition_only_for_segmentation_controls():
    for c in CONTROLS:
        needs_cni = "the CNI must enforce NetworkPolicy" in c.criteria
        assert needs_cni == (c.kind == "segmentation"), c.ref
        assert (c.kind == "manual") == c.criteria.startswith("Manual:")


def test_an_unknown_cni_is_the_evidence_of_a_not_assessable_segmentation_control(results):
    data = results["lab-solution"]
    assert data["cni"]["verdict"] == "unknown"
    for c in data["controls"]:
        if c["kind"] == "segmentation":
            assert c["status"] == "not-assessable" and c["failing"] == ["NP-CNI-002"], c
