"""Regression tests for the reproductions in tests/robustness/ (copied from the shared robustness
set: minimal hand-written inputs that made the tool misbehave) and for consistency under faults."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.ops import atomic, rotation
from tests.conftest import EXAMPLES, inventory

HERE = Path(__file__).parent / "robustness"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=True)


def one_line_error(result, *needles: str) -> str:
    """The run ended with exit 2 and a single error line (no traceback) that names ``needles``."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("netpol-audit: error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("name,field", [
    ("tb-08-apiversion-int.yaml", "apiVersion"),
    ("tb-10-float-tag.yaml", "document 1"),
    ("wrong-03-duplicate-podselector-key.yaml", "duplicate key podSelector"),
])
def test_bad_documents_are_one_line_errors_naming_file_document_and_field(name, field):
    """A document that cannot be read as an object (malformed YAML, a type the kind cannot be told
    from) stops the run: nothing can be said of what it was meant to be."""
    one_line_error(run("scan", str(HERE / name)), name, field)


VALID_NEIGHBOUR = """
---
apiVersion: v1
kind: Namespace
metadata: {name: fine}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: fine}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: i}]}
"""


@pytest.mark.parametrize("name,field,resource", [
    ("tb-01-container-ports-int.yaml", "spec.containers[0].ports", "Pod x/a"),
    ("tb-02-container-port-protocol-list.yaml", "spec.containers[0].ports[0].protocol", "Pod x/a"),
    ("tb-03-daemonset-command-string.yaml", "spec.template.spec.containers[0].command", "DaemonSet x/a"),
    ("tb-04-pod-status-podips-int.yaml", "status.podIPs", "Pod x/a"),
    ("tb-05-service-ports-int.yaml", "spec.ports", "Service x/a"),
    ("tb-14-daemonset-env-name-list.yaml", "spec.template.spec.containers[0].env[0].name", "DaemonSet x/a"),
    ("tb-07-replicas-2pow70.yaml", "spec.replicas", "Deployment x/a"),
    ("wrong-01-negative-replicas.yaml", "spec.replicas", "Deployment x/a"),
    ("wrong-02-hostnetwork-string-false.yaml", "spec.hostNetwork", "Pod x/web"),
])
def test_an_invalid_object_that_is_not_a_policy_is_left_out_and_the_run_goes_on(tmp_path, name, field, resource):
    """Reported on one stderr line naming file, document and field; left out; every other object
    analysed and every report written; the scan says which object is missing; exit 2."""
    path = tmp_path / name
    path.write_text((HERE / name).read_text() + VALID_NEIGHBOUR)
    out = tmp_path / "r.json"
    result = run("scan", str(path), "--json", str(out), "-f", "json")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("netpol-audit: error: ")]
    assert len(errors) == 1 and name in errors[0] and field in errors[0] and f"{resource} left out" in errors[0], result.stderr
    assert "Traceback" not in result.output and "INCOMPLETE" not in result.stderr
    saved = json.loads(out.read_text())
    assert json.loads(result.stdout) == saved
    assert saved["scan"]["complete"] is False and saved["summary"]["score"] is None
    [issue] = saved["scan"]["issues"]
    assert issue["resource"] == resource and issue["invalid"] is True and field in issue["reason"]
    assert "fine" in [ns["name"] for ns in saved["namespaces"]]
    # The other commands read the same inputs the same way.
    conn = run("connectivity", str(path))
    assert conn.exit_code == 2 and "fine/web[Deployment] => " in conn.stdout and f"{resource} left out" in conn.stderr


@pytest.mark.parametrize("name", ["hang-01-alias-bomb-in-label-value.yaml", "hang-02-alias-bomb-in-replicas.yaml",
                                  "hang-03-alias-bomb-in-ipblock-cidr.yaml", "hang-04-alias-bomb-in-matchlabels.yaml"])
def test_alias_bombs_are_refused_at_once(name):
    started = time.monotonic()
    line = one_line_error(run("scan", str(HERE / name)), name, "aliases")
    assert time.monotonic() - started < 10 and len(line) < 400


def test_a_long_value_is_quoted_in_an_error_only_in_part(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: i}]}\nstatus: {podIPs: " + "x" * 50_000 + "}\n")
    result = run("scan", str(path))
    [line] = [line for line in result.stderr.splitlines() if line.startswith("netpol-audit: error: ")]
    assert result.exit_code == 2 and "status.podIPs" in line and len(line) < 500


def test_an_unquoted_invalid_date_is_text_as_the_api_reads_it():
    result = run("scan", str(HERE / "tb-09-unquoted-invalid-date.yaml"), "-f", "json")
    assert result.exit_code == 0, result.output


def test_mixed_key_types_become_json_keys_as_kubectl_converts_them():
    """`podSelector: {1: a, foo: b}`: the keys are the strings "1" and "foo" (as kubectl converts
    YAML to JSON), neither a LabelSelector field: the policy is invalid, and says which."""
    result = run("scan", str(HERE / "tb-06-selector-mixed-key-types.yaml"), "-f", "json")
    assert result.exit_code == 0, result.output
    (policy,) = json.loads(result.output)["policies"]
    assert not policy["valid"]
    assert any("spec.podSelector.1" in e for e in policy["errors"]) and any("spec.podSelector.foo" in e for e in policy["errors"])


def test_a_malformed_kubeconfig_is_one_line(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    one_line_error(run("collect", "--kubeconfig", str(HERE / "tb-11-kubeconfig-clusters-int.yaml"), "-o", str(tmp_path / "x.json")),
                   "tb-11", "not a valid kubeconfig")


def test_a_malformed_connectivity_json_is_one_line():
    path = str(HERE / "tb-12-diff-connectivity-json-wrong-types.json")
    one_line_error(run("diff", path, path), "item 0", "must be strings")


def test_an_invalid_waiver_date_is_one_line():
    one_line_error(run("scan", str(EXAMPLES / "lab-solution"), "-c", str(HERE / "tb-13-config-waiver-invalid-date.yaml")),
                   "waivers[0].expires", "2027-13-45")


def namespaces(result) -> dict[str, dict]:
    return {n["name"]: n for n in json.loads(result.output)["namespaces"]}


def test_cidrs_the_api_server_rejects_make_the_policy_invalid():
    result = run("scan", str(HERE / "wrong-04-api-invalid-cidr-accepted.yaml"), "-f", "json")
    data = json.loads(result.output)
    assert data["summary"]["policies"] == 0 and data["summary"]["invalidPolicies"] == 5
    assert not any(n["defaultDenyEgress"] or n["defaultDenyIngress"] for n in data["namespaces"])


@pytest.mark.parametrize("name", ["wrong-05-calico-negated-selector-false-default-deny.yaml", "wrong-05b-calico-minimal-hypothesis.yaml"])
def test_a_calico_selector_is_never_judged_on_a_made_up_pod(name):
    result = run("scan", str(HERE / name), "-f", "json")
    for ns in namespaces(result).values():
        if ns["defaultDenyIngress"]:
            assert ns["isolatedIngress"] == ns["pods"]
        if ns["defaultDenyEgress"]:
            assert ns["isolatedEgress"] == ns["pods"]


@pytest.mark.parametrize("name", ["wrong-06-matchlabels-falsy-selects-everything.yaml", "wrong-06b-matchlabels-falsy-false-default-deny.yaml"])
def test_a_falsy_match_labels_is_invalid_whatever_was_parsed_before(name):
    docs = [d for d in yaml.safe_load_all((HERE / name).read_text()) if d]
    forward = run("scan", str(HERE / name), "-f", "json")
    data = json.loads(forward.output)
    invalid = {p["name"] for p in data["policies"] if not p["valid"]}
    assert invalid, "the policy with a falsy matchLabels must be invalid"
    # Document order changes nothing: reversed, the same policies are invalid.
    reversed_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"reversed-{name}"
    reversed_path.write_text(yaml.safe_dump_all(list(reversed(docs))))
    backward = json.loads(run("scan", str(reversed_path), "-f", "json").output)
    assert {p["name"] for p in backward["policies"] if not p["valid"]} == invalid
    assert {n["name"]: n["defaultDenyIngress"] for n in backward["namespaces"]} == {n["name"]: n["defaultDenyIngress"] for n in data["namespaces"]}


def test_terminal_control_sequences_from_names_are_escaped_everywhere():
    path = str(HERE / "hostile-01-terminal-escapes.yaml")
    for args in (["scan", path], ["scan", path, "--no-color"], ["connectivity", path], ["reach", "\x1b[2Jevil/x", "x/y", path]):
        result = run(*args)
        assert "\x1b" not in result.output and "\x07" not in result.output, args
        assert "\\x1b" in result.output, args  # shown, as an escape


def test_csv_cells_cannot_start_a_formula():
    result = run("connectivity", "-f", "csv", str(HERE / "hostile-02-csv-formula.yaml"))
    rows = result.output.splitlines()[1:]
    assert rows and all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.replace('"', "").split(","))


def test_a_name_cannot_inject_a_document_into_a_fix():
    result = run("scan", str(HERE / "hostile-03-fixyaml-injection.yaml"), "-f", "json")
    for finding in json.loads(result.output)["findings"]:
        if finding.get("fixYaml"):
            docs = list(yaml.safe_load_all(finding["fixYaml"]))
            assert {d["kind"] for d in docs} == {"NetworkPolicy"}
            assert all(d["metadata"]["namespace"] == finding["namespace"] for d in docs)


def test_junit_stays_well_formed_xml(tmp_path):
    import xml.dom.minidom

    pods = tmp_path / "pods.yaml"
    pods.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: x}\nspec: {containers: [{name: c, image: i}]}\n")
    out = tmp_path / "junit.xml"
    run("verify", str(HERE / "hostile-04-junit-control-chars-expectations.yaml"), str(pods), "--junit", str(out))
    xml.dom.minidom.parse(str(out))  # raises on anything XML 1.0 cannot carry


@pytest.mark.parametrize("name", ["perf-01-pdf-10k-char-namespace.yaml", "perf-02-pdf-60k-char-annotation-valid-object.yaml"])
def test_long_strings_keep_pdf_layout_linear(tmp_path, name):
    from pypdf import PdfReader

    started = time.monotonic()
    out = tmp_path / "report.pdf"
    result = run("scan", str(HERE / name), "--pdf", str(out))
    assert result.exit_code in (0, 1), result.output
    assert time.monotonic() - started < 60  # minutes before the fix; a few seconds now
    text = "".join(page.extract_text() for page in PdfReader(str(out)).pages)
    assert "the attached JSON has them all" in text


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_outputs_never_replace_a_device_fifo_or_symlink(tmp_path):
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    lab = str(EXAMPLES / "lab-solution")
    assert run("scan", lab, "-f", "json", "-o", str(null)).exit_code == 0
    reader = subprocess.Popen([sys.executable, "-c", f"import sys; sys.stdout.write(str(len(open({str(fifo)!r}, 'rb').read())))"],
                              stdout=subprocess.PIPE, text=True)
    assert run("scan", lab, "--json", str(fifo)).exit_code == 0
    assert int(reader.communicate(timeout=30)[0]) > 1000
    assert run("scan", lab, "-f", "json", "-o", str(link)).exit_code == 0
    assert stat.S_ISCHR(os.lstat(null).st_mode) and stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()
    assert json.loads(real.read_text())["tool"]["name"] == "netpol-audit"  # the link's target was replaced, the link kept
    assert not (Path.cwd() / "-").exists()


def test_dash_is_stdout_for_every_output_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = subprocess.run([sys.executable, "-m", "audit", "scan", str(EXAMPLES / "lab-solution"), "-f", "json", "-o", "-"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and json.loads(result.stdout)["tool"]["name"] == "netpol-audit"
    assert not (tmp_path / "-").exists()


# -- consistency under faults -------------------------------------------------------------

def test_a_run_that_cannot_write_all_its_files_leaves_none_and_latest_untouched(tmp_path, monkeypatch):
    out = tmp_path / "reports"
    lab = EXAMPLES / "lab-before"
    assert run("scan", str(lab), "--output-dir", str(out), "--now", "2026-11-24T02:00:00Z", "--formats", "json,html").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = atomic.write_atomic_chunks
    calls = []

    def full_disk_on_second(path, chunks):
        calls.append(path)
        if len(calls) == 2:
            raise atomic.OutputError(f"{path}: cannot write: No space left on device")
        return real(path, chunks)

    monkeypatch.setattr(atomic, "write_atomic_chunks", full_disk_on_second)
    result = run("scan", str(lab), "--output-dir", str(out), "--now", "2026-11-25T02:00:00Z", "--formats", "json,html")
    assert result.exit_code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no half run, latest.* as they were


def test_latest_files_are_switched_by_links_and_fall_back_to_copies(tmp_path, monkeypatch):
    out = tmp_path / "reports"
    assert run("scan", str(EXAMPLES / "lab-before"), "--output-dir", str(out), "--now", "2026-11-24T02:00:00Z",
               "--formats", "json,html").exit_code == 0
    run_json = out / "netpol-audit-20261124T020000Z.json"
    assert os.stat(out / "latest.json").st_ino == os.stat(run_json).st_ino  # one inode: no data written twice

    def no_links(*_args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(rotation.os, "link", no_links)
    assert run("scan", str(EXAMPLES / "lab-solution"), "--output-dir", str(out), "--now", "2026-11-25T02:00:00Z",
               "--formats", "json,html").exit_code == 0
    assert (out / "latest.json").read_bytes() == (out / "netpol-audit-20261125T020000Z.json").read_bytes()


def test_stale_temporary_files_are_pruned(tmp_path):
    stale = tmp_path / ".latest.json.abc123.tmp"
    stale.write_text("x")
    fresh = tmp_path / ".latest.html.def456.tmp"
    fresh.write_text("x")
    old = time.time() - 2 * rotation.STALE_TMP_SECONDS
    os.utime(stale, (old, old))
    removed = rotation.prune(tmp_path, keep=5)
    assert stale in removed and not stale.exists() and fresh.exists()


def test_interrupted_after_a_write_says_what_was_written(tmp_path, monkeypatch):
    from audit.ops import run as cli  # where the report files are written

    out = tmp_path / "result.json"
    real = cli.write_atomic_chunks  # the JSON result and the HTML page are written piece by piece

    def write_then_interrupt(path, chunks):
        real(path, chunks)
        if str(path).endswith(".html"):
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "write_atomic_chunks", write_then_interrupt)
    result = run("scan", str(EXAMPLES / "lab-solution"), "--json", str(out), "--html", str(tmp_path / "r.html"))
    assert result.exit_code == 130
    assert "already written in full" in result.output and str(out) in result.output


def test_an_incomplete_scan_is_written_but_never_becomes_the_record(tmp_path):
    """The API server dies mid-list in --output-dir mode: exit 4, the run's files are there and say
    INCOMPLETE, latest.* and the trend baseline stay the last complete run, the metrics keep its time."""
    from tests.apiserver import ApiDouble, Faults, kubeconfig
    from tests.test_cluster import cluster_objects

    out = tmp_path / "reports"
    metrics = tmp_path / "metrics.prom"
    objects = cluster_objects()
    kc = tmp_path / "kubeconfig"
    with ApiDouble(objects, token="t") as api:
        kc.write_text(kubeconfig(api.url, token="t"))
        good = run("scan", "--kubeconfig", str(kc), "--output-dir", str(out), "--now", "2026-11-24T02:00:00Z",
                   "--formats", "json", "--metrics-file", str(metrics))
    assert good.exit_code in (0, 1), good.output
    latest = (out / "latest.json").read_bytes()
    with ApiDouble(objects, token="t", faults=Faults(hostile={"/api/v1/pods": "vanish"}), page_size_cap=5) as api:
        kc.write_text(kubeconfig(api.url, token="t"))
        bad = run("scan", "--kubeconfig", str(kc), "--output-dir", str(out), "--now", "2026-11-25T02:00:00Z",
                  "--formats", "json", "--metrics-file", str(metrics), "--request-timeout", "1")
    assert bad.exit_code == 4, bad.output
    summary = json.loads(bad.output.splitlines()[0])
    assert summary["verdict"] == "incomplete" and summary["score"] is None
    written = json.loads((out / "netpol-audit-20261125T020000Z.json").read_text())
    assert written["scan"]["complete"] is False and written["summary"]["score"] is None
    assert (out / "latest.json").read_bytes() == latest  # the record is still the complete run
    import datetime as dt

    from prometheus_client.parser import text_string_to_metric_families
    samples = {s.name: s.value for fam in text_string_to_metric_families(metrics.read_text()) for s in fam.samples}
    good_time = json.loads(latest)["generatedAt"]
    assert samples["netpol_audit_scan_complete"] == 0
    assert samples["netpol_audit_last_success_timestamp_seconds"] == dt.datetime.fromisoformat(good_time.replace("Z", "+00:00")).timestamp()
    assert "netpol_audit_pods_unselected" not in samples and "netpol_audit_score" not in samples
    # The next complete run's trend is against the last complete one, not the incomplete one.
    with ApiDouble(objects, token="t") as api:
        kc.write_text(kubeconfig(api.url, token="t"))
        again = run("scan", "--kubeconfig", str(kc), "--output-dir", str(out), "--now", "2026-11-26T02:00:00Z", "--formats", "json")
    trend = json.loads(again.output.splitlines()[0])["trend"]
    assert trend["since"] == good_time and trend["new"] == 0 and trend["resolved"] == 0


def test_inventory_helper_is_importable():
    assert inventory("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n").namespaces


@pytest.mark.parametrize("url", ["notaurl", "http://[::1", "ftp://x", "http://exa mple", "http://host:99999"])
def test_a_bad_pushgateway_url_fails_before_the_scan(tmp_path, url):
    out = tmp_path / "r.json"
    one_line_error(run("scan", str(EXAMPLES / "lab-solution"), "--pushgateway", url, "--json", str(out)), "--pushgateway")
    assert not out.exists()  # it failed before anything was written


@pytest.mark.parametrize("args", [
    ["report", "{bad"], ["report", "[]"], ["diff", "{bad", "{bad"], ["verify", "{bad", "{bad"], ["reach", "a", "b", "{bad"],
    ["connectivity", "{bad"], ["scan", "{bad"], ["scan", "-c", "{bad", "{lab}"], ["collect", "--kubeconfig", "{bad", "-o", "{out}"],
])
def test_every_command_turns_malformed_input_into_one_line(tmp_path, monkeypatch, args):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: [Pod\n  - : :\n\t{{{")
    filled = [a.replace("{bad", str(bad)).replace("{lab}", str(EXAMPLES / "lab-solution")).replace("{out}", str(tmp_path / "o.json"))
              for a in args]
    if args[0] == "report" and args[1] == "[]":
        bad.write_text("[]")
        filled[1] = str(bad)
    result = run(*filled)
    assert result.exit_code == 2, (filled, result.output)
    one_line_error(result)


def test_a_replayed_inventory_and_a_saved_result_are_decoded_with_validation(tmp_path):
    from audit.sources.manifests import load_manifests
    from audit.sources.replay import dump_inventory

    saved = json.loads(dump_inventory(load_manifests([str(EXAMPLES / "lab-solution")])))
    saved["inventory"]["workloads"][0]["pods"] = "three"
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(saved))
    one_line_error(run("scan", "--inventory", str(path)), "inventory.workloads[0].pods", "expected int, got str")
    result = json.loads(run("scan", str(EXAMPLES / "lab-solution"), "-f", "json").output)
    result["summary"]["findings"] = ["not", "a", "map"]
    bad = tmp_path / "result.json"
    bad.write_text(json.dumps(result))
    one_line_error(run("report", str(bad), "--html", str(tmp_path / "r.html")), "summary.findings", "must be an object")
