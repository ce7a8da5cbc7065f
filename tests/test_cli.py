"""The CLI through typer's CliRunner: exit codes, formats, files, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.render.json_report import schema
from tests.conftest import EXAMPLES, ROOT

runner = CliRunner()
NOW = ["--now", "2026-11-26T00:00:00Z"]
LAB = str(EXAMPLES / "lab-solution")
BEFORE = str(EXAMPLES / "lab-before")


def run(*args, input=None, env=None):
    return runner.invoke(app, list(args), input=input, env=env)


def test_every_command_has_help_and_is_documented():
    readme = (ROOT / "README.md").read_text()
    result = run("--help")
    assert result.exit_code == 0
    commands = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert set(commands) >= {"scan", "checks", "collect", "rbac"}
    for name in commands:
        sub = run(name, "--help")
        assert sub.exit_code == 0 and len(sub.output) > 200, name
        assert f"netpol-audit {name}" in readme, f"README does not document `netpol-audit {name}`"
    from audit.checks.registry import all_checks

    for check in all_checks():
        assert f"| {check.id} | {check.severity} | {check.title} |" in readme, f"README's check table lacks {check.id}"


def test_scan_prints_terminal_report_and_writes_json(tmp_path):
    out = tmp_path / "result.json"
    result = run("scan", LAB, "--json", str(out), *NOW)
    assert result.exit_code == 0, result.output
    assert "Default-deny:        ingress 3/3 namespaces, egress 3/3 namespaces" in result.output
    assert "\033[" not in result.output  # not a terminal: no colour
    data = json.loads(out.read_text())
    jsonschema.validate(data, schema())
    assert data["summary"]["defaultDenyIngress"] == 3


def test_json_is_byte_identical_given_now():
    first = run("scan", str(EXAMPLES / "mixed-cluster"), "-f", "json", *NOW)
    second = run("scan", str(EXAMPLES / "mixed-cluster"), "-f", "json", *NOW)
    assert first.exit_code == 0 and first.output == second.output
    jsonschema.validate(json.loads(first.output), schema())


@pytest.mark.parametrize("path,fail_on,code", [(BEFORE, "high", 1), (LAB, "high", 0), (LAB, "info", 1), (BEFORE, "none", 0)])
def test_fail_on_threshold(path, fail_on, code):
    assert run("scan", path, "--fail-on", fail_on, *NOW).exit_code == code


def test_malformed_yaml_exits_2_naming_file_and_document(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {name: [\n")
    result = run("scan", str(bad))
    assert result.exit_code == 2
    assert f"{bad}: document 2" in result.output and "invalid YAML" in result.output
    assert "Traceback" not in result.output


def test_stdin_is_read_with_dash():
    text = (EXAMPLES / "lab-before" / "app.yaml").read_text()
    result = run("scan", "-", "-f", "json", *NOW, input=text)
    assert result.exit_code == 0
    assert json.loads(result.output)["scan"]["inputs"] == ["<stdin>"]


def test_output_file_is_written_atomically_and_unwritable_is_a_clear_error(tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("previous report")
    assert run("scan", LAB, "-o", str(target), *NOW).exit_code == 0
    assert target.read_text().startswith("netpol-audit")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    result = run("scan", LAB, "-o", str(tmp_path / "missing-dir" / "r.txt"), *NOW)
    assert result.exit_code == 2 and "cannot write" in result.output and "Traceback" not in result.output


def test_sarif_locates_findings_in_manifests(tmp_path):
    result = run("scan", str(EXAMPLES / "mixed-cluster"), "-f", "sarif", *NOW)
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["version"] == "2.1.0"
    run0 = doc["runs"][0]
    rule_ids = {r["id"] for r in run0["tool"]["driver"]["rules"]}
    located = [r for r in run0["results"] if "physicalLocation" in r["locations"][0]]
    assert {r["ruleId"] for r in run0["results"]} <= rule_ids
    hyg = next(r for r in located if r["ruleId"] == "NP-HYG-005")
    loc = hyg["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("80-batch.yaml") and loc["region"]["startLine"] == 34


def test_bad_config_and_bad_now_are_usage_errors(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("waivers:\n  - check: NP-NOPE-001\n    reason: x\n")
    result = run("scan", LAB, "--config", str(cfg))
    assert result.exit_code == 2 and "waivers[0].check" in result.output
    result = run("scan", LAB, "--now", "yesterday")
    assert result.exit_code == 2 and "--now" in result.output


def test_no_paths_and_no_cluster_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = run("scan")
    assert result.exit_code == 3 and "no kubeconfig" in result.output and "manifest paths" in result.output


def test_checks_lists_the_catalogue():
    text = run("checks")
    assert text.exit_code == 0 and "NP-COV-001" in text.output and "NP-CNI-001" in text.output
    data = json.loads(run("checks", "-f", "json").output)
    assert all(c["references"] or c["category"] in ("config", "hygiene", "dns") for c in data)
    cov = next(c for c in data if c["id"] == "NP-COV-001")
    assert "CIS Kubernetes Benchmark v1.9.0 5.3.2" in cov["references"]


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "audit", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("netpol-audit ")


def test_exclude_namespace_option():
    result = run("scan", BEFORE, "-x", "front*", "-f", "json", *NOW)
    data = json.loads(result.output)
    assert "frontend" in data["summary"]["excludedNamespaces"]
    assert not [f for f in data["findings"] if f["namespace"] == "frontend"]


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    from audit import cli
    from audit.render.terminal import render_terminal
    from tests.conftest import audit

    report = audit((EXAMPLES / "lab-before" / "app.yaml").read_text())
    assert "\033[" in render_terminal(report, colour=True)
    assert "\033[" not in render_terminal(report, colour=False)

    class TTY:
        def isatty(self):
            return True

    monkeypatch.setattr(cli.sys, "stdout", TTY())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli._use_colour(no_color=False)
    assert not cli._use_colour(no_color=True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli._use_colour(no_color=False)
