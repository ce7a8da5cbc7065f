"""CronJob mode: rotation, the summary line, trend, metrics and the Pushgateway."""

from __future__ import annotations

import base64
import errno
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from audit.cli import app
from audit.ops import atomic, rotation
from audit.report.model import SCHEMA_VERSION
from tests.conftest import EXAMPLES

runner = CliRunner()


def scan(*args):
    return runner.invoke(app, ["scan", *args])


def run_at(path, directory, when, *extra):
    return scan(str(path), "--output-dir", str(directory), "--now", when, *extra)


def test_output_dir_writes_timestamped_and_latest_and_prints_one_line(tmp_path):
    out = tmp_path / "reports"
    result = run_at(EXAMPLES / "lab-before", out, "2026-11-24T02:17:00Z", "--formats", "json,html,txt")
    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    summary = json.loads(line)
    assert summary["verdict"] == "fail" and summary["defaultDenyIngress"] == 0 and summary["trend"] is None
    names = sorted(p.name for p in out.iterdir())
    assert names == ["latest.html", "latest.json", "latest.txt", "netpol-audit-20261124T021700Z.html",
                     "netpol-audit-20261124T021700Z.json", "netpol-audit-20261124T021700Z.txt"]
    assert summary["reports"] == [str(out / f"netpol-audit-20261124T021700Z.{ext}") for ext in ("json", "html", "txt")]
    assert (out / "latest.json").read_bytes() == (out / "netpol-audit-20261124T021700Z.json").read_bytes()


def test_keep_prunes_old_runs_and_same_second_runs_do_not_collide(tmp_path):
    out = tmp_path / "reports"
    for day in (20, 21, 22, 23):
        assert run_at(EXAMPLES / "lab-before", out, f"2026-11-{day}T02:00:00Z", "--formats", "json", "--keep", "2").exit_code == 0
    assert run_at(EXAMPLES / "lab-before", out, "2026-11-23T02:00:00Z", "--formats", "json", "--keep", "2").exit_code == 0
    runs = sorted(p.name for p in out.glob("netpol-audit-*"))
    assert runs == ["netpol-audit-20261123T020000Z-2.json", "netpol-audit-20261123T020000Z.json"]


def test_trend_against_the_previous_run(tmp_path):
    out = tmp_path / "reports"
    assert run_at(EXAMPLES / "lab-before", out, "2026-11-24T02:00:00Z", "--formats", "json").exit_code == 0
    # The next night, the lab's solution is applied.
    result = run_at(EXAMPLES / "lab-solution", out, "2026-11-25T02:00:00Z", "--formats", "json,html,txt")
    summary = json.loads(result.output)
    assert summary["trend"]["since"] == "2026-11-24T02:00:00Z"
    assert summary["trend"]["resolved"] > 0 and summary["trend"]["new"] == 0 and summary["trend"]["scoreDelta"] == 100
    data = json.loads((out / "latest.json").read_text())
    assert data["trend"]["defaultDenyIngressDelta"] == 3 and data["trend"]["podsIsolatedBothDelta"] == 3
    assert "Since 2026-11-24T02:00:00Z: 0 new" in (out / "latest.txt").read_text()
    assert "Since the previous run" in (out / "latest.html").read_text()


def test_trend_with_baseline_shows_new_findings_everywhere(tmp_path):
    base = tmp_path / "base.json"
    assert scan(str(EXAMPLES / "lab-solution"), "--json", str(base), "--now", "2026-11-24T00:00:00Z").exit_code == 0
    pdf = tmp_path / "r.pdf"
    result = scan(str(EXAMPLES / "lab-before"), "--baseline", str(base), "--pdf", str(pdf), "--now", "2026-11-25T00:00:00Z")
    assert result.exit_code == 0
    assert "new: NP-COV-001 [high] backend" in result.output
    import pypdf

    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(str(pdf)).pages).split())
    assert "Since the previous run (2026-11-24T00:00:00Z)" in text and "new" in text


def test_unwritable_directory_fails_before_scanning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_at(EXAMPLES / "lab-before", blocker / "reports", "2026-11-24T02:00:00Z")
    assert result.exit_code == 2 and "cannot create the report directory" in result.output
    assert "Traceback" not in result.output


def test_full_disk_leaves_no_half_written_report_and_keeps_latest(tmp_path, monkeypatch):
    out = tmp_path / "reports"
    assert run_at(EXAMPLES / "lab-before", out, "2026-11-24T02:00:00Z", "--formats", "json,html").exit_code == 0
    before = (out / "latest.json").read_bytes()
    real = atomic.os.fdopen
    calls = {"n": 0}

    def full_disk(fd, mode):
        calls["n"] += 1
        handle = real(fd, mode)
        if calls["n"] == 2:  # the second file of the run: the disk fills up
            original_write = handle.write

            def write(data):
                original_write(data[:10])
                raise OSError(errno.ENOSPC, "No space left on device")
            handle.write = write
        return handle

    monkeypatch.setattr(atomic.os, "fdopen", full_disk)
    result = run_at(EXAMPLES / "lab-solution", out, "2026-11-25T02:00:00Z", "--formats", "json,html")
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert (out / "latest.json").read_bytes() == before  # latest.* still the last complete run
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind
    assert not (out / "netpol-audit-20261125T020000Z.html").exists()


def test_metrics_file_parses_and_matches_the_result(tmp_path):
    metrics = tmp_path / "metrics.prom"
    result = tmp_path / "r.json"
    assert scan(str(EXAMPLES / "mixed-cluster"), "--metrics-file", str(metrics), "--json", str(result),
                "--now", "2026-11-26T00:00:00Z").exit_code == 0
    data = json.loads(result.read_text())
    samples = {}
    for family in text_string_to_metric_families(metrics.read_text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert samples[("netpol_audit_score", ())] == data["summary"]["score"]
    assert samples[("netpol_audit_scan_complete", ())] == 1
    assert samples[("netpol_audit_findings", (("severity", "high"),))] == data["summary"]["findings"]["high"]
    assert samples[("netpol_audit_namespace_default_deny", (("direction", "ingress"), ("namespace", "frontend")))] == 1
    assert samples[("netpol_audit_namespace_default_deny", (("direction", "egress"), ("namespace", "backend")))] == 0
    assert samples[("netpol_audit_namespace_pods_isolated_ratio", (("direction", "ingress"), ("namespace", "data")))] == 0.75
    assert samples[("netpol_audit_pods_unselected", (("direction", "egress"),))] == data["summary"]["pods"] - data["summary"]["podsIsolatedEgress"]
    assert samples[("netpol_audit_check_findings", (("check", "NP-PERM-008"),))] == 2
    assert samples[("netpol_audit_check_findings", (("check", "NP-CNI-001"),))] == 0
    assert samples[("netpol_audit_policies", (("kind", "NetworkPolicy"), ("state", "enforced")))] == 18
    assert samples[("netpol_audit_policies", (("kind", "NetworkPolicy"), ("state", "invalid")))] == 1
    assert samples[("netpol_audit_last_success_timestamp_seconds", ())] > 0
    assert ("netpol_audit_info", (("schema", SCHEMA_VERSION), ("source", "manifests"), ("version", data["tool"]["version"]))) in samples


def pushed(*args: str, env: dict[str, str] | None = None) -> list[tuple[str, str, str | None]]:
    """What a Pushgateway double received (path, body, Authorization) for one scan."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_PUT(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body.decode(), self.headers.get("Authorization")))
            self.send_response(200)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        result = runner.invoke(app, ["scan", *args, "--pushgateway", f"http://127.0.0.1:{server.server_address[1]}"], env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    return received


def test_pushgateway_receives_the_metrics_grouped_by_cluster_with_credentials(tmp_path):
    ((path, body, auth),) = pushed(str(EXAMPLES / "lab-solution"), "--cluster-name", "prod-eu-1")
    assert path == "/metrics/job/netpol-audit/cluster/prod-eu-1" and "netpol_audit_score 100.0" in body and auth is None
    ((path, _, auth),) = pushed(str(EXAMPLES / "lab-solution"), env={"NETPOL_AUDIT_PUSHGATEWAY_TOKEN": "s3cret"})
    assert path == "/metrics/job/netpol-audit/cluster/manifests" and auth == "Bearer s3cret"
    ((_, _, auth),) = pushed(str(EXAMPLES / "lab-solution"), env={"NETPOL_AUDIT_PUSHGATEWAY_USERNAME": "audit",
                                                                  "NETPOL_AUDIT_PUSHGATEWAY_PASSWORD": "pw"})
    assert auth == "Basic " + base64.b64encode(b"audit:pw").decode()


def test_unreachable_pushgateway_is_a_clear_error():
    result = scan(str(EXAMPLES / "lab-solution"), "--pushgateway", "http://127.0.0.1:9")
    assert result.exit_code == 2 and "pushgateway" in result.output and "Traceback" not in result.output


def test_bad_formats_are_rejected(tmp_path):
    result = run_at(EXAMPLES / "lab-before", tmp_path, "2026-11-24T02:00:00Z", "--formats", "json,docx")
    assert result.exit_code == 2 and "--formats" in result.output


def test_prune_ignores_foreign_files(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "latest.json").write_text("{}")
    for i in range(3):
        (tmp_path / f"netpol-audit-2026112{i}T000000Z.json").write_text("{}")
    removed = rotation.prune(tmp_path, 1)
    assert [p.name for p in removed] == ["netpol-audit-20261120T000000Z.json", "netpol-audit-20261121T000000Z.json"]
    assert (tmp_path / "notes.txt").exists() and (tmp_path / "latest.json").exists()
