"""deploy/ and the Dockerfile: valid manifests, least privilege, the CronJob's exact command, our own policies."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path

import pytest
import typer
import yaml

from audit.cli import app
from audit.engine.analysis import Analysis
from audit.sources.cluster import rbac_cluster_role
from audit.sources.manifests import load_manifests
from tests.conftest import ROOT, audit

DEPLOY = ROOT / "deploy"


def documents(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifests():
    return [(p.name, d) for p in sorted(DEPLOY.rglob("*.yaml")) if p.name != "kustomization.yaml" for d in documents(p)]


def cronjob():
    return next(d for _, d in manifests() if d["kind"] == "CronJob")


MINIMUM_KUBERNETES = "1.26"
"""The oldest Kubernetes deploy/ is for (podFailurePolicy is on by default from 1.26), stated in the README."""


@pytest.mark.parametrize("version", [f"1.{minor}.0" for minor in range(26, 34)])
def test_every_manifest_validates_against_the_kubernetes_schema(version):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for _name, doc in manifests():
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # the Prometheus Operator's CRD: checked with promtool below
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any error, naming the field


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == "netpol-audit"


def test_cluster_role_is_exactly_the_printed_one():
    (role,) = documents(DEPLOY / "clusterrole.yaml")
    assert role == rbac_cluster_role(), "run: python tools/make_clusterrole.py"
    assert (DEPLOY / "clusterrole.yaml").read_text(encoding="utf-8") == yaml.safe_dump(role, sort_keys=False)
    binding = documents(DEPLOY / "clusterrolebinding.yaml")[0]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "netpol-audit", "namespace": "netpol-audit"}]


def test_cronjob_args_parse_with_the_real_cli():
    job = cronjob()
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    root = typer.main.get_command(app)
    ctx = root.make_context("netpol-audit", list(args))
    sub_name, sub, rest = root.resolve_command(ctx, list(args))
    assert sub_name == "scan"
    sub_ctx = sub.make_context("scan", rest, parent=ctx)  # raises on an unknown option or a bad value
    params = sub_ctx.params
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[str(params["output_dir"])] == "reports"
    assert str(params["config"]).startswith("/etc/netpol-audit/") and mounts["/etc/netpol-audit"] == "config"
    assert str(params["metrics_file"]).startswith("/reports/")
    config_map = next(d for _, d in manifests() if d["kind"] == "ConfigMap")
    assert params["config"].name in config_map["data"]
    assert params["fail_on"].value == "high" and not params["paths"]


def test_config_map_config_is_valid():
    from audit.checks.catalogue import all_checks
    from audit.config import parse_config

    config_map = next(d for _, d in manifests() if d["kind"] == "ConfigMap")
    parse_config(yaml.safe_load(config_map["data"]["config.yaml"]), "configmap", {c.id for c in all_checks()})


def test_cronjob_is_restricted_and_well_behaved():
    spec = cronjob()["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0 and spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 0 and job["activeDeadlineSeconds"] > 0
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == "netpol-audit"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]


def test_deploy_passes_its_own_audit():
    report = audit("\n---\n".join((DEPLOY / n).read_text() for n in sorted(p.name for p in DEPLOY.glob("*.yaml")) if n != "kustomization.yaml"))
    assert [f.check for f in report.findings if f.status == "fail"] == ["NP-CNI-002"]  # only "CNI unknown" from manifests
    row = next(r for r in report.namespaces if r.name == "netpol-audit")
    assert row.default_deny_ingress and row.default_deny_egress


def test_auditor_egress_is_only_dns_and_the_api_server():
    inv = load_manifests([str(DEPLOY)])
    a = Analysis(inv)
    (auditor,) = a.find_workload("netpol-audit", "netpol-audit")
    dns = a.dns_classes[0]
    assert a.allowed(auditor, dns, 53, "UDP").allowed and a.allowed(auditor, dns, 53, "TCP").allowed
    assert a.allowed(auditor, ipaddress.ip_address("10.0.0.1"), 443).allowed
    assert a.allowed(auditor, ipaddress.ip_address("192.168.10.5"), 6443).allowed
    assert not a.allowed(auditor, ipaddress.ip_address("10.0.0.1"), 80).allowed
    assert not a.allowed(auditor, ipaddress.ip_address("203.0.113.5"), 443).allowed
    assert not a.allowed(auditor, ipaddress.ip_address("169.254.169.254"), 80).allowed
    assert not a.allowed(ipaddress.ip_address("10.1.1.1"), auditor, 8080).allowed  # nothing may connect to it


def test_dockerfile_mirrors_ci():
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M)
    assert froms and re.match(r"python:\d+\.\d+\.\d+-slim-\w+$", froms[0])  # pinned, never :latest
    assert re.search(r"^USER \d+:\d+$", text, re.M)
    final = text.split("\nFROM ${PYTHON_IMAGE}\n")[-1]
    assert not re.search(r"build-essential|gcc|g\+\+|\bmake\b", final)
    assert "apt-packages.txt" in final and "apt-packages.txt" in (ROOT / ".ci" / "run").read_text()
    assert "--no-index" in final and "requirements.lock" in text
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    locked = {line.split("==")[0].lower().replace("_", "-") for line in (ROOT / "requirements.lock").read_text().splitlines()
              if line and not line.startswith("#")}
    for dep in runtime:
        name = re.split(r"[<>=\[ ]", dep)[0].lower().replace("_", "-")
        assert name in locked, f"{name} is not pinned in requirements.lock"
    ignore = (ROOT / ".dockerignore").read_text()
    assert ignore.startswith("*") and "!audit/" in ignore and "!templates/" in ignore


def exported_metrics() -> set[str]:
    """The metric names a scan exports (read from a real metrics file, not from a list here)."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.prom"
        subprocess.run([sys.executable, "-m", "audit", "scan", str(ROOT / "examples" / "mixed-cluster"), "--metrics-file", str(out)],
                       check=False, capture_output=True)
        return set(re.findall(r"^# TYPE (\S+) ", out.read_text(), re.M))


def test_dashboard_and_alerts_query_only_what_the_audit_exports(tmp_path):
    import json
    import shutil
    import subprocess

    metrics = exported_metrics()
    assert "netpol_audit_score" in metrics
    dashboard = json.loads((ROOT / "deploy" / "extras" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((ROOT / "deploy" / "extras" / "prometheus-rules.yaml").read_text())
    assert rules["kind"] == "PrometheusRule"
    alerts = [r for g in rules["spec"]["groups"] for r in g["rules"]]
    exprs += [r["expr"] for r in alerts]
    for expr in exprs:
        used = set(re.findall(r"\b(netpol_audit_[a-z_]+)", expr))
        assert used and used <= metrics, (expr, used - metrics)
    assert {a["alert"] for a in alerts} >= {"NetpolAuditStale", "NetpolAuditIncomplete", "NetpolAuditCriticalFindings"}
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by .ci/run (Debian's prometheus package)"
    plain = tmp_path / "rules.yaml"
    plain.write_text(yaml.safe_dump({"groups": rules["spec"]["groups"]}))
    checked = subprocess.run([promtool, "check", "rules", str(plain)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The staleness alert fires on a cluster whose last complete scan is three days old, and only then.
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({
        "rule_files": [str(plain)], "evaluation_interval": "1m",
        "tests": [{"interval": "1m",  # samples every minute: Prometheus looks back only 5 minutes for one
                   "input_series": [{"series": 'netpol_audit_last_success_timestamp_seconds{cluster="a"}', "values": "0x5000"},
                                    {"series": 'netpol_audit_last_success_timestamp_seconds{cluster="b"}', "values": "0+60x5000"}],
                   "alert_rule_test": [{"eval_time": "72h", "alertname": "NetpolAuditStale",
                                        "exp_alerts": [{"exp_labels": {"severity": "warning", "cluster": "a"},
                                                        "exp_annotations": {"summary": "netpol-audit has not completed a scan of a for more than two days"}}]}]}]}))
    tested = subprocess.run([promtool, "test", "rules", str(tmp_path / "test.yaml")], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


PUSHGATEWAY = """
apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: v1
kind: Pod
metadata: {name: prometheus-pushgateway-0, namespace: monitoring, labels: {app.kubernetes.io/name: prometheus-pushgateway}}
spec: {containers: [{name: gw, image: prom/pushgateway, ports: [{containerPort: 9091}]}]}
"""


def test_the_pushgateway_path_opens_exactly_port_9091_to_the_gateway(tmp_path):
    (tmp_path / "gw.yaml").write_text(PUSHGATEWAY)
    top = [str(p) for p in sorted(DEPLOY.glob("*.yaml")) if p.name != "kustomization.yaml"]
    for extra, reachable in (([], False), ([str(DEPLOY / "extras" / "pushgateway-egress.yaml")], True)):
        a = Analysis(load_manifests(top + extra + [str(tmp_path / "gw.yaml")]))
        (auditor,) = a.find_workload("netpol-audit", "netpol-audit")
        (gateway,) = a.find_workload("monitoring", "prometheus-pushgateway-0")
        assert a.allowed(auditor, gateway, 9091).allowed is reachable
        assert not a.allowed(auditor, gateway, 80).allowed
