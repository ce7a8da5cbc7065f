"""AdminNetworkPolicy and BaselineAdminNetworkPolicy: evaluation order, actions, ports, coverage."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from audit.engine.connectivity import connections
from tests.conftest import analyse, audit, findings
from tests.test_semantics import CLUSTER


def anp(name: str, priority: int, subject: dict, ingress=None, egress=None, version: str = "v1alpha1") -> dict:
    spec: dict = {"priority": priority, "subject": subject}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": f"policy.networking.k8s.io/{version}", "kind": "AdminNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def banp(subject: dict, ingress=None, egress=None) -> dict:
    spec: dict = {"subject": subject}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"}, "spec": spec}


def np(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


PROD = {"namespaces": {"matchLabels": {"env": "prod"}}}
ALL_NS = {"namespaces": {}}
STAGING_PEER = [{"namespaces": {"matchLabels": {"env": "staging"}}}]


def cluster(*objs: dict) -> str:
    return CLUSTER + "".join("\n---\n" + yaml.safe_dump(o) for o in objs)


def verdict(text: str, src: str, dst: str, port: int, proto: str = "TCP"):
    a = analyse(text)

    def ep(ref):
        if "/" not in ref:
            return ipaddress.ip_address(ref)
        (cid,) = a.find_workload(*ref.split("/"))
        return cid

    return a.allowed(ep(src), ep(dst), port, proto)


CASES = [
    ("ANP deny beats a NetworkPolicy allow",
     [anp("deny-staging", 10, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}]),
      np("prod", "allow-all", {"podSelector": {}, "ingress": [{}]})], "staging/web", "prod/api", 8080, False),
    ("ANP allow beats NetworkPolicy isolation",
     [anp("allow-staging", 10, PROD, ingress=[{"action": "Allow", "from": STAGING_PEER}]),
      np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})], "staging/web", "prod/api", 8080, True),
    ("lower priority number is evaluated first (deny at 5 beats allow at 10)",
     [anp("allow", 10, PROD, ingress=[{"action": "Allow", "from": STAGING_PEER}]),
      anp("deny", 5, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}])], "staging/web", "prod/api", 8080, False),
    ("first matching rule within one ANP decides",
     [anp("ordered", 10, PROD, ingress=[{"action": "Allow", "from": STAGING_PEER, "ports": [{"portNumber": {"port": 8080, "protocol": "TCP"}}]},
                                        {"action": "Deny", "from": STAGING_PEER}])], "staging/web", "prod/api", 8080, True),
    ("a later deny still applies to other ports",
     [anp("ordered", 10, PROD, ingress=[{"action": "Allow", "from": STAGING_PEER, "ports": [{"portNumber": {"port": 8080, "protocol": "TCP"}}]},
                                        {"action": "Deny", "from": STAGING_PEER}])], "staging/web", "prod/api", 9090, False),
    ("Pass hands over to NetworkPolicy (which denies)",
     [anp("pass", 10, PROD, ingress=[{"action": "Pass", "from": STAGING_PEER}]),
      anp("deny", 20, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}]),
      np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})], "staging/web", "prod/api", 8080, False),
    ("Pass skips later ANPs (their deny does not apply)",
     [anp("pass", 10, PROD, ingress=[{"action": "Pass", "from": STAGING_PEER}]),
      anp("deny", 20, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}])], "staging/web", "prod/api", 8080, True),
    ("Pass with no NetworkPolicy goes to the baseline",
     [anp("pass", 10, PROD, ingress=[{"action": "Pass", "from": STAGING_PEER}]),
      banp(PROD, ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}])], "staging/web", "prod/api", 8080, False),
    ("baseline deny applies when NetworkPolicy does not isolate",
     [banp(PROD, ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}])], "other/x", "prod/api", 8080, False),
    ("baseline is not consulted when NetworkPolicy isolates",
     [banp(PROD, ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}]),
      np("prod", "allow-x", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]})], "other/x", "prod/api", 8080, True),
    ("baseline allow before its deny",
     [banp(PROD, ingress=[{"action": "Allow", "from": [{"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}}]},
                          {"action": "Deny", "from": [{"namespaces": {}}]}])], "other/x", "prod/api", 8080, True),
    ("subject pods: namespace AND pod selector",
     [anp("api-only", 10, {"pods": {"namespaceSelector": {"matchLabels": {"env": "prod"}}, "podSelector": {"matchLabels": {"app": "api"}}}},
          ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}])], "other/x", "prod/db", 5432, True),
    ("egress deny to the metadata network (the domain text's v1beta1 example)",
     [anp("cluster-deny-to-metadata", 10, {"namespaces": {}}, egress=[{"name": "deny-metadata", "action": "Deny",
                                                                      "to": [{"networks": ["169.254.169.254/32"]}],
                                                                      "ports": [{"portNumber": {"port": 80, "protocol": "TCP"}}]}], version="v1beta1")],
     "prod/web", "169.254.169.254", 80, False),
    ("egress deny to the metadata network leaves other ports open",
     [anp("cluster-deny-to-metadata", 10, {"namespaces": {}}, egress=[{"action": "Deny", "to": [{"networks": ["169.254.169.254/32"]}],
                                                                      "ports": [{"portNumber": {"port": 80, "protocol": "TCP"}}]}])],
     "prod/web", "169.254.169.254", 443, True),
    ("portRange and protocol",
     [anp("range", 10, PROD, ingress=[{"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"portRange": {"start": 8000, "end": 8100, "protocol": "TCP"}}]}])],
     "other/x", "prod/api", 8080, False),
    ("namedPort resolves against the destination pod",
     [anp("named", 10, PROD, ingress=[{"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"namedPort": "http"}]}])],
     "other/x", "prod/api", 8080, False),
    ("namedPort does not match a pod without that port",
     [anp("named", 10, PROD, ingress=[{"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"namedPort": "http"}]}])],
     "other/x", "prod/db", 5432, True),
    ("peer pods: namespace AND pod selector",
     [anp("peer-pods", 10, PROD, ingress=[{"action": "Deny", "from": [{"pods": {"namespaceSelector": {"matchLabels": {"env": "staging"}}, "podSelector": {"matchLabels": {"app": "nope"}}}}]}])],
     "staging/web", "prod/api", 8080, True),
]


@pytest.mark.parametrize("objs,src,dst,port,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_admin_truth_table(objs, src, dst, port, expected):
    assert verdict(cluster(*objs), src, dst, port).allowed is expected


def test_explanations_name_the_admin_rule():
    v = verdict(cluster(anp("deny-staging", 10, PROD, ingress=[{"name": "no-staging", "action": "Deny", "from": STAGING_PEER}])),
                "staging/web", "prod/api", 8080)
    assert "denied by AdminNetworkPolicy/deny-staging ingress[0] (no-staging)" in v.ingress.explain()
    v = verdict(cluster(banp(PROD, ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}])), "other/x", "prod/api", 8080)
    assert "denied by BaselineAdminNetworkPolicy/default ingress[0] (BaselineAdminNetworkPolicy)" in v.ingress.explain()


def test_connectivity_applies_admin_layers_port_by_port():
    text = cluster(anp("no-udp-dns-from-staging", 10, PROD, ingress=[
        {"action": "Deny", "from": STAGING_PEER, "ports": [{"portNumber": {"port": 53, "protocol": "UDP"}}]}]))
    lines = {str(c) for c in connections(analyse(text))}
    assert "staging/web[Pod] => prod/api[Pod] : SCTP 1-65535,TCP 1-65535,UDP 1-52,54-65535" in lines
    assert "other/x[Pod] => prod/api[Pod] : All Connections" in lines


def test_baseline_deny_counts_as_default_deny():
    report = audit(cluster(banp(PROD, ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}])))
    prod = next(n for n in report.namespaces if n.name == "prod")
    assert prod.default_deny_ingress and "BaselineAdminNetworkPolicy/default" in prod.ingress_reason
    assert not prod.default_deny_egress
    staging = next(n for n in report.namespaces if n.name == "staging")
    assert not staging.default_deny_ingress


def test_invalid_admin_policies_and_equal_priorities_are_findings():
    bad = anp("bad", 5000, PROD, ingress=[{"action": "Block", "from": STAGING_PEER}])
    twins = [anp("a", 7, PROD, ingress=[{"action": "Allow", "from": STAGING_PEER}]),
             anp("b", 7, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}])]
    report = audit(cluster(bad, *twins))
    (invalid,) = findings(report, "NP-HYG-007")
    assert "spec.priority" in invalid.message and "spec.ingress[0].action" in invalid.message
    (shared,) = findings(report, "NP-HYG-008")
    assert "priority 7 is shared by a, b" in shared.message
    assert not findings(audit(cluster(*twins[:1])), "NP-HYG-008")
    assert not findings(audit(cluster(*twins[:1])), "NP-HYG-007")


def test_admin_metadata_deny_clears_the_metadata_exposure():
    open_report = audit(cluster())
    assert {f.namespace for f in findings(open_report, "NP-EXP-001")} == {"prod", "staging", "other"}
    deny = anp("cluster-deny-to-metadata", 10, {"namespaces": {}}, egress=[
        {"action": "Deny", "to": [{"networks": ["169.254.169.254/32"]}], "ports": [{"portNumber": {"port": 80, "protocol": "TCP"}}]}])
    assert not findings(audit(cluster(deny)), "NP-EXP-001")


def test_a_cluster_policy_acts_in_the_namespaces_where_it_selects_a_pod():
    """Listed among a namespace's policies when it selects a pod there, though not all of them;
    not listed where it selects none."""
    db_only = {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "db"}}}}
    a = analyse(cluster(anp("db", 10, db_only, ingress=[{"action": "Deny", "from": STAGING_PEER}])))
    assert a.policies_in("prod") == ("AdminNetworkPolicy/db",)
    assert a.policies_in("staging") == ()


def test_same_labels_peers_never_name_host_network_pods():
    """A `sameLabels` peer names the pods of namespaces that share the subject's labels; a
    hostNetwork pod is its node's traffic, which no namespace peer names."""
    deny_same_env = anp("deny-same-env", 10, PROD, ingress=[{"action": "Deny", "from": [{"namespaces": {"sameLabels": ["env"]}}]}])
    text = cluster(deny_same_env)
    assert not verdict(text, "prod/web", "prod/api", 8080).allowed  # the same env: denied
    assert verdict(text, "staging/web", "prod/api", 8080).allowed  # another env: not named
    assert verdict(text, "prod/agent", "prod/api", 8080).allowed  # hostNetwork, in the same env: not named either
