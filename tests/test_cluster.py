"""The live source against an API-server double, with the real kubernetes client."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.sources.cluster import ConnectOptions, collect, rbac_cluster_role, resources
from audit.sources.objects import TEMPLATE_KINDS
from tests.apiserver import HOSTILE, ApiDouble, Faults, kubeconfig, request_attributes
from tests.conftest import EXAMPLES

runner = CliRunner()
NOW = ["--now", "2026-11-26T00:00:00Z"]
POD_KINDS = {"Namespace", "Pod", "NetworkPolicy", "DaemonSet"}


def cluster_objects() -> list[dict]:
    """The mixed-cluster example as a live cluster would serve it: templates become running pods."""
    docs = []
    for path in sorted((EXAMPLES / "mixed-cluster").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    out = []
    for obj in docs:
        kind, meta = obj["kind"], obj["metadata"]
        ns = meta.get("namespace", "default")
        if kind in POD_KINDS:
            out.append(obj)
        if kind not in TEMPLATE_KINDS:
            continue
        path, count_field = TEMPLATE_KINDS[kind]
        template = obj
        for key in path:
            template = template[key]
        replicas = obj["spec"].get(count_field, 1) if count_field else 1
        for i in range(replicas):
            labels = dict(template["metadata"].get("labels", {}))
            if kind == "Deployment":
                labels["pod-template-hash"] = "7f9c6"
                owner = {"kind": "ReplicaSet", "name": f"{meta['name']}-7f9c6"}
            elif kind == "CronJob":
                owner = {"kind": "CronJob", "name": meta["name"]}
            else:
                owner = {"kind": kind, "name": meta["name"]}
            out.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{meta['name']}-{i}", "namespace": ns, "labels": labels,
                             "ownerReferences": [{**owner, "apiVersion": "apps/v1", "controller": True, "uid": "u"}]},
                "spec": copy.deepcopy(template["spec"]),
                "status": {"phase": "Running", "podIP": f"10.244.{len(out) % 250}.{i + 1}"},
            })
    first_pod = next(o for o in out if o["kind"] == "Pod")
    first_pod["spec"]["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": "s3cr3t-value"}]
    out.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "annotations": {"projectcalico.org/IPv4Address": "10.0.0.5/24"}}})
    return out


@pytest.fixture
def objects() -> list[dict]:
    return cluster_objects()


@pytest.fixture
def kubeconfig_file(tmp_path):
    def write(url: str, **kwargs) -> str:
        path = tmp_path / "kubeconfig"
        path.write_text(kubeconfig(url, **kwargs))
        return str(path)
    return write


@pytest.fixture(autouse=True)
def no_ambient_cluster(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def scan(*args):
    return runner.invoke(app, ["scan", *args, *NOW])


def comparable(report_json: str) -> dict:
    """The analysis part of a result: what must not depend on the source."""
    data = json.loads(report_json)
    for key in ("scan", "generatedAt"):
        data.pop(key)
    # Where the inventory came from (files and their digests, completeness in the source's words).
    data["evidence"].pop("inputFiles")
    data["evidence"].pop("completeness")
    for row in data["policies"] + data["namespaces"]:
        row["source"] = None
    for f in data["findings"]:
        f["source"] = None
    return data


def test_live_scan_matches_manifest_dump_and_replay(objects, kubeconfig_file, tmp_path):
    dump = tmp_path / "dump.yaml"
    dump.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [o for o in objects if o["kind"] != "Node"]}))
    with ApiDouble(objects, token="test-token") as api:
        kc = kubeconfig_file(api.url)
        live = scan("--kubeconfig", kc, "-f", "json", "--page-size", "3")
        assert live.exit_code == 0, live.output
        saved = tmp_path / "inventory.json"
        collected = runner.invoke(app, ["collect", "--kubeconfig", kc, "-o", str(saved)])
        assert collected.exit_code == 0, collected.output
    manifests = scan(str(dump), "-f", "json")
    replay = scan("--inventory", str(saved), "-f", "json")
    assert manifests.exit_code == replay.exit_code == 0
    assert comparable(live.output) == comparable(manifests.output) == comparable(replay.output)
    data = json.loads(live.output)
    assert data["scan"]["source"] == "cluster" and data["scan"]["complete"] is True
    assert data["cni"]["verdict"] == "enforced"
    assert json.loads(replay.output)["scan"]["source"] == "inventory"
    assert "s3cr3t-value" not in saved.read_text()  # the inventory keeps no environment (secrets)


def test_identity_paging_and_counts(objects, kubeconfig_file):
    with ApiDouble(objects, token="test-token") as api:
        inv = collect(ConnectOptions(kubeconfig=kubeconfig_file(api.url), context="other", page_size=4, cluster_name="prod-eu"))
        pod_requests = [r for r in api.requests if r.path == "/api/v1/pods"]
    col = inv.collection
    pods = sum(1 for o in objects if o["kind"] == "Pod")
    assert (col.context, col.cluster, col.server, col.server_version) == ("other", "prod-eu", api.url, "v1.31.2")
    assert dict(col.object_counts)["Pod"] == pods
    assert len(pod_requests) == -(-pods // 4) and all(r.query["limit"] == ["4"] for r in pod_requests)
    assert "continue" in pod_requests[1].query and "continue" not in pod_requests[0].query
    assert col.api_requests == len(api.requests) and col.started <= col.finished
    assert inv.node_hints == ("projectcalico.org",)


def test_forbidden_pods_make_the_scan_incomplete(objects, kubeconfig_file, tmp_path):
    with ApiDouble(objects, token="test-token", faults=Faults(forbidden={"/api/v1/pods"})) as api:
        kc = kubeconfig_file(api.url)
        result = scan("--kubeconfig", kc)
        partial = scan("--kubeconfig", kc, "--allow-partial", "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 4
    assert "INCOMPLETE SCAN" in result.output and "pods: forbidden (403)" in result.output
    assert "No findings" not in result.output
    assert partial.exit_code == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["scan"]["complete"] is False and data["summary"]["verdict"] == "incomplete"
    assert {c["status"] for c in data["controls"]} <= {"fail", "not-assessable", "manual"}


def test_a_live_object_the_audit_cannot_read_is_left_out_and_the_scan_incomplete(objects, kubeconfig_file, tmp_path):
    """A served object whose field the audit rejects is a collection issue naming it (exit 4, as for
    any unread resource): never dropped silently, never the end of the run."""
    with ApiDouble(objects, token="test-token") as api:
        scan("--kubeconfig", kubeconfig_file(api.url), "--json", str(tmp_path / "clean.json"))
    bad = next(o for o in objects if o["kind"] == "Pod" and not o["metadata"]["namespace"].startswith("kube-"))
    bad["spec"]["containers"][0]["ports"] = [{"containerPort": 70000}]
    with ApiDouble(objects, token="test-token") as api:
        result = scan("--kubeconfig", kubeconfig_file(api.url), "--json", str(tmp_path / "r.json"))
    clean = json.loads((tmp_path / "clean.json").read_text())
    assert result.exit_code == 4, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    [issue] = data["scan"]["issues"]
    assert issue["invalid"] is True and issue["resource"] == f"Pod {bad['metadata']['namespace']}/{bad['metadata']['name']}"
    assert "containerPort" in issue["reason"] and data["summary"]["pods"] == clean["summary"]["pods"] - 1


def test_the_scanner_names_itself_in_the_api_audit_log(objects, kubeconfig_file):
    from audit import __version__

    with ApiDouble(objects, token="test-token") as api:
        assert scan("--kubeconfig", kubeconfig_file(api.url)).exit_code == 0
    agents = {r.user_agent for r in api.requests}
    assert agents == {f"netpol-audit/{__version__}"}, agents


def test_absent_optional_groups_are_not_installed(objects, kubeconfig_file):
    with ApiDouble(objects, token="test-token", groups={"networking.k8s.io", "apps"}) as api:
        inv = collect(ConnectOptions(kubeconfig=kubeconfig_file(api.url)))
    assert inv.collection.complete
    assert "ciliumnetworkpolicies.cilium.io: not installed" in inv.collection.notices


def test_extended_kinds_are_read_when_served(objects, kubeconfig_file):
    extra = [
        {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "deny-metadata"},
         "spec": {"priority": 10, "subject": {"namespaces": {}}}},
        {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "l7", "namespace": "frontend"},
         "spec": {"endpointSelector": {}}},
        {"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkPolicy", "metadata": {"name": "g"}, "spec": {"order": 1}},
    ]
    groups = {"networking.k8s.io", "apps", "policy.networking.k8s.io", "cilium.io", "crd.projectcalico.org"}
    with ApiDouble(objects + extra, token="test-token", groups=groups) as api:
        inv = collect(ConnectOptions(kubeconfig=kubeconfig_file(api.url)))
        paths = {r.path for r in api.requests}
    others = [p for p in inv.policies if p.api_version != "networking.k8s.io/v1"]
    assert sorted(e.kind for e in others) == ["AdminNetworkPolicy", "CiliumNetworkPolicy", "GlobalNetworkPolicy"]
    assert "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies" in paths
    # Calico's NetworkPolicy is kept apart from Kubernetes' by its group.
    assert len(inv.policies) - len(others) == sum(1 for o in objects if o["kind"] == "NetworkPolicy")


def test_expired_continue_token_restarts_the_list_once(objects, kubeconfig_file):
    with ApiDouble(objects, token="test-token", faults=Faults(gone_after_first_page={"/api/v1/pods"})) as api:
        inv = collect(ConnectOptions(kubeconfig=kubeconfig_file(api.url), page_size=5))
    assert inv.collection.complete
    assert any("410 Gone" in n for n in inv.collection.notices)
    assert sum(w.pods for w in inv.workloads) == sum(1 for o in objects if o["kind"] == "Pod")


@pytest.mark.parametrize("status", [500, 429])
def test_server_errors_are_retried(objects, kubeconfig_file, status):
    slept = []
    with ApiDouble(objects, token="test-token", faults=Faults(fail_once={"/apis/apps/v1/daemonsets": status})) as api:
        inv = collect(ConnectOptions(kubeconfig=kubeconfig_file(api.url)), sleep=slept.append)
        ds_requests = [r for r in api.requests if r.path == "/apis/apps/v1/daemonsets"]
    assert inv.collection.complete and len(ds_requests) == 2 and len(slept) == 1
    if status == 429:
        assert slept == [0.0]  # Retry-After: 0 honoured


def test_slow_responses_time_out_and_are_reported(objects, kubeconfig_file):
    opts = ConnectOptions(request_timeout=0.3, max_attempts=2, backoff_base=0)
    with ApiDouble(objects, token="test-token", faults=Faults(slow={"/apis/networking.k8s.io/v1/networkpolicies": 1.0})) as api:
        opts.kubeconfig = kubeconfig_file(api.url)
        inv = collect(opts, sleep=lambda s: None)
    (issue,) = inv.collection.issues
    assert issue.resource == "networkpolicies.networking.k8s.io" and "timed out" in issue.reason and issue.core
    assert not inv.collection.complete


def test_in_cluster_configuration(objects, tmp_path, monkeypatch):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("sa-token")
    ca.cert_pem.write_to_path(str(sa / "ca.crt"))
    key_file, chain_file = tmp_path / "key.pem", tmp_path / "chain.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(chain_file))
    with ApiDouble(objects, token="sa-token", tls=(str(chain_file), str(key_file))) as api:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
        monkeypatch.setenv("NETPOL_AUDIT_SERVICE_ACCOUNT_DIR", str(sa))
        result = scan("-f", "json")
        auth = {r.authorization for r in api.requests}
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["scan"]["context"] == "in-cluster" and data["scan"]["server"].startswith("https://127.0.0.1:")
    assert auth == {"bearer sa-token"}  # the token file, sent by the client's in-cluster loader


@pytest.mark.parametrize("case,expected", [
    ("bad-token", "rejected the credentials (401"),
    ("unreachable", "cannot reach the API server"),
    ("no-kubeconfig", "no kubeconfig at"),
    ("unknown-context", "no context named 'nope'"),
])
def test_connection_errors_are_one_line_exit_3(objects, kubeconfig_file, case, expected):
    with ApiDouble(objects, token="right-token") as api:
        url = api.url
        args = ["--kubeconfig", kubeconfig_file(url, token="wrong-token")]
        if case == "unreachable":
            args = ["--kubeconfig", kubeconfig_file("http://127.0.0.1:9", token="x")]
        elif case == "no-kubeconfig":
            args = []
        elif case == "unknown-context":
            args = ["--kubeconfig", kubeconfig_file(url, token="right-token"), "--context", "nope"]
        result = scan(*args)
    assert result.exit_code == 3, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_scanner_requests_stay_inside_its_printed_role(objects, kubeconfig_file):
    role = yaml.safe_load(runner.invoke(app, ["rbac"]).output)
    assert role == rbac_cluster_role()
    assert {v for rule in role["rules"] for v in rule["verbs"]} == {"get", "list"}
    # Settings objects are granted by name, get only.
    named = [rule for rule in role["rules"] if rule.get("resourceNames")]
    assert named and all(rule["verbs"] == ["get"] for rule in named)
    assert {(g, r) for rule in named for g in rule["apiGroups"] for r in rule["resources"]} == {
        ("", "configmaps"), ("apps", "deployments"), ("operator.tigera.io", "installations")}
    groups = {"networking.k8s.io", "apps", "policy.networking.k8s.io", "cilium.io", "crd.projectcalico.org", "route.openshift.io",
              "operator.tigera.io"}
    cni = [_daemonset("cilium", "quay.io/cilium/cilium:v1.16.3"), _daemonset("kube-ovn-cni", "docker.io/kubeovn/kube-ovn:v1.14.0"),
           _configmap("cilium-config", {"enable-policy": "default"}), _configmap("unrelated", {"password": "x"}),
           _daemonset("kube-ovn-controller", "docker.io/kubeovn/kube-ovn:v1.14.0", kind="Deployment", args=["--enable-anp=true"])]
    with ApiDouble(objects + cni, token="test-token", groups=groups, role=role) as api:
        result = scan("--kubeconfig", kubeconfig_file(api.url), "-f", "json")
        requests = list(api.requests)
    # The double answers 403 to anything the role does not allow: the scanner asked for nothing else.
    assert api.denied == [], api.denied
    assert result.exit_code == 0, result.output
    assert all(r.method == "GET" for r in requests)
    attributes = [a for r in requests if (a := request_attributes(r.path)) is not None]
    used = {(group, resource) for _verb, group, resource, _name, _ns in attributes}
    allowed = {(group, res) for rule in role["rules"] for group in rule["apiGroups"] for res in rule["resources"]}
    # It asks for nothing it does not use (Calico's CRDs are skipped when its v3 API is served).
    assert used == allowed - {("projectcalico.org", "networkpolicies"), ("projectcalico.org", "globalnetworkpolicies"),
                              ("projectcalico.org", "tiers")}
    assert {(res.group, res.name) for res in resources()} == {(g, r) for g, r in allowed if (g, r) not in {
        ("", "configmaps"), ("apps", "deployments"), ("operator.tigera.io", "installations")}}
    # Settings were read by name, where the CNIs keep them; no other ConfigMap was asked for.
    gets = {r.path for r in requests if "configmaps" in r.path or "deployments" in r.path or "installations" in r.path}
    assert gets == {"/api/v1/namespaces/kube-system/configmaps/cilium-config", "/apis/apps/v1/namespaces/kube-system/deployments/kube-ovn-controller",
                    "/apis/operator.tigera.io/v1/installations/default"}
    data = json.loads(result.output)
    settings = {s for c in data["cni"]["components"] for s in c["settings"]}
    assert "kube-system/cilium-config enable-policy=default" in settings
    assert "kube-system/Deployment kube-ovn-controller container kube-ovn-controller --enable-anp=true" in settings


def test_rbac_is_valid_kubernetes_yaml():
    out = runner.invoke(app, ["rbac", "--name", "auditor"])
    role = yaml.safe_load(out.output)
    assert role["kind"] == "ClusterRole" and role["metadata"]["name"] == "auditor"
    assert all(set(rule) in ({"apiGroups", "resources", "verbs"}, {"apiGroups", "resources", "resourceNames", "verbs"})
               for rule in role["rules"])
    assert all(rule["verbs"] == ["get"] for rule in role["rules"] if "resourceNames" in rule)


def _daemonset(name: str, image: str, kind: str = "DaemonSet", args: list[str] | None = None, env: dict[str, str] | None = None,
               namespace: str = "kube-system") -> dict:
    container: dict = {"name": name, "image": image, **({"args": args} if args else {}),
                       **({"env": [{"name": k, "value": v} for k, v in env.items()]} if env else {})}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}},
                                                                             "spec": {"hostNetwork": True, "containers": [container]}}}}


def _configmap(name: str, data: dict[str, str], namespace: str = "kube-system") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def test_dataclass_round_trip_of_inventory(objects, kubeconfig_file, tmp_path):
    from audit.sources.replay import dump_inventory, load_inventory

    with ApiDouble(objects, token="test-token") as api:
        inv = collect(ConnectOptions(kubeconfig=kubeconfig_file(api.url)))
    path = tmp_path / "inv.json"
    path.write_text(dump_inventory(inv))
    again = load_inventory(str(path))
    assert dataclasses.replace(again, collection=inv.collection) == inv


def _legacy(inventory: dict, keys: dict[str, str]) -> dict:
    """An inventory as versions 1 and 2 wrote it: NetworkPolicies apart (no kind, no apiVersion), the other kinds under `extended`."""
    policies = [p for p in inventory["policies"] if p[keys["api"]] == "networking.k8s.io/v1"]
    extended = [p for p in inventory["policies"] if p[keys["api"]] != "networking.k8s.io/v1"]
    for p in policies:
        del p["kind"], p[keys["api"]]
    for p in policies + extended:
        p.pop("more")
    return {**inventory, "policies": policies, "extended": [{k: v for k, v in p.items() if k != "annotations"} for p in extended]}


def test_an_inventory_saved_by_version_1_or_2_is_still_read(objects, kubeconfig_file, tmp_path):
    """Version 1 wrote camelCase keys (audit.serde); version 2 field names via msgspec, both with
    NetworkPolicies apart from the other kinds; version 3 keeps every kind in one list."""
    import json

    from audit.serde import to_jsonable
    from audit.sources.replay import VERSION, dump_inventory, load_inventory

    cilium = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "c", "namespace": "frontend"},
              "spec": {"endpointSelector": {}}}
    with ApiDouble([*objects, cilium], token="test-token", groups={"networking.k8s.io", "apps", "cilium.io"}) as api:
        inv = collect(ConnectOptions(kubeconfig=kubeconfig_file(api.url)))
    assert {p.kind for p in inv.policies} == {"NetworkPolicy", "CiliumNetworkPolicy"}
    v1, v2, v3 = tmp_path / "v1.json", tmp_path / "v2.json", tmp_path / "v3.json"
    v1.write_text(json.dumps({"kind": "NetpolAuditInventory", "version": 1,
                              "inventory": _legacy(to_jsonable(inv), {"api": "apiVersion"})}))
    v3.write_text(dump_inventory(inv))
    v2.write_text(json.dumps({"kind": "NetpolAuditInventory", "version": 2,
                              "inventory": _legacy(json.loads(v3.read_text())["inventory"], {"api": "api_version"})}))
    assert VERSION == 3 and json.loads(v3.read_text())["version"] == 3 and "host_network" in v3.read_text()
    assert "extended" in v2.read_text() and "extended" not in v3.read_text()
    for path in (v1, v2, v3):
        loaded = load_inventory(str(path))
        by_identity = tuple(sorted(loaded.policies, key=lambda p: p.identity))  # legacy files list NetworkPolicies first
        assert dataclasses.replace(loaded, collection=inv.collection, policies=by_identity) == dataclasses.replace(
            inv, policies=tuple(sorted(inv.policies, key=lambda p: p.identity))), path.name
    bad = tmp_path / "v1-bad.json"
    saved = json.loads(v1.read_text())
    saved["inventory"]["workloads"][0]["pods"] = "three"
    bad.write_text(json.dumps(saved))
    result = scan("--inventory", str(bad))
    assert result.exit_code == 2 and "inventory.workloads[0].pods: must be an integer" in result.output


def test_bad_inventory_files_are_input_errors(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"kind": "Something"}')
    result = scan("--inventory", str(bad))
    assert result.exit_code == 2 and "not a saved inventory" in result.output
    assert scan("--inventory", str(bad), str(Path(EXAMPLES / "lab-before"))).exit_code == 2


def test_continue_token_is_read_off_the_page_bytes():
    from audit.sources.cluster import _UNKNOWN, peek_continue

    assert peek_continue(b'{"kind":"PodList","metadata":{"resourceVersion":"9","continue":"eyJ2IjoxfQ=="},"items":[]}') == "eyJ2IjoxfQ=="
    assert peek_continue(b'{"kind": "PodList", "metadata": {"continue": "abc"}, "items": []}') == "abc"
    assert peek_continue(b'{"kind":"PodList","metadata":{"resourceVersion":"9"},"items":[{"metadata":{"annotations":{"x":"\\"continue\\":\\"no\\""}}}]}') is None
    assert peek_continue(b'{"kind":"PodList","items":[],"metadata":{"continue":"late"}}') is _UNKNOWN


def test_a_wrong_peek_costs_a_request_not_a_page(objects, kubeconfig_file, monkeypatch):
    from audit.sources import cluster

    monkeypatch.setattr(cluster, "peek_continue", lambda body: "bm90LWEtdG9rZW4=")  # a token the server never issued
    with ApiDouble(objects, token="test-token") as api:
        inv = collect(ConnectOptions(kubeconfig=kubeconfig_file(api.url), page_size=4))
    assert dict(inv.collection.object_counts)["Pod"] == sum(1 for o in objects if o["kind"] == "Pod")
    assert not inv.collection.issues


NPAPI = "policy.networking.k8s.io"
ANP_V1A1 = {"apiVersion": f"{NPAPI}/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "deny-metadata"},
            "spec": {"priority": 10, "subject": {"namespaces": {}}, "egress": [
                {"action": "Deny", "to": [{"networks": ["169.254.169.254/32"]}]}]}}
CNP_V1A2 = {"apiVersion": f"{NPAPI}/v1alpha2", "kind": "ClusterNetworkPolicy", "metadata": {"name": "baseline-deny"},
            "spec": {"tier": "Baseline", "priority": 0, "subject": {"namespaces": {}}, "ingress": [
                {"action": "Deny", "from": [{"namespaces": {}}]}]}}


def _live_inventory(objects: list[dict], **double) -> tuple:
    from audit.sources.cluster import ConnectOptions, collect
    with ApiDouble(objects, token="t", **double) as api:
        import tempfile

        from tests.apiserver import kubeconfig as make_kubeconfig
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
            fh.write(make_kubeconfig(api.url, token="t"))
        inv = collect(ConnectOptions(kubeconfig=fh.name))
        return inv, list(api.requests)


def test_live_scan_reads_anp_v1alpha1_and_cluster_network_policy_v1alpha2_side_by_side():
    groups = {"networking.k8s.io", "apps", NPAPI}
    # The group's preferred version is v1alpha2, which has no adminnetworkpolicies: each
    # resource must be found at the version that serves it.
    inv, requests = _live_inventory(cluster_objects() + [ANP_V1A1, CNP_V1A2], groups=groups,
                                    versions={NPAPI: ["v1alpha2", "v1alpha1"]})
    kinds = sorted((e.kind, e.api_version) for e in inv.policies if e.api_version != "networking.k8s.io/v1")
    assert kinds == [("AdminNetworkPolicy", f"{NPAPI}/v1alpha1"), ("ClusterNetworkPolicy", f"{NPAPI}/v1alpha2")]
    assert inv.collection.complete and not inv.collection.issues
    paths = {r.path for r in requests}
    assert f"/apis/{NPAPI}/v1alpha1/adminnetworkpolicies" in paths and f"/apis/{NPAPI}/v1alpha2/clusternetworkpolicies" in paths
    assert f"/apis/{NPAPI}/v1alpha2/adminnetworkpolicies" not in paths  # never asked where discovery says it is not


def test_a_group_serving_only_unknown_versions_is_a_collection_issue_not_absence():
    later = {**CNP_V1A2, "apiVersion": f"{NPAPI}/v1beta9"}
    from tests import apiserver
    key = (NPAPI, "v1beta9", "clusternetworkpolicies")
    apiserver.COLLECTIONS[key] = ("ClusterNetworkPolicy", False)
    apiserver.COLLECTIONS_BY_PATH[apiserver.collection_path(*key)] = "ClusterNetworkPolicy"
    try:
        inv, _ = _live_inventory(cluster_objects() + [later], groups={"networking.k8s.io", "apps", NPAPI},
                                 versions={NPAPI: ["v1beta9"]})
    finally:
        del apiserver.COLLECTIONS[key]
        del apiserver.COLLECTIONS_BY_PATH[apiserver.collection_path(*key)]
    issue = next(i for i in inv.collection.issues if i.resource == f"clusternetworkpolicies.{NPAPI}")
    assert "v1beta9" in issue.reason and "not read" in issue.reason
    assert not inv.collection.complete
    assert f"adminnetworkpolicies.{NPAPI}: not installed" in inv.collection.notices  # that one really is absent


def test_unreadable_discovery_of_a_version_is_a_collection_issue():
    faults = Faults(forbidden={f"/apis/{NPAPI}/v1alpha1"})
    inv, _ = _live_inventory(cluster_objects() + [ANP_V1A1], groups={"networking.k8s.io", "apps", NPAPI}, faults=faults,
                             versions={NPAPI: ["v1alpha1"]})
    issue = next(i for i in inv.collection.issues if i.resource == f"adminnetworkpolicies.{NPAPI}")
    assert "discovery" in issue.reason and "unknown" in issue.reason
    assert not inv.collection.complete


@pytest.mark.parametrize("scenario", HOSTILE)
@pytest.mark.parametrize("path", ["/api/v1/pods", "/apis/networking.k8s.io/v1/networkpolicies"])
def test_a_hostile_list_is_a_collection_issue_never_a_pass(objects, kubeconfig_file, tmp_path, scenario, path):
    """Malformed, looping and drip-fed lists end INCOMPLETE (exit 4) within the deadline; no traceback, no score."""
    import time as clock
    with ApiDouble(objects, token="test-token", faults=Faults(hostile={path: scenario})) as api:
        started = clock.monotonic()
        out = tmp_path / "result.json"
        result = scan("--kubeconfig", kubeconfig_file(api.url), "--request-timeout", "1", "-f", "json", "-o", str(out))
        took = clock.monotonic() - started
    assert result.exit_code == 4, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    data = json.loads(out.read_text())
    assert data["scan"]["complete"] is False and data["summary"]["verdict"] == "incomplete"
    issue = next(i for i in data["scan"]["issues"] if path.rsplit("/", 1)[1] in i["resource"])
    assert issue["core"] and issue["reason"]
    assert took < 60


def test_kubeconfig_lists_are_merged_as_kubectl_merges_them(objects, tmp_path, monkeypatch):
    """KUBECONFIG=a:b: a context defined only in b is found; a missing file in the list is skipped."""
    with ApiDouble(objects, token="test-token") as api:
        first = tmp_path / "first"
        first.write_text(kubeconfig("http://127.0.0.1:9", context="elsewhere"))
        second = tmp_path / "second"
        second.write_text(kubeconfig(api.url, context="lab"))
        monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), str(first), str(second)]))
        result = scan("--context", "lab", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scan"]["context"] == "lab"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    gone = scan()
    assert gone.exit_code == 3 and "no kubeconfig at" in gone.output


def test_a_namespace_scoped_scan_asks_only_for_what_a_role_allows(objects, kubeconfig_file, tmp_path):
    """-n data -n frontend: namespaced lists per namespace, the Namespaces by get; the cluster-wide
    lists a namespaced Role refuses are never asked for, and the scope is said."""
    cluster_wide = {"/api/v1/pods", "/api/v1/namespaces", "/api/v1/services", "/apis/networking.k8s.io/v1/networkpolicies",
                    "/apis/apps/v1/daemonsets", "/apis/networking.k8s.io/v1/ingresses"}
    with ApiDouble(objects, token="test-token", faults=Faults(forbidden=set(cluster_wide))) as api:
        result = scan("--kubeconfig", kubeconfig_file(api.url), "-n", "data", "-n", "frontend", "-f", "json")
    assert result.exit_code in (0, 1), result.output
    asked = {r.path for r in api.requests}
    assert not asked & cluster_wide, asked & cluster_wide
    assert {"/api/v1/namespaces/data/pods", "/api/v1/namespaces/frontend/pods", "/api/v1/namespaces/data",
            "/apis/networking.k8s.io/v1/namespaces/data/networkpolicies"} <= asked
    data = json.loads(result.stdout)
    assert data["scan"]["complete"] is True
    assert {n["name"] for n in data["namespaces"] if not n["excluded"]} == {"data", "frontend"}
    assert any(n.startswith("scoped to the namespaces data, frontend") for n in data["scan"]["notices"])
    pods = {r.path: r for r in api.requests}
    assert all(p.startswith(("/api/v1/namespaces/data", "/api/v1/namespaces/frontend")) for p in pods if "/pods" in p)
    # Every namespaced request is one the printed Roles allow.
    roles = yaml.safe_load_all(runner.invoke(app, ["rbac", "-n", "data", "-n", "frontend"]).stdout)
    allowed = {(role["metadata"]["namespace"], group, resource) for role in roles for rule in role["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]}
    for path in asked:
        found = re.match(r"^/(?:api/v1|apis/([^/]+)/[^/]+)/namespaces/([^/]+)(?:/([^/]+))?$", path)
        if found:
            group, ns, resource = found.group(1) or "", found.group(2), found.group(3) or "namespaces"
            assert (ns, group, resource) in allowed, path
