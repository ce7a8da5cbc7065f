"""Enforcement judged from each CNI's own settings and version: every setting through `scan`, from
manifests and from the API double with only the permissions `rbac` prints; what each verdict does
to the controls, the evidence line that names the setting, and what `enable-policy: always`
changes in reach, connectivity, coverage and verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.engine.analysis import Analysis
from audit.engine.cni import detect_cni
from audit.engine.cni.reading import arg_value, go_bool
from audit.engine.cni.versions import image_version, in_range, parse_version
from audit.inventory import Container
from audit.sources.cluster import rbac_cluster_role
from tests.apiserver import ApiDouble, kubeconfig
from tests.conftest import inventory

runner = CliRunner()
NOW = ["--now", "2026-12-01T00:00:00Z"]
GROUPS = {"networking.k8s.io", "apps", "policy.networking.k8s.io", "cilium.io", "operator.tigera.io"}


def ns(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}}


def pod(namespace: str, name: str, app_label: str, ip: str, port: int = 8080) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": {"app": app_label}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ip}}


def daemonset(name: str, image: str, *, container: str | None = None, args: list[str] | None = None, env: dict[str, str] | None = None,
              namespace: str = "kube-system", kind: str = "DaemonSet", extra: list[dict] | None = None) -> dict:
    main: dict = {"name": container or name, "image": image}
    if args:
        main["args"] = args
    if env:
        main["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}}, "spec": {"hostNetwork": True, "containers": [main, *(extra or [])]}}}}


def configmap(name: str, data: dict[str, str], namespace: str = "kube-system") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def installation(version: str | None = None, variant: str = "Calico") -> dict:
    obj: dict = {"apiVersion": "operator.tigera.io/v1", "kind": "Installation", "metadata": {"name": "default"},
                 "spec": {"variant": variant}}
    if version:
        obj["status"] = {"variant": variant, "calicoVersion": version}
    return obj


# prod: api accepts web on 8080 (a NetworkPolicy); other/client has no policy at all.
BASE = [ns("prod"), ns("other"), pod("prod", "web-0", "web", "10.0.0.10"), pod("prod", "api-0", "api", "10.0.0.11"),
        pod("other", "client-0", "client", "10.0.1.10"),
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "api", "namespace": "prod"},
         "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 8080}]}]}}]
CNP = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "web", "namespace": "prod"},
       "spec": {"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}}
CCNP = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "deny-other"},
        "spec": {"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "other"}}, "ingress": [{}]}}
ANP = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "a"},
       "spec": {"priority": 10, "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}},
                "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}}
BANP = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"},
        "spec": {"subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}},
                 "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}}
KCNP = {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy", "metadata": {"name": "k"},
        "spec": {"tier": "Admin", "priority": 10, "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}},
                 "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}}


def cilium(version: str = "v1.16.3", config: dict[str, str] | None = None, **kw) -> list[dict]:
    objs = [daemonset("cilium", f"quay.io/cilium/cilium:{version}", container="cilium-agent", **kw)]
    return objs + ([configmap("cilium-config", config)] if config is not None else [])


def calico(image: str = "quay.io/calico/node:v3.30.2", datastore: str | None = "kubernetes") -> dict:
    return daemonset("calico-node", image, namespace="calico-system", env={"DATASTORE_TYPE": datastore} if datastore else None)


def scan_manifests(objects: list[dict], tmp_path: Path) -> dict:
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    result = runner.invoke(app, ["scan", str(path), "-f", "json", *NOW])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def scan_live(objects: list[dict], tmp_path: Path) -> dict:
    """A live scan with exactly the permissions `netpol-audit rbac` prints."""
    with ApiDouble(objects, token="t", groups=GROUPS, role=rbac_cluster_role()) as api:
        kc = tmp_path / "kubeconfig"
        kc.write_text(kubeconfig(api.url, token="t"))
        result = runner.invoke(app, ["scan", "--kubeconfig", str(kc), "-f", "json", *NOW])
    assert not api.denied, api.denied
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def settings(data: dict) -> set[str]:
    return {s for c in data["cni"]["components"] for s in c["settings"]}


def enforced(data: dict) -> dict[str, bool]:
    return {f"{p['kind']}/{p['name']}": p["enforced"] for p in data["policies"]}


def segmentation(data: dict) -> set[str]:
    return {c["status"] for c in data["controls"] if c["kind"] == "segmentation"}


# (id, objects, verdict, an evidence line, {policy: enforced})
CASES = [
    ("cilium never", [*BASE, CNP, *cilium(config={"enable-policy": "never"})], "not-enforced",
     "kube-system/cilium-config enable-policy=never", {"CiliumNetworkPolicy/web": False}),
    ("cilium never, upper case", [*BASE, *cilium(config={"enable-policy": "Never"})], "not-enforced",
     "kube-system/cilium-config enable-policy=Never", {}),
    ("cilium audit mode", [*BASE, CNP, *cilium(config={"policy-audit-mode": "true"})], "not-enforced",
     "kube-system/cilium-config policy-audit-mode=true", {"CiliumNetworkPolicy/web": False}),
    ("cilium default", [*BASE, CNP, *cilium(config={"enable-policy": "default"})], "enforced",
     "kube-system/cilium-config enable-policy=default", {"CiliumNetworkPolicy/web": True}),
    ("cilium always", [*BASE, CNP, *cilium(config={"enable-policy": "always"})], "enforced",
     "kube-system/cilium-config enable-policy=always", {"CiliumNetworkPolicy/web": True}),
    ("cilium unknown mode", [*BASE, *cilium(config={"enable-policy": "sometimes"})], "conditional",
     "kube-system/cilium-config enable-policy=sometimes", {}),
    ("cilium without NetworkPolicy", [*BASE, CNP, *cilium(config={"enable-k8s-networkpolicy": "false"})], "not-enforced",
     "kube-system/cilium-config enable-k8s-networkpolicy=false", {"CiliumNetworkPolicy/web": True}),
    ("cilium 1.13 ignores enable-k8s-networkpolicy", [*BASE, *cilium("v1.13.4", config={"enable-k8s-networkpolicy": "false"})],
     "enforced", "kube-system/cilium-config: enable-k8s-networkpolicy not set, so true (enable-k8s-networkpolicy=false is ignored "
     "before Cilium 1.14)", {}),
    ("cilium without CNP", [*BASE, CNP, CCNP, *cilium("v1.17.0", config={"enable-cilium-network-policy": "false"})], "enforced",
     "kube-system/cilium-config enable-cilium-network-policy=false",
     {"CiliumNetworkPolicy/web": False, "CiliumClusterwideNetworkPolicy/deny-other": True}),
    ("cilium 1.16 ignores the CNP switch", [*BASE, CNP, *cilium("v1.16.0", config={"enable-cilium-network-policy": "false"})],
     "enforced", "kube-system/cilium-config: enable-cilium-network-policy not set, so true (enable-cilium-network-policy=false is "
     "ignored before Cilium 1.17)", {"CiliumNetworkPolicy/web": True}),
    ("cilium 1.20 with ClusterNetworkPolicy", [*BASE, KCNP, *cilium("v1.20.1", config={"enable-k8s-cluster-network-policy": "true"})],
     "enforced", "kube-system/cilium-config enable-k8s-cluster-network-policy=true", {"ClusterNetworkPolicy/k": True}),
    ("cilium 1.20 without ClusterNetworkPolicy", [*BASE, KCNP, *cilium("v1.20.1", config={})], "enforced",
     "kube-system/cilium-config: enable-k8s-cluster-network-policy not set, so false (Cilium's default)", {"ClusterNetworkPolicy/k": False}),
    ("cilium 1.19 has no ClusterNetworkPolicy", [*BASE, KCNP, *cilium("v1.19.2", config={"enable-k8s-cluster-network-policy": "true"})],
     "enforced", "kube-system/cilium-config: enable-k8s-cluster-network-policy not set, so false (enable-k8s-cluster-network-policy=true "
     "is ignored before Cilium 1.20)", {"ClusterNetworkPolicy/k": False}),
    ("cilium env over ConfigMap", [*BASE, *cilium(config={"enable-policy": "default"}, env={"CILIUM_ENABLE_POLICY": "never"})],
     "not-enforced", "kube-system/DaemonSet cilium container cilium-agent env CILIUM_ENABLE_POLICY=never", {}),
    ("cilium flag over env", [*BASE, *cilium(config={}, args=["--config-dir=/tmp/cilium/config-map", "--enable-policy=default"],
                                                env={"CILIUM_ENABLE_POLICY": "never"})],
     "enforced", "kube-system/DaemonSet cilium container cilium-agent --enable-policy=default", {}),
    ("calico 3.28: no AdminNetworkPolicy", [*BASE, ANP, calico("quay.io/calico/node:v3.28.2")], "enforced",
     "calico-system/DaemonSet calico-node container calico-node env DATASTORE_TYPE=kubernetes", {"AdminNetworkPolicy/a": False}),
    ("calico 3.29: AdminNetworkPolicy, no baseline", [*BASE, ANP, BANP, calico("quay.io/calico/node:v3.29.0")], "enforced",
     "calico-system/DaemonSet calico-node container calico-node env DATASTORE_TYPE=kubernetes",
     {"AdminNetworkPolicy/a": True, "BaselineAdminNetworkPolicy/default": False}),
    ("calico 3.31: both admin kinds", [*BASE, ANP, BANP, KCNP, calico("quay.io/calico/node:v3.31.4")], "enforced",
     "calico-system/DaemonSet calico-node container calico-node env DATASTORE_TYPE=kubernetes",
     {"AdminNetworkPolicy/a": True, "BaselineAdminNetworkPolicy/default": True, "ClusterNetworkPolicy/k": False}),
    ("calico 3.32: ClusterNetworkPolicy only", [*BASE, ANP, KCNP, calico("quay.io/calico/node:v3.32.0")], "enforced",
     "calico-system/DaemonSet calico-node container calico-node env DATASTORE_TYPE=kubernetes",
     {"AdminNetworkPolicy/a": False, "ClusterNetworkPolicy/k": True}),
    ("calico pinned by digest, version from the Installation", [*BASE, KCNP, calico("quay.io/calico/node@sha256:abcd"), installation("v3.32.1")],
     "enforced", "Installation default variant=Calico", {"ClusterNetworkPolicy/k": True}),
    ("calico etcd datastore", [*BASE, ANP, calico("quay.io/calico/node:v3.30.0", datastore=None)], "conditional",
     "calico-system/DaemonSet calico-node: DATASTORE_TYPE not set, so etcdv3 (calico-node's default)", {"AdminNetworkPolicy/a": False}),
    ("antrea gate on", [*BASE, ANP, daemonset("antrea-agent", "antrea/antrea-agent-ubuntu:v2.2.0"),
                        configmap("antrea-config", {"antrea-controller.conf": "featureGates:\n  AdminNetworkPolicy: true\n"})],
     "enforced", "kube-system/antrea-config antrea-controller.conf featureGates.AdminNetworkPolicy=true", {"AdminNetworkPolicy/a": True}),
    ("antrea gate at its default", [*BASE, ANP, daemonset("antrea-agent", "antrea/antrea-agent-ubuntu:v2.2.0"),
                                    configmap("antrea-config", {"antrea-controller.conf": "featureGates:\n#  AdminNetworkPolicy: true\n"})],
     "enforced", "kube-system/antrea-config: antrea-controller.conf featureGates.AdminNetworkPolicy not set, so false (the gate's default)",
     {"AdminNetworkPolicy/a": False}),
    ("ovn-kubernetes variable on", [*BASE, ANP, daemonset("ovnkube-node", "ghcr.io/ovn-kubernetes/ovn-kubernetes/ovn-kube-ubuntu:v1.1.0",
                                                          env={"OVN_ADMIN_NETWORK_POLICY_ENABLE": "true"})],
     "enforced", "kube-system/DaemonSet ovnkube-node container ovnkube-node env OVN_ADMIN_NETWORK_POLICY_ENABLE=true", {"AdminNetworkPolicy/a": True}),
    ("openshift ovnkube-config", [*BASE, ANP, daemonset("ovnkube-node", "quay.io/openshift/ovn-kubernetes@sha256:1", namespace="openshift-ovn-kubernetes"),
                                  configmap("ovnkube-config", {"ovnkube.conf": "[default]\nmtu=1400\n[ovnkubernetesfeature]\n"
                                                                               "enable-admin-network-policy=true\n"}, "openshift-ovn-kubernetes")],
     "enforced", "openshift-ovn-kubernetes/ovnkube-config ovnkube.conf:ovnkubernetesfeature.enable-admin-network-policy=true",
     {"AdminNetworkPolicy/a": True}),
    ("kube-ovn without --enable-np", [*BASE, daemonset("kube-ovn-cni", "docker.io/kubeovn/kube-ovn:v1.14.2"),
                                      daemonset("kube-ovn-controller", "docker.io/kubeovn/kube-ovn:v1.14.2", kind="Deployment",
                                                args=["/kube-ovn/start-controller.sh", "--enable-np=false"])],
     "not-enforced", "kube-system/Deployment kube-ovn-controller container kube-ovn-controller --enable-np=false", {}),
    ("kube-ovn with --enable-anp", [*BASE, ANP, KCNP, daemonset("kube-ovn-cni", "docker.io/kubeovn/kube-ovn:v1.14.2"),
                                    daemonset("kube-ovn-controller", "docker.io/kubeovn/kube-ovn:v1.14.2", kind="Deployment",
                                              args=["--enable-anp=true"])],
     "enforced", "kube-system/Deployment kube-ovn-controller container kube-ovn-controller --enable-anp=true",
     {"AdminNetworkPolicy/a": True, "ClusterNetworkPolicy/k": False}),
    ("aws agent without controller", [*BASE, daemonset("aws-node", "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.19.2",
                                                       extra=[{"name": "aws-eks-nodeagent", "image": "x/amazon/aws-network-policy-agent:v1.2.0",
                                                               "args": ["--enable-network-policy=true"]}]),
                                      configmap("amazon-vpc-cni", {"enable-network-policy-controller": "false"})],
     "not-enforced", "kube-system/amazon-vpc-cni enable-network-policy-controller=false", {}),
    ("aws agent and controller", [*BASE, daemonset("aws-node", "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.19.2",
                                                   extra=[{"name": "aws-eks-nodeagent", "image": "x/amazon/aws-network-policy-agent:v1.2.0",
                                                           "args": ["--enable-network-policy=true"]}]),
                                  configmap("amazon-vpc-cni", {"enable-network-policy-controller": "true"})],
     "enforced", "kube-system/amazon-vpc-cni enable-network-policy-controller=true", {}),
    ("kube-network-policies flavours", [*BASE, ANP, KCNP, daemonset("kube-network-policies",
                                                                    "registry.k8s.io/networking/kube-network-policies:v1.1.1-npa-v1alpha2")],
     "enforced", "kube-system/DaemonSet kube-network-policies container kube-network-policies image flavour=npa-v1alpha2 "
     "(registry.k8s.io/networking/kube-network-policies:v1.1.1-npa-v1alpha2)", {"AdminNetworkPolicy/a": False, "ClusterNetworkPolicy/k": True}),
    ("flannel carrying kube-network-policies", [*BASE, daemonset("kube-flannel-ds", "ghcr.io/flannel-io/flannel:v0.26.1", namespace="kube-flannel",
                                                                 extra=[{"name": "kube-network-policies",
                                                                         "image": "registry.k8s.io/networking/kube-network-policies:v1.0.0"}])],
     "enforced", "kube-flannel/DaemonSet kube-flannel-ds container kube-network-policies image flavour=standard (NetworkPolicy only) "
     "(registry.k8s.io/networking/kube-network-policies:v1.0.0)", {}),
]


@pytest.mark.parametrize("source", ["manifests", "live"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_setting_through_scan(case, source, tmp_path):
    _name, objects, verdict, evidence, policies = case
    data = (scan_manifests if source == "manifests" else scan_live)(objects, tmp_path)
    assert data["cni"]["verdict"] == verdict, data["cni"]
    assert evidence in settings(data), sorted(settings(data))
    for key, expected in policies.items():
        assert enforced(data)[key] is expected, (key, data["cni"]["components"][0]["kinds"])
    checks = {f["check"] for f in data["findings"]}
    if verdict == "not-enforced":
        assert "NP-CNI-001" in checks
        assert segmentation(data) == {"fail"}
        assert all(evidence.split(" ", 1)[1] in c["reason"] or evidence in c["reason"] for c in data["controls"] if c["kind"] == "segmentation")
    elif verdict == "conditional":
        assert "NP-CNI-003" in checks and "pass" not in segmentation(data)
        assert all("conditional" in c["reason"] for c in data["controls"] if c["kind"] == "segmentation" and c["status"] == "not-assessable")
    else:
        assert not {"NP-CNI-001", "NP-CNI-003"} & checks


def test_a_missing_config_map_means_defaults_live_and_unknown_in_manifests(tmp_path):
    objects = [*BASE, *cilium(config=None)]
    live = scan_live(objects, tmp_path)
    assert live["cni"]["verdict"] == "enforced"
    assert ("kube-system/cilium-config: enable-policy not set, so default (kube-system/cilium-config does not exist; Cilium's default)"
            in settings(live))
    manifests = scan_manifests(objects, tmp_path)
    assert manifests["cni"]["verdict"] == "conditional"
    assert "kube-system/cilium-config enable-policy: unknown (not in the input)" in settings(manifests)


def test_a_forbidden_config_map_is_a_collection_note_and_conditional(tmp_path):
    role = rbac_cluster_role()
    role["rules"] = [r for r in role["rules"] if "configmaps" not in r["resources"]]
    with ApiDouble([*BASE, *cilium(config={"enable-policy": "default"})], token="t", groups=GROUPS, role=role) as api:
        kc = tmp_path / "kubeconfig"
        kc.write_text(kubeconfig(api.url, token="t"))
        data = json.loads(runner.invoke(app, ["scan", "--kubeconfig", str(kc), "-f", "json", *NOW]).stdout)
    assert api.denied == ["/api/v1/namespaces/kube-system/configmaps/cilium-config"]
    assert data["cni"]["verdict"] == "conditional"
    assert any("ConfigMap kube-system/cilium-config could not be read (forbidden (403)" in n for n in data["scan"]["notices"])
    assert data["scan"]["complete"] is True  # a collection note, not a missing resource: never a guessed verdict either
    assert "pass" not in segmentation(data)


def test_a_server_error_on_the_config_map_is_unknown_not_defaults(tmp_path):
    from tests.apiserver import Faults

    faults = Faults(fail_get={"/api/v1/namespaces/kube-system/configmaps/cilium-config": 500})
    with ApiDouble([*BASE, *cilium(config={"enable-policy": "never"})], token="t", groups=GROUPS, faults=faults) as api:
        kc = tmp_path / "kubeconfig"
        kc.write_text(kubeconfig(api.url, token="t"))
        data = json.loads(runner.invoke(app, ["scan", "--kubeconfig", str(kc), "-f", "json", "--request-timeout", "2s", *NOW]).stdout)
    assert data["cni"]["verdict"] == "conditional"


# -- enable-policy: always isolates every pod ---------------------------------------------------

ALWAYS = [*BASE, *cilium(config={"enable-policy": "always"})]
DEFAULT = [*BASE, *cilium(config={"enable-policy": "default"})]


def _write(objects: list[dict], path: Path) -> str:
    path.write_text(yaml.safe_dump_all(objects))
    return str(path)


def test_always_denies_what_no_policy_allows_in_reach(tmp_path):
    always, default = _write(ALWAYS, tmp_path / "always.yaml"), _write(DEFAULT, tmp_path / "default.yaml")
    # other/client has no policy: open under default, isolated both ways under always.
    assert runner.invoke(app, ["reach", "prod/web-0", "other/client-0", "-p", "8080", default]).exit_code == 0
    denied = runner.invoke(app, ["reach", "prod/web-0", "other/client-0", "-p", "8080", always])
    assert denied.exit_code != 0 and "enable-policy=always" in denied.output
    # What a policy allows still passes (web is egress-isolated by the setting too: nothing allows its egress).
    assert runner.invoke(app, ["reach", "prod/web-0", "prod/api-0", "-p", "8080", default]).exit_code == 0
    assert runner.invoke(app, ["reach", "prod/web-0", "prod/api-0", "-p", "8080", always]).exit_code != 0


def test_always_isolates_coverage_connectivity_and_verify(tmp_path):
    always = scan_manifests(ALWAYS, tmp_path)
    default = scan_manifests(DEFAULT, tmp_path)
    rows = {n["name"]: n for n in always["namespaces"]}
    assert rows["other"]["defaultDenyIngress"] and rows["other"]["defaultDenyEgress"]
    assert "enable-policy=always" in rows["other"]["ingressReason"]
    assert not {n["name"]: n for n in default["namespaces"]}["other"]["defaultDenyIngress"]
    assert "NP-CNI-006" in {f["check"] for f in always["findings"]}
    assert "NP-COV-001" not in {f["check"] for f in always["findings"]} and "NP-COV-001" in {f["check"] for f in default["findings"]}
    assert always["summary"]["podsIsolatedIngress"] == always["summary"]["pods"] == always["summary"]["podsIsolatedEgress"]
    assert not any(p["kind"] == "CNI setting" for p in always["policies"])  # a setting, not an object
    path = _write(ALWAYS, tmp_path / "a.yaml")
    conn = json.loads(runner.invoke(app, ["connectivity", path, "-f", "json"]).stdout)
    assert conn["connections"] == [] if isinstance(conn, dict) else conn == []
    expectations = tmp_path / "expect.yaml"
    expectations.write_text(yaml.safe_dump({"expectations": [{"name": "client is closed", "from": "prod/web-0", "to": "other/client-0",
                                                              "port": 8080, "expect": "denied"}]}))
    assert runner.invoke(app, ["verify", str(expectations), path]).exit_code == 0
    assert runner.invoke(app, ["verify", str(expectations), _write(DEFAULT, tmp_path / "d.yaml")]).exit_code != 0


def test_always_is_the_engine_s_own_isolation():
    inv = inventory(yaml.safe_dump_all(ALWAYS))
    a = Analysis(inv, cni=detect_cni(inv))
    client = next(c.id for c in a.classes if c.namespace == "other")
    assert a.is_isolated(client, "Ingress") and a.is_isolated(client, "Egress")
    assert [p.key for p in a.settings] == ["kube-system/cilium-config enable-policy=always"]
    none = Analysis(inv, cni=None)
    assert not none.is_isolated(client, "Ingress") and not none.settings


# -- reading settings and versions -----------------------------------------------------------------

@pytest.mark.parametrize("image,version", [
    ("quay.io/cilium/cilium:v1.16.3", "1.16.3"), ("gke.gcr.io/cilium/cilium:v1.15.10-gke.9", "1.15.10"),
    ("mcr.microsoft.com/oss/cilium/cilium:1.12.10-1", "1.12.10"), ("registry:5000/calico/node:v3.30", "3.30.0"),
    ("quay.io/cilium/cilium:v1.16.3@sha256:abc", "1.16.3"), ("quay.io/cilium/cilium@sha256:abc", None),
    ("quay.io/cilium/cilium:latest", None), ("quay.io/cilium/cilium", None), ("x/y:1.2.3.4", None),
])
def test_versions_come_from_the_image_tag(image, version):
    parsed, text, source = image_version(image)
    assert (text or None) == version
    assert (parsed is None) == (version is None) and image in source


@pytest.mark.parametrize("version,since,until,inside", [
    ((3, 29, 0), "3.29", "3.32", True), ((3, 28, 9), "3.29", "3.32", False), ((3, 32, 0), "3.29", "3.32", False),
    ((3, 31, 99), "3.29", "3.32", True), ((1, 20, 0), "1.20", None, True), ((1, 19, 9), "1.20", None, False),
    ((0, 1, 0), None, None, True),
])
def test_version_ranges_include_since_and_exclude_until(version, since, until, inside):
    assert in_range(version, since, until) is inside


def test_flags_are_read_as_go_reads_them():
    c = Container("a", "i", ("agent", "--x=1", "--flag", "value", "-b", "--enable-policy=default --enable-policy=never"))
    assert arg_value(c, "flag") == "value" and arg_value(c, "b", boolean=True) == "true" and arg_value(c, "x") == "1"
    assert arg_value(c, "enable-policy") == "never"  # the last one wins, inside a shell string too
    assert arg_value(c, "missing") is None
    assert [go_bool(v) for v in ("1", "t", "True", "0", "F", "false", "yes", "")] == [True, True, True, False, False, False, None, None]
    assert parse_version("v2") is None and parse_version("v2.7") == (2, 7, 0)
