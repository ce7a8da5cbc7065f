"""The CLI through typer's CliRunner: exit codes, formats, files, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.errors import InputError
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
    from audit.checks.catalogue import all_checks

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
    # DNS and denied observed flows are about what breaks, not what is exposed, and a CNI that isolates
    # every pod is a fact the other checks already count: no control to cite.
    assert all(c["references"] or c["category"] in ("config", "hygiene", "dns") or c["id"] in ("NP-FLOW-001", "NP-CNI-006") for c in data)
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
    from audit.cli import common as cli
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
    assert cli.use_colour(no_color=False)
    assert not cli.use_colour(no_color=True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli.use_colour(no_color=False)


def test_kubectl_habits_help_version_durations():
    assert run("-h").exit_code == 0 and "Usage" in run("-h").output
    assert run("scan", "-h").exit_code == 0
    out = run("version")
    assert out.exit_code == 0 and out.output.startswith("netpol-audit ") and "kubernetes client" in out.output
    from audit.cli import parse_duration

    assert [parse_duration(t) for t in ("30", "5s", "1m", "1m30s", "1500ms", "2.5s")] == [30, 5, 60, 90, 1.5, 2.5]
    for bad in ("5x", "s", "1m 5s", "0.5s", "-3"):
        with pytest.raises(InputError):
            parse_duration(bad)
    result = run("collect", "--request-timeout", "soon", "-o", "x.json")
    assert result.exit_code == 2 and "--request-timeout: 'soon' is not a duration" in result.output


def test_an_internal_error_is_one_line_and_exit_5(monkeypatch, capsys):
    import audit.cli as cli

    def broken(*_a, **_k):
        raise RuntimeError("boom")

    monkeypatch.setattr("audit.cli.commands.scan.run_audit", broken)
    monkeypatch.setattr("sys.argv", ["netpol-audit", "scan", str(EXAMPLES / "lab-solution")])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["netpol-audit: internal error: RuntimeError: boom (a bug: run again with --debug for the traceback, and report it)"]
    monkeypatch.setattr("sys.argv", ["netpol-audit", "--debug", "scan", str(EXAMPLES / "lab-solution")])
    with pytest.raises(RuntimeError):
        cli.main()


def test_a_missing_pango_is_one_line_naming_the_packages(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_pango(name, *args, **kwargs):
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pango)
    result = run("scan", str(EXAMPLES / "lab-solution"), "--pdf", str(tmp_path / "r.pdf"), "-f", "json")
    assert result.exit_code == 2 and not (tmp_path / "r.pdf").exists()
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("netpol-audit: error: --pdf needs the Pango and HarfBuzz system libraries") and "libpango-1.0-0" in line


def test_kubectl_users_first_guesses_work_or_say_what_to_type(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    guess = run("scan", str(EXAMPLES / "mixed-cluster"), "-o", "json")
    assert guess.exit_code == 2 and not (tmp_path / "json").exists()
    assert "use -f json" in guess.stderr and "-o ./out/json" in guess.stderr
    assert run("connectivity", str(EXAMPLES / "lab-solution"), "-o", "csv").exit_code == 2
    only = json.loads(run("scan", str(EXAMPLES / "mixed-cluster"), "-n", "data", "-n", "front*", "-f", "json", *NOW).stdout)
    audited = {n["name"] for n in only["namespaces"] if not n["excluded"]}
    assert audited == {"data", "frontend"} and {f["namespace"] for f in only["findings"] if f["namespace"]} <= audited
    every = json.loads(run("scan", str(EXAMPLES / "mixed-cluster"), "-A", "-f", "json", *NOW).stdout)
    assert "kube-system" in {n["name"] for n in every["namespaces"] if not n["excluded"]}
    both = run("scan", str(EXAMPLES / "mixed-cluster"), "-A", "-n", "data")
    assert both.exit_code == 2 and "-A and -n exclude each other" in both.stderr
    selected = run("reach", "frontend", "backend", str(EXAMPLES / "lab-solution"), "-l", "app in (web,api)", "-p", "8080")
    assert selected.exit_code == 0, selected.output


def test_ci_gates_junit_markdown_new_findings_and_strict_formats(tmp_path):
    import xml.etree.ElementTree as ET

    junit = tmp_path / "scan.xml"
    assert run("scan", str(EXAMPLES / "lab-before"), "--junit", str(junit), *NOW).exit_code == 0
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    checks = [c for c in json.loads(run("checks", "-f", "json").stdout) if c["category"] != "flows"]  # those need --flows
    assert len(cases) == len(checks) * 3 + 1  # three namespaces, and the cluster-wide NP-CNI-002
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("failures")) == len(failed) and any(c.get("classname") == "netpol-audit.frontend" for c in failed)
    md = run("scan", str(EXAMPLES / "lab-before"), "-f", "markdown", *NOW).stdout
    assert md.startswith("### netpol-audit: FAIL") and "| high | NP-COV-001 | database |" in md and "```yaml" in md
    hostile = run("scan", str(Path(__file__).parent / "robustness" / "hostile-01-terminal-escapes.yaml"), "-f", "markdown").stdout
    assert "<script" not in hostile and "\x1b" not in hostile
    # --fail-on-new: only what the baseline did not have.
    base = tmp_path / "base.json"
    run("scan", str(EXAMPLES / "lab-solution"), "--json", str(base), *NOW)
    same = run("scan", str(EXAMPLES / "lab-solution"), "--baseline", str(base), "--fail-on-new", "low", *NOW)
    assert same.exit_code == 0, same.output
    worse = run("scan", str(EXAMPLES / "lab-before"), "--baseline", str(base), "--fail-on-new", "high", *NOW)
    assert worse.exit_code == 1 and "new finding(s) at or above high" in worse.stderr
    assert run("scan", str(EXAMPLES / "lab-before"), "--fail-on-new", "high").exit_code == 2
    assert run("verify", str(EXAMPLES / "lab-expectations.yaml"), str(EXAMPLES / "lab-solution"), "-f", "sarif").exit_code == 2
    assert run("checks", "-f", "sarif").exit_code == 2


def test_the_pre_commit_hook_runs_a_command_that_exists():
    import shlex

    import yaml

    [hook] = yaml.safe_load((Path(__file__).parents[1] / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "netpol-audit" and hook["language"] == "python" and hook["pass_filenames"] is False
    args = shlex.split(hook["entry"])[1:] + hook["args"]
    assert args[0] == "scan" and run(*args[:1], str(EXAMPLES / "lab-solution"), *args[2:]).exit_code in (0, 1)


def test_global_flags_anywhere_on_the_line():
    from audit.cli import global_flags_first

    assert global_flags_first(["scan", "-q", "x.yaml"]) == ["-q", "scan", "x.yaml"]
    assert global_flags_first(["reach", "a", "b", "-v", "--debug"]) == ["--debug", "-v", "reach", "a", "b"]
    assert global_flags_first(["scan", "--", "-q"]) == ["scan", "--", "-q"]  # after --, a file named -q
    out = subprocess.run([sys.executable, "-m", "audit", "scan", "examples/lab-solution", "-q", "-f", "txt", "--now",
                          "2026-01-01T00:00:00Z"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("netpol-audit ")


def test_txt_is_text_and_report_writes_junit(tmp_path):
    text = run("scan", str(ROOT / "examples" / "lab-solution"), "-f", "text", "--now", "2026-01-01T00:00:00Z").output
    assert run("scan", str(ROOT / "examples" / "lab-solution"), "-f", "txt", "--now", "2026-01-01T00:00:00Z").output == text
    result = tmp_path / "r.json"
    assert run("scan", str(ROOT / "examples" / "lab-solution"), "--json", str(result), "--now", "2026-01-01T00:00:00Z").exit_code == 0
    assert run("report", str(result), "--junit", str(tmp_path / "r.xml")).exit_code == 0
    assert (tmp_path / "r.xml").read_text().startswith("<?xml")
