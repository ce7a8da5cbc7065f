"""The policy stack: ClusterNetworkPolicy, mixed stacks, CNI-aware credit, and one engine.

Truth tables give each verdict by hand from the APIs' documented semantics; the cross-checks
hold `reach`'s per-port verdict, connectivity's port sets and the NetworkPolicy fast path to
one another on every scenario of every truth table.
"""

from __future__ import annotations

import ipaddress
import os

import pytest
import yaml

from audit.engine.analysis import Analysis
from audit.engine.cni import detect_cni
from audit.engine.kinds.clusternetwork import parse_cluster_network_policy
from audit.engine.stack import evaluate
from audit.inventory import PolicyObject
from tests import test_admin, test_calico, test_cilium, test_semantics
from tests.conftest import audit, findings, inventory
from tests.test_admin import PROD, STAGING_PEER, anp, banp, cluster, np

ALL_NS = {"namespaces": {}}


def cnp(name: str, tier: str, priority: int, subject: dict, ingress=None, egress=None) -> dict:
    spec: dict = {"tier": tier, "priority": priority, "subject": subject}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def gnp(name: str, order: float | None, spec: dict) -> dict:
    body = dict(spec)
    if order is not None:
        body["order"] = order
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": name}, "spec": body}


def ciliumnp(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def tcp(port: int) -> dict:
    return {"tcp": {"destinationPort": {"number": port}}}


def daemonset(name: str, image: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None, namespace: str = "kube-system",
              kind: str = "DaemonSet") -> dict:
    container: dict = {"name": name, "image": image}
    if args:
        container["args"] = list(args)
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"hostNetwork": True, "containers": [container]}}}}


def configmap(name: str, data: dict[str, str], namespace: str = "kube-system") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


CALICO_NODE = daemonset("calico-node", "docker.io/calico/node:v3.28.0", env={"DATASTORE_TYPE": "kubernetes"})
CILIUM_AGENT = daemonset("cilium", "quay.io/cilium/cilium:v1.16.0")


def analysis_of(text: str, cni: bool = True, assume_enforced: bool = False) -> Analysis:
    inv = inventory(text)
    return Analysis(inv, cni=detect_cni(inv) if cni else None, assume_enforced=assume_enforced)


def endpoint(a: Analysis, ref: str):
    if "/" not in ref:
        return ipaddress.ip_address(ref)
    (cid,) = a.find_workload(*ref.split("/"))
    return cid


def allowed(text: str, src: str, dst: str, port: int, proto: str = "TCP", **kw) -> bool:
    a = analysis_of(text, **kw)
    return a.allowed(endpoint(a, src), endpoint(a, dst), port, proto).allowed


CNP_CASES = [
    ("admin-tier Deny beats a NetworkPolicy allow",
     [cnp("deny-staging", "Admin", 10, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}]),
      np("prod", "allow-all", {"podSelector": {}, "ingress": [{}]})], "staging/web", "prod/api", 8080, False),
    ("admin-tier Accept beats NetworkPolicy isolation",
     [cnp("accept-staging", "Admin", 10, PROD, ingress=[{"action": "Accept", "from": STAGING_PEER}]),
      np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})], "staging/web", "prod/api", 8080, True),
    ("admin-tier Pass hands over to NetworkPolicy (which denies)",
     [cnp("pass", "Admin", 10, PROD, ingress=[{"action": "Pass", "from": STAGING_PEER}]),
      cnp("deny", "Admin", 20, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}]),
      np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})], "staging/web", "prod/api", 8080, False),
    ("admin-tier Pass skips the rest of the admin tier",
     [cnp("pass", "Admin", 10, PROD, ingress=[{"action": "Pass", "from": STAGING_PEER}]),
      cnp("deny", "Admin", 20, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}])], "staging/web", "prod/api", 8080, True),
    ("baseline-tier Deny applies when NetworkPolicy does not isolate",
     [cnp("base", "Baseline", 10, PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}])], "other/x", "prod/api", 8080, False),
    ("baseline tier is not consulted when NetworkPolicy isolates",
     [cnp("base", "Baseline", 10, PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}]),
      np("prod", "allow-x", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]})], "other/x", "prod/api", 8080, True),
    ("baseline-tier Pass goes on to the default allow",
     [cnp("base", "Baseline", 10, PROD, ingress=[{"action": "Pass", "from": [ALL_NS]}, {"action": "Deny", "from": [ALL_NS]}])],
     "other/x", "prod/api", 8080, True),
    ("baseline tiers are ordered by priority",
     [cnp("late-allow", "Baseline", 20, PROD, ingress=[{"action": "Accept", "from": [ALL_NS]}]),
      cnp("early-deny", "Baseline", 5, PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}])], "other/x", "prod/api", 8080, False),
    ("an admin-tier CNP at priority 5 precedes an ANP at priority 10",
     [anp("allow", 10, PROD, ingress=[{"action": "Allow", "from": STAGING_PEER}]),
      cnp("deny", "Admin", 5, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}])], "staging/web", "prod/api", 8080, False),
    ("an ANP at priority 5 precedes an admin-tier CNP at priority 10",
     [anp("allow", 5, PROD, ingress=[{"action": "Allow", "from": STAGING_PEER}]),
      cnp("deny", "Admin", 10, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}])], "staging/web", "prod/api", 8080, True),
    ("a BANP and a baseline-tier CNP share the baseline tier (each decides what the other does not name)",
     [banp(PROD, ingress=[{"action": "Allow", "from": STAGING_PEER}]),
      cnp("deny", "Baseline", 0, PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}])], "other/x", "prod/api", 8080, False),
    ("tcp destinationPort number matches that port",
     [cnp("p", "Admin", 1, PROD, ingress=[{"action": "Deny", "from": [ALL_NS], "protocols": [tcp(8080)]}])], "other/x", "prod/api", 8080, False),
    ("tcp destinationPort number leaves other ports",
     [cnp("p", "Admin", 1, PROD, ingress=[{"action": "Deny", "from": [ALL_NS], "protocols": [tcp(8080)]}])], "other/x", "prod/api", 8081, True),
    ("tcp port does not match UDP",
     [cnp("p", "Admin", 1, PROD, ingress=[{"action": "Deny", "from": [ALL_NS], "protocols": [tcp(5353)]}])], "other/x", "prod/api", 5353, True, "UDP"),
    ("udp destinationPort range",
     [cnp("p", "Admin", 1, PROD, ingress=[{"action": "Deny", "from": [ALL_NS],
                                           "protocols": [{"udp": {"destinationPort": {"range": {"start": 5000, "end": 6000}}}}]}])],
     "other/x", "prod/api", 5353, False, "UDP"),
    ("range end is inclusive",
     [cnp("p", "Admin", 1, PROD, ingress=[{"action": "Deny", "from": [ALL_NS],
                                           "protocols": [{"tcp": {"destinationPort": {"range": {"start": 8000, "end": 8080}}}}]}])],
     "other/x", "prod/api", 8080, False),
    ("destinationNamedPort resolves against the destination pod",
     [cnp("p", "Admin", 1, PROD, ingress=[{"action": "Deny", "from": [ALL_NS], "protocols": [{"destinationNamedPort": "http"}]}])],
     "other/x", "prod/api", 8080, False),
    ("destinationNamedPort does not match a pod without that name",
     [cnp("p", "Admin", 1, PROD, ingress=[{"action": "Deny", "from": [ALL_NS], "protocols": [{"destinationNamedPort": "http"}]}])],
     "other/x", "prod/db", 5432, True),
    ("egress Deny to the metadata network",
     [cnp("meta", "Admin", 1, ALL_NS, egress=[{"action": "Deny", "to": [{"networks": ["169.254.169.254/32"]}], "protocols": [tcp(80)]}])],
     "prod/web", "169.254.169.254", 80, False),
    ("egress Accept to a network beats a NetworkPolicy egress deny",
     [cnp("corp", "Admin", 1, PROD, egress=[{"action": "Accept", "to": [{"networks": ["10.0.0.0/8"]}]}]),
      np("prod", "deny-out", {"podSelector": {}, "policyTypes": ["Egress"]})], "prod/web", "10.1.2.3", 443, True),
    ("subject pods: namespace AND pod selector",
     [cnp("api-only", "Admin", 1, {"pods": {"namespaceSelector": {"matchLabels": {"env": "prod"}}, "podSelector": {"matchLabels": {"app": "api"}}}},
          ingress=[{"action": "Deny", "from": [ALL_NS]}])], "other/x", "prod/db", 5432, True),
    ("subject pods selects the named pod",
     [cnp("api-only", "Admin", 1, {"pods": {"namespaceSelector": {"matchLabels": {"env": "prod"}}, "podSelector": {"matchLabels": {"app": "api"}}}},
          ingress=[{"action": "Deny", "from": [ALL_NS]}])], "other/x", "prod/api", 8080, False),
    ("peer pods: namespace AND pod selector",
     [cnp("p", "Admin", 1, PROD, ingress=[{"action": "Deny", "from": [{"pods": {"namespaceSelector": {"matchLabels": {"env": "staging"}},
                                                                                "podSelector": {"matchLabels": {"app": "nope"}}}}]}])],
     "staging/web", "prod/api", 8080, True),
    ("domainNames cannot be resolved: its Accept matches nothing and the deny after it applies",
     [cnp("fqdn", "Admin", 1, PROD, egress=[{"action": "Accept", "to": [{"domainNames": ["example.com"]}]},
                                            {"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}])],
     "prod/web", "93.184.216.34", 443, False),
]

MIXED_CASES = [
    ("ANP Deny beats a Calico allow",
     [anp("deny", 10, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}]),
      gnp("allow", 100, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Allow"}]})], "staging/web", "prod/api", 8080, False),
    ("ANP Pass, then a Calico deny at order 100 beats a NetworkPolicy allow at 1000",
     [anp("pass", 10, PROD, ingress=[{"action": "Pass", "from": STAGING_PEER}]),
      gnp("deny", 100, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Deny", "source": {"namespaceSelector": "env == 'staging'"}}]}),
      np("prod", "allow-all", {"podSelector": {}, "ingress": [{}]})], "staging/web", "prod/api", 8080, False),
    ("a NetworkPolicy allow at 1000 beats a Calico deny at 2000",
     [gnp("deny", 2000, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Deny"}]}),
      np("prod", "allow-all", {"podSelector": {}, "ingress": [{}]})], "staging/web", "prod/api", 8080, True),
    ("Calico Pass skips NetworkPolicy and reaches the baseline deny",
     [gnp("pass", 100, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Pass"}]}),
      np("prod", "allow-all", {"podSelector": {}, "ingress": [{}]}),
      banp(PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}])], "staging/web", "prod/api", 8080, False),
    ("Calico Pass with no baseline ends in the default allow",
     [gnp("pass", 100, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Pass"}]}),
      np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})], "staging/web", "prod/api", 8080, True),
    ("a Calico policy that selects the pod closes the tier: the baseline is not reached",
     [gnp("only-other", 100, {"selector": "all()", "types": ["Ingress"],
                              "ingress": [{"action": "Allow", "source": {"namespaceSelector": "kubernetes.io/metadata.name == 'other'"}}]}),
      banp(PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}])], "other/x", "prod/api", 8080, True),
    ("the end of the Calico tier denies what it did not allow",
     [gnp("only-other", 100, {"selector": "all()", "types": ["Ingress"],
                              "ingress": [{"action": "Allow", "source": {"namespaceSelector": "kubernetes.io/metadata.name == 'other'"}}]})],
     "staging/web", "prod/api", 8080, False),
    ("Cilium deny beats a NetworkPolicy allow",
     [ciliumnp("prod", "no-staging", {"endpointSelector": {}, "ingressDeny": [{"fromEndpoints": [
         {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "staging"}}]}]}),
      np("prod", "allow-all", {"podSelector": {}, "ingress": [{}]})], "staging/web", "prod/api", 8080, False),
    ("Cilium and NetworkPolicy allows add up (NetworkPolicy's)",
     [ciliumnp("prod", "from-other", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [
         {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "other"}}]}]}),
      np("prod", "from-staging", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "staging"}}}]}]})],
     "staging/web", "prod/api", 8080, True),
    ("Cilium and NetworkPolicy allows add up (Cilium's)",
     [ciliumnp("prod", "from-other", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [
         {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "other"}}]}]}),
      np("prod", "from-staging", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "staging"}}}]}]})],
     "other/x", "prod/api", 8080, True),
    ("an ANP Allow beats a Cilium deny",
     [anp("allow", 1, PROD, ingress=[{"action": "Allow", "from": STAGING_PEER}]),
      ciliumnp("prod", "deny-all", {"endpointSelector": {}, "ingressDeny": [{"fromEntities": ["all"]}]})], "staging/web", "prod/api", 8080, True),
]


def all_cases() -> list[tuple]:
    """(name, objects, src, dst, port, expected, protocol) of every case above."""
    return [(c[0], c[1], c[2], c[3], c[4], c[5], c[6] if len(c) > 6 else "TCP") for c in CNP_CASES + MIXED_CASES]


@pytest.mark.parametrize("objs,src,dst,port,expected,proto", [c[1:] for c in all_cases()], ids=[c[0] for c in all_cases()])
def test_stack_truth_table(objs, src, dst, port, expected, proto):
    assert allowed(cluster(*objs), src, dst, port, proto, cni=False) is expected


def test_explanations_name_the_tier_and_the_rule():
    a = analysis_of(cluster(cnp("base", "Baseline", 10, PROD, ingress=[{"name": "no-one", "action": "Deny", "from": [ALL_NS]}])), cni=False)
    v = a.allowed(endpoint(a, "other/x"), endpoint(a, "prod/api"), 8080)
    text = v.ingress.explain()
    assert "denied by ClusterNetworkPolicy/base ingress[0] (no-one)" in text and "Baseline tier" in text
    a = analysis_of(cluster(cnp("pass", "Admin", 10, PROD, ingress=[{"action": "Pass", "from": STAGING_PEER}]),
                            np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})), cni=False)
    v = a.allowed(endpoint(a, "staging/web"), endpoint(a, "prod/api"), 8080)
    assert v.ingress.explain().startswith("ingress of the destination: passed on by ClusterNetworkPolicy/pass ingress[0], then isolated by prod/deny")


CNP_ERRORS = [
    ({"tier": "Middle", "priority": 1, "subject": ALL_NS}, "spec.tier"),
    ({"tier": "Admin", "priority": 1001, "subject": ALL_NS}, "spec.priority"),
    ({"tier": "Admin", "priority": 1, "subject": {}}, "spec.subject"),
    ({"tier": "Admin", "priority": 1, "subject": {"namespaces": {}, "pods": {"podSelector": {}}}}, "spec.subject"),
    ({"tier": "Admin", "priority": 1, "subject": {"pods": {"namespaceSelector": {}}}}, "spec.subject.pods.podSelector"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "ingress": [{"action": "Allow", "from": [ALL_NS]}]}, "spec.ingress[0].action"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "ingress": [{"action": "Deny", "from": []}]}, "spec.ingress[0].from"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "ingress": [{"action": "Deny", "from": [{"networks": ["10.0.0.0/8"]}]}]},
     "spec.ingress[0].from[0]"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "ingress": [{"action": "Deny", "from": [ALL_NS], "ports": [{"portNumber": {"port": 80}}]}]},
     "spec.ingress[0].ports"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "egress": [{"action": "Deny", "to": [{"networks": ["10.0.0.0/33"]}]}]},
     "spec.egress[0].to[0].networks[0]"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "egress": [{"action": "Deny", "to": [{"networks": ["10.0.0.0/8"]}],
                                                                    "protocols": [{"destinationNamedPort": "http"}]}]}, "spec.egress[0]"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "ingress": [{"action": "Deny", "from": [ALL_NS],
                                                                     "protocols": [{"tcp": {"destinationPort": {"range": {"start": 90, "end": 90}}}}]}]},
     "spec.ingress[0].protocols[0].tcp.destinationPort.range"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "ingress": [{"action": "Deny", "from": [ALL_NS],
                                                                     "protocols": [{"tcp": {"destinationPort": {"number": 0}}}]}]},
     "spec.ingress[0].protocols[0].tcp.destinationPort.number"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "ingress": [{"action": "Deny", "from": [ALL_NS],
                                                                     "protocols": [{"icmp": {}}]}]}, "spec.ingress[0].protocols[0].icmp"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "egress": [{"action": "Deny", "to": [{"domainNames": ["example.com"]}]}]},
     "spec.egress[0].to[0].domainNames"),
    ({"tier": "Admin", "priority": 1, "subject": ALL_NS, "ingress": [{"action": "Deny", "from": [ALL_NS]}] * 26}, "spec.ingress"),
]


@pytest.mark.parametrize("spec,field", CNP_ERRORS, ids=[e[1] + f"#{i}" for i, e in enumerate(CNP_ERRORS)])
def test_cluster_network_policy_validation(spec, field):
    obj = PolicyObject("ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2", None, "bad", spec)
    policy, errors = parse_cluster_network_policy(obj)
    assert policy is None and any(e.field == field for e in errors), [str(e) for e in errors]


def test_valid_cluster_network_policy_parses():
    spec = {"tier": "Baseline", "priority": 0, "subject": {"pods": {"namespaceSelector": {}, "podSelector": {}}},
            "ingress": [{"name": "x", "action": "Pass", "from": [{"pods": {"namespaceSelector": {}, "podSelector": {}}}],
                         "protocols": [tcp(1), tcp(65535), {"sctp": {"destinationPort": {"range": {"start": 1, "end": 65535}}}}]}],
            "egress": [{"action": "Accept", "to": [{"domainNames": ["*.example.com"]}, {"nodes": {}}]}]}
    policy, errors = parse_cluster_network_policy(PolicyObject("ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2", None, "ok", spec))
    assert not errors and policy is not None and policy.tier == "baseline"


def test_invalid_cluster_network_policy_is_a_finding_and_takes_no_part():
    bad = cnp("bad", "Admin", 1, PROD, ingress=[{"action": "Allow", "from": [ALL_NS]}])
    report = audit(cluster(bad, np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})))
    (hit,) = findings(report, "NP-HYG-007")
    assert hit.kind == "ClusterNetworkPolicy" and "spec.ingress[0].action" in hit.message
    assert not allowed(cluster(bad, np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})), "other/x", "prod/api", 8080, cni=False)


def test_baseline_cluster_network_policy_counts_as_default_deny():
    report = audit(cluster(cnp("base", "Baseline", 0, PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}])))
    prod = next(n for n in report.namespaces if n.name == "prod")
    assert prod.default_deny_ingress and "ClusterNetworkPolicy/base" in prod.ingress_reason and not prod.default_deny_egress
    assert prod.isolated_ingress == prod.pods


# -- credit only where the dataplane enforces a kind ------------------------------------------

DENY_STAGING_CILIUM = ciliumnp("prod", "no-staging", {"endpointSelector": {}, "ingressDeny": [{"fromEndpoints": [
    {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "staging"}}]}]})
DENY_STAGING_ANP = anp("deny", 10, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}])
DENY_STAGING_CNP = cnp("deny", "Admin", 10, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}])
DENY_STAGING_CALICO = gnp("deny", 10, {"selector": "all()", "types": ["Ingress"],
                                       "ingress": [{"action": "Deny", "source": {"namespaceSelector": "env == 'staging'"}}]})


@pytest.mark.parametrize("policy,enforcing,ignoring", [
    (DENY_STAGING_CILIUM, CILIUM_AGENT, CALICO_NODE),
    (DENY_STAGING_CALICO, CALICO_NODE, CILIUM_AGENT),
    (DENY_STAGING_ANP, daemonset("ovnkube-node", "ovn-kubernetes/ovn-daemonset:v1", env={"OVN_ADMIN_NETWORK_POLICY_ENABLE": "true"}),
     CILIUM_AGENT),
    (DENY_STAGING_CNP, daemonset("kube-network-policies", "registry.k8s.io/networking/kube-network-policies:v1.1.1-npa-v1alpha2"),
     CALICO_NODE),
], ids=["cilium", "calico", "anp", "clusternetworkpolicy"])
def test_a_kind_counts_only_where_the_cni_enforces_it(policy, enforcing, ignoring):
    assert not allowed(cluster(policy, enforcing), "staging/web", "prod/api", 8080)
    assert allowed(cluster(policy, ignoring), "staging/web", "prod/api", 8080)
    assert not allowed(cluster(policy, ignoring), "staging/web", "prod/api", 8080, assume_enforced=True)
    a = analysis_of(cluster(policy, ignoring))
    assert list(a.unenforced) and not a.policies and a.unenforced_policies
    assert not analysis_of(cluster(policy, enforcing)).unenforced
    unknown = analysis_of(cluster(policy), cni=False)  # no CNI report: assumed, and said so
    assert unknown.assumed and not unknown.unenforced


def test_a_leftover_cilium_default_deny_is_no_coverage_on_calico():
    deny_all = ciliumnp("prod", "default-deny", {"endpointSelector": {}, "ingress": [{}]})
    on_cilium = audit(cluster(deny_all, CILIUM_AGENT))
    assert next(n for n in on_cilium.namespaces if n.name == "prod").default_deny_ingress
    on_calico = audit(cluster(deny_all, CALICO_NODE))
    prod = next(n for n in on_calico.namespaces if n.name == "prod")
    assert not prod.default_deny_ingress and prod.isolated_ingress == 0
    (hit,) = findings(on_calico, "NP-CNI-004")
    assert "CiliumNetworkPolicy/prod/default-deny" in hit.message and "Calico does not implement" in hit.message


def test_a_namespace_isolated_only_by_cilium_is_not_reported_without_policy():
    deny_all = ciliumnp("prod", "default-deny", {"endpointSelector": {}, "ingress": [{}], "egress": [{}]})
    report = audit(cluster(deny_all, CILIUM_AGENT))
    assert "prod" not in {f.namespace for f in findings(report, "NP-COV-001")}
    assert "staging" in {f.namespace for f in findings(report, "NP-COV-001")}


# -- one engine: reach, connectivity and the fast path agree ---------------------------------

def _scenarios() -> list[tuple[str, str]]:
    out = [(f"semantics: {c[0]}", test_semantics.policies(*c[1])) for c in test_semantics.CASES]
    for module in (test_admin, test_cilium, test_calico):
        out += [(f"{module.__name__.rsplit('_', 1)[1]}: {c[0]}", cluster(*c[1])) for c in module.CASES]
    out += [(f"stack: {c[0]}", cluster(*c[1])) for c in all_cases()]
    return out


SCENARIOS = _scenarios()


def _boundary_ports(a: Analysis, src: int, dst, direction_ports) -> dict[str, list[int]]:
    """Ports where some rule's verdict may change: every range end and its neighbours."""
    points: dict[str, set[int]] = {p: {1, 65535} for p in ("TCP", "UDP", "SCTP")}
    for ports in direction_ports:
        for proto, ranges in ports.as_dict().items():
            for lo, hi in ranges:
                points[proto].update(x for x in (lo - 1, lo, hi, hi + 1) if 1 <= x <= 65535)
    return {p: sorted(v) for p, v in points.items()}


@pytest.mark.parametrize("text", [s[1] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_reach_agrees_with_connectivity_port_by_port(text):
    a = analysis_of(text, cni=False)
    classes = [c.id for c in a.real_classes() if c.governed]
    rule_ports = [a.rule_ports(r, a.classes[d].ports) for d in classes for p in a.policies for r in p.rules]
    for src in classes:
        for dst in classes:
            dst_ports = a.classes[dst].ports
            conns = a.side_ports(src, "Egress", dst, dst_ports) & a.side_ports(dst, "Ingress", src, dst_ports)
            for proto, ports in _boundary_ports(a, src, dst, rule_ports).items():
                for port in ports:
                    expected = any(lo <= port <= hi for lo, hi in conns.as_dict().get(proto, ()))
                    assert a.allowed(src, dst, port, proto).allowed is expected, (a.classes[src].describe(), a.classes[dst].describe(), port, proto)


@pytest.mark.parametrize("text", [s[1] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_networkpolicy_fast_path_equals_the_walk(text):
    a = analysis_of(text, cni=False)
    classes = [c.id for c in a.real_classes() if c.governed]
    for src in classes:
        for dst in classes + [ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("10.1.2.3")]:
            dst_ports = a.classes[dst].ports if isinstance(dst, int) else None
            assert a.side_ports(src, "Egress", dst, dst_ports) == evaluate(a, src, "Egress", dst, dst_ports).allowed
            if isinstance(dst, int):
                assert a.side_ports(dst, "Ingress", src, dst_ports) == evaluate(a, dst, "Ingress", src, dst_ports).allowed


def test_several_queries_on_one_analysis_do_not_leak_through_memos():
    """The egress memo is keyed by signature: a second, different query gets its own answer."""
    text = cluster(np("prod", "web-out", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                                          "egress": [{"ports": [{"port": 5432}]}]}))
    a = analysis_of(text, cni=False)
    web, db, api = endpoint(a, "prod/web"), endpoint(a, "prod/db"), endpoint(a, "prod/api")
    assert a.allowed(web, db, 5432).allowed and not a.allowed(web, db, 5433).allowed
    assert not a.allowed(web, api, 8080).allowed and a.allowed(api, web, 8080).allowed
    assert a.allowed(web, db, 5432).allowed  # asked again, after other answers were memoized


def test_scenarios_are_real_documents():
    for _name, text in SCENARIOS:
        assert all(isinstance(d, dict) for d in yaml.safe_load_all(text) if d is not None)


def test_a_metadata_egress_rule_overridden_by_an_admin_deny_is_no_exposure():
    egress_all = np("prod", "out-anywhere", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})
    deny = anp("cluster-deny-to-metadata", 10, {"namespaces": {}}, egress=[
        {"action": "Deny", "to": [{"networks": ["169.254.169.254/32"]}], "ports": [{"portNumber": {"port": 80, "protocol": "TCP"}}]}])
    (open_hit,) = findings(audit(cluster(egress_all)), "NP-PERM-007")
    assert open_hit.namespace == "prod"
    report = audit(cluster(egress_all, deny))
    assert not findings(report, "NP-PERM-007")
    (kept,) = findings(report, "NP-PERM-007", status="waived")
    assert "overridden by a higher tier: AdminNetworkPolicy/cluster-deny-to-metadata egress[0]" in kept.waiver
    # A deny for some pods only is no override: the others still reach it.
    partial = anp("deny-web", 10, {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}}, egress=[
        {"action": "Deny", "to": [{"networks": ["169.254.169.254/32"]}]}])
    assert findings(audit(cluster(egress_all, partial)), "NP-PERM-007")


# -- invariants over generated stacks of every kind ------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from audit.engine.connectivity import connections  # noqa: E402


def _pool() -> list[dict]:
    seen: dict[str, dict] = {}
    for module_cases in (test_admin.CASES, test_cilium.CASES, test_calico.CASES, CNP_CASES, MIXED_CASES):
        for case in module_cases:
            for obj in case[1]:
                seen.setdefault(yaml.safe_dump(obj, sort_keys=True), obj)
    # Names collide across cases (every BANP is "default"): keep one object per kind and name.
    unique: dict[tuple, dict] = {}
    for obj in seen.values():
        unique.setdefault((obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]), obj)
    return list(unique.values())


POOL = _pool()
STACKS = st.lists(st.sampled_from(POOL), min_size=1, max_size=5, unique_by=lambda o: (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]))
# Bounded for CI's budget; mutation runs (tools/mutate.py) use fewer examples.
PROPERTY = settings(max_examples=int(os.environ.get("NETPOL_PROPERTY_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _isolated(a: Analysis) -> dict[tuple[int, str], bool]:
    return {(c.id, d): a.is_isolated(c.id, d) for c in a.real_classes() if c.governed for d in ("Ingress", "Egress")}


@PROPERTY
@given(STACKS)
def test_default_deny_means_every_pod_is_isolated(objs):
    a = analysis_of(cluster(*objs), cni=False)
    for ns, cov in a.coverage.items():
        for d in ("Ingress", "Egress"):
            side = cov.direction(d)
            if side.default_deny:
                assert side.isolated_pods == side.pods
                assert all(a.is_isolated(c.id, d) for c in a.governed_classes(ns))
            assert not (side.default_deny and side.opened_by)


@PROPERTY
@given(STACKS, st.sampled_from(["prod", "staging", "other"]), st.sampled_from(["Ingress", "Egress"]))
def test_adding_a_selecting_policy_never_reduces_isolation(objs, ns, direction):
    before = _isolated(analysis_of(cluster(*objs), cni=False))
    deny = np(ns, "zz-added-deny", {"podSelector": {}, "policyTypes": [direction]})
    a = analysis_of(cluster(*objs, deny), cni=False)
    after = _isolated(a)
    assert all(after[k] for k, v in before.items() if v)
    assert all(a.is_isolated(c.id, direction) for c in a.governed_classes(ns))
    assert a.coverage[ns].direction(direction).isolated_pods == a.coverage[ns].direction(direction).pods


@PROPERTY
@given(STACKS)
def test_results_do_not_depend_on_document_order(objs):
    forward = analysis_of(cluster(*objs), cni=False)
    backward = analysis_of(cluster(*reversed(objs)), cni=False)
    assert [str(c) for c in connections(forward)] == [str(c) for c in connections(backward)]
    assert {n: (c.ingress.default_deny, c.egress.default_deny, c.ingress.isolated_pods, c.egress.isolated_pods)
            for n, c in forward.coverage.items()} == {n: (c.ingress.default_deny, c.egress.default_deny, c.ingress.isolated_pods,
                                                          c.egress.isolated_pods) for n, c in backward.coverage.items()}


@PROPERTY
@given(STACKS)
def test_an_allow_added_to_an_isolating_networkpolicy_never_removes_a_connection(objs):
    base = np("prod", "zz-isolate", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 1}]}]})
    wider = np("prod", "zz-isolate", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 1}]},
                                                                                                 {"from": [{"namespaceSelector": {}}]}]})

    def pairs(a: Analysis) -> dict[tuple[str, str], object]:
        return {(c.src, c.dst): c.conns for c in connections(a)}

    before = pairs(analysis_of(cluster(*objs, base), cni=False))
    after = pairs(analysis_of(cluster(*objs, wider), cni=False))
    for key, conns in before.items():
        assert key in after and (conns - after[key]).ranges == (), key  # type: ignore[operator,attr-defined]


@PROPERTY
@given(STACKS)
def test_no_policy_finding_only_where_no_kind_selects_a_pod(objs):
    report = audit(cluster(*objs))
    a = analysis_of(cluster(*objs))
    for f in findings(report, "NP-COV-001"):
        assert not a.policies_in(f.namespace)


def test_each_port_names_the_pass_rule_that_sent_it_on():
    text = cluster(anp("pass", 10, PROD, ingress=[
        {"name": "web", "action": "Pass", "from": STAGING_PEER, "ports": [{"portNumber": {"port": 80, "protocol": "TCP"}}]},
        {"name": "tls", "action": "Pass", "from": STAGING_PEER, "ports": [{"portNumber": {"port": 443, "protocol": "TCP"}}]}]),
        np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    a = analysis_of(text, cni=False)
    web, api = endpoint(a, "staging/web"), endpoint(a, "prod/api")
    assert a.allowed(web, api, 443).ingress.passed.rule == "AdminNetworkPolicy/pass ingress[1] (tls)"
    assert a.allowed(web, api, 80).ingress.passed.rule == "AdminNetworkPolicy/pass ingress[0] (web)"
    assert a.allowed(web, api, 8080).ingress.passed is None


def test_isolation_is_reported_even_when_a_higher_tier_decided_every_port():
    text = cluster(anp("allow-all", 1, PROD, ingress=[{"action": "Allow", "from": [ALL_NS]}]),
                   np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    a = analysis_of(text, cni=False)
    v = a.allowed(endpoint(a, "other/x"), endpoint(a, "prod/api"), 8080)
    assert v.allowed and v.ingress.isolated and v.ingress.policies == ("prod/deny",)
    assert v.ingress.decided.rule == "AdminNetworkPolicy/allow-all ingress[0]" and v.ingress.decided.tier == "admin"


def test_assume_enforced_flag_reaches_every_answer(tmp_path):
    from typer.testing import CliRunner

    from audit.cli import app
    path = tmp_path / "cluster.yaml"
    path.write_text(cluster(DENY_STAGING_CILIUM, CALICO_NODE))
    runner = CliRunner()
    plain = runner.invoke(app, ["reach", "staging/web", "prod/api", "-p", "8080", str(path)])
    planned = runner.invoke(app, ["reach", "staging/web", "prod/api", "-p", "8080", "--assume-enforced", str(path)])
    assert "ALLOWED" in plain.output.upper() and "DENIED" in planned.output.upper(), (plain.output, planned.output)
    lines = runner.invoke(app, ["connectivity", str(path)]).output
    assert "staging/web[Pod] => prod/api[Pod] : All Connections" in lines
    assert "staging/web[Pod] => prod/api[Pod]" not in runner.invoke(app, ["connectivity", "--assume-enforced", str(path)]).output


def test_peers_the_audit_cannot_evaluate_are_listed():
    nodes = anp("to-nodes", 10, PROD, egress=[{"action": "Allow", "to": [{"nodes": {}}]}])
    fqdn = cnp("fqdn", "Admin", 2, PROD, egress=[{"action": "Accept", "to": [{"domainNames": ["example.com"]}]}])
    report = audit(cluster(nodes, fqdn))
    hits = {(f.kind, f.name): f.message for f in findings(report, "NP-HYG-009")}
    assert hits[("AdminNetworkPolicy", "to-nodes")] == "spec.egress[0].to[0]: nodes matches nothing here (not in the inventory)"
    assert hits[("ClusterNetworkPolicy", "fqdn")] == "spec.egress[0].to[0]: domainNames matches nothing here (not in the inventory)"
    assert not findings(audit(cluster(anp("plain", 10, PROD, egress=[{"action": "Allow", "to": [ALL_NS]}]))), "NP-HYG-009")
