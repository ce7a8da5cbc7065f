"""CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy at L3/L4: a truth table, coverage, connectivity."""

from __future__ import annotations

import pytest

from audit.engine.connectivity import connections
from tests.conftest import analyse, audit, findings
from tests.test_admin import cluster, np, verdict


def cnp(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def ccnp(name: str, spec: dict) -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": name}, "spec": spec}


API = {"matchLabels": {"app": "api"}}
WEB = {"matchLabels": {"app": "web"}}

CASES = [
    ("fromEndpoints: same namespace by default",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB]}]})], "prod/web", "prod/api", 8080, True),
    ("fromEndpoints does not reach other namespaces",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB]}]})], "staging/web", "prod/api", 8080, False),
    ("selected endpoints are enforced: others denied",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB]}]})], "prod/db", "prod/api", 8080, False),
    ("k8s:io.kubernetes.pod.namespace names another namespace",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [
         {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "staging", "app": "web"}}]}]})], "staging/web", "prod/api", 8080, True),
    ("namespace labels through io.cilium.k8s.namespace.labels",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [
         {"matchLabels": {"io.cilium.k8s.namespace.labels.env": "staging", "io.kubernetes.pod.namespace": "staging"}}]}]})],
     "staging/web", "prod/api", 8080, True),
    ("toPorts narrows to the port",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB], "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}]})],
     "prod/web", "prod/api", 9090, False),
    ("toPorts with ANY protocol",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB], "toPorts": [{"ports": [{"port": "53"}]}]}]})],
     "prod/web", "prod/api", 53, True),
    ("toPorts by name",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}]}]}]})],
     "other/x", "prod/api", 8080, True),
    ("toPorts alone is an L3 wildcard",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}]})],
     "203.0.113.4", "prod/api", 8080, True),
    ("ingress: [{}] is default deny",
     [cnp("prod", "c", {"endpointSelector": {}, "ingress": [{}]})], "prod/web", "prod/api", 8080, False),
    ("ingressDeny wins over a NetworkPolicy allow",
     [np("prod", "allow-all", {"podSelector": {}, "ingress": [{}]}),
      cnp("prod", "c", {"endpointSelector": API, "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"io.kubernetes.pod.namespace": "staging"}}]}]})],
     "staging/web", "prod/api", 8080, False),
    ("ingressDeny alone enforces the direction",
     [cnp("prod", "c", {"endpointSelector": API, "ingressDeny": [{"fromEntities": ["world"]}]})], "other/x", "prod/api", 8080, False),
    ("enableDefaultDeny false: rules only deny, nothing else is enforced",
     [cnp("prod", "c", {"endpointSelector": API, "enableDefaultDeny": {"ingress": False},
                        "ingressDeny": [{"fromEntities": ["world"]}]})], "other/x", "prod/api", 8080, True),
    ("fromEntities world admits outside addresses",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEntities": ["world"]}]})], "203.0.113.4", "prod/api", 443, True),
    ("fromEntities world does not admit pods",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEntities": ["world"]}]})], "other/x", "prod/api", 443, False),
    ("fromEntities cluster admits every pod",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEntities": ["cluster"]}]})], "other/x", "prod/api", 443, True),
    ("toCIDRSet with except",
     [cnp("prod", "c", {"endpointSelector": WEB, "egress": [{"toCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}]}]})],
     "prod/web", "10.1.2.3", 443, False),
    ("toCIDR admits the range",
     [cnp("prod", "c", {"endpointSelector": WEB, "egress": [{"toCIDR": ["10.0.0.0/8"]}]})], "prod/web", "10.9.9.9", 443, True),
    ("toFQDNs cannot be resolved here: it admits nothing",
     [cnp("prod", "c", {"endpointSelector": WEB, "egress": [{"toFQDNs": [{"matchName": "api.stripe.com"}], "toPorts": [{"ports": [{"port": "443"}]}]}]})],
     "prod/web", "198.51.100.9", 443, False),
    ("L7 rules allow their port at L4",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB], "toPorts": [
         {"ports": [{"port": "8080", "protocol": "TCP"}], "rules": {"http": [{"method": "GET", "path": "/api/.*"}]}}]}]})],
     "prod/web", "prod/api", 8080, True),
    ("Cilium and NetworkPolicy allows add up",
     [np("prod", "web-only", {"podSelector": API, "ingress": [{"from": [{"podSelector": WEB}]}]}),
      cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "db"}}]}]})], "prod/db", "prod/api", 8080, True),
    ("clusterwide policy with an empty fromEndpoints selector admits every namespace",
     [ccnp("c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [{}]}]})], "staging/web", "prod/api", 8080, True),
    ("clusterwide policy selects pods in every namespace",
     [ccnp("c", {"endpointSelector": WEB, "ingress": [{}]})], "other/x", "staging/web", 80, False),
]


@pytest.mark.parametrize("objs,src,dst,port,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cilium_truth_table(objs, src, dst, port, expected):
    assert verdict(cluster(*objs), src, dst, port).allowed is expected


def test_cilium_policies_count_as_coverage():
    text = cluster(cnp("prod", "default-deny", {"endpointSelector": {}, "ingress": [{}], "egress": [{}]}))
    report = audit(text)
    prod = next(n for n in report.namespaces if n.name == "prod")
    assert prod.default_deny_ingress and prod.default_deny_egress and "CiliumNetworkPolicy/prod/default-deny" in prod.ingress_reason
    assert prod.isolated_ingress == prod.pods
    assert "prod" not in {f.namespace for f in findings(report, "NP-COV-004")}
    open_all = audit(cluster(cnp("prod", "open", {"endpointSelector": {}, "ingress": [{"fromEntities": ["all"]}]})))
    assert not next(n for n in open_all.namespaces if n.name == "prod").default_deny_ingress


def test_explanation_names_the_cilium_rule():
    v = verdict(cluster(np("prod", "allow-all", {"podSelector": {}, "ingress": [{}]}),
                        cnp("prod", "no-staging", {"endpointSelector": API, "ingressDeny": [
                            {"fromEndpoints": [{"matchLabels": {"io.kubernetes.pod.namespace": "staging"}}]}]})),
                "staging/web", "prod/api", 8080)
    assert "denied by CiliumNetworkPolicy/prod/no-staging ingressDeny[0]" in v.ingress.explain()
    v = verdict(cluster(cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB]}]})), "prod/web", "prod/api", 8080)
    assert "allowed by CiliumNetworkPolicy/prod/c ingress[0]" in v.ingress.explain()


def test_connectivity_subtracts_cilium_denies():
    # Deny-only policies also switch on default deny (Cilium's enableDefaultDeny defaults to true
    # for a direction with rules), so an allow rule is needed to see the subtraction.
    text = cluster(cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEntities": ["cluster"]}], "ingressDeny": [
        {"fromEndpoints": [{"matchLabels": {"io.kubernetes.pod.namespace": "staging"}}], "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}]}]}]}))
    lines = {str(c) for c in connections(analyse(text))}
    assert "staging/web[Pod] => prod/api[Pod] : SCTP 1-65535,TCP 1-65535,UDP 1-52,54-65535" in lines


def test_invalid_cilium_policy_is_reported():
    report = audit(cluster(cnp("prod", "bad", {"endpointSelector": API, "ingress": [{"fromCIDR": ["10.0.0.0/33"]}]})))
    (hit,) = findings(report, "NP-HYG-007")
    assert hit.kind == "CiliumNetworkPolicy" and "spec.ingress[0].fromCIDR" in hit.message and "10.0.0.0/33" in hit.message
    assert report.summary.invalid_policies == 1 and report.summary.policies_by_kind == {}
