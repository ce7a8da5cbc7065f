"""Boundaries and branches of the engine, each as a positive and a negative case.

Written against mutation testing (tools/mutate.py): every rule here fails when one operator
or constant of the engine is wrong, and says which rule in its name.
"""

from __future__ import annotations

import pytest
import yaml

from audit.engine.kinds.networkpolicy import ParsedPolicy, parse_policy
from audit.engine.ports import ALL, NONE, PortSet, parse_port_set
from audit.engine.selectors import parse_selector
from audit.inventory import PolicyObject
from tests.conftest import audit, inventory
from tests.test_admin import PROD, STAGING_PEER, anp, banp, cluster, np
from tests.test_stack import ALL_NS, analysis_of, ciliumnp, cnp, endpoint, gnp


def parsed(spec: dict) -> ParsedPolicy:
    return parse_policy(PolicyObject("NetworkPolicy", "networking.k8s.io/v1", "prod", "p", spec))


# -- selectors: the apimachinery limits, at and past the boundary ---------------------------

@pytest.mark.parametrize("key,ok", [
    ("a" * 63, True), ("a" * 64, False),
    ("example.com/" + "a" * 63, True), ("example.com/" + "a" * 64, False),
    ("a" * 253 + "/x", True), ("a" * 254 + "/x", False),
    ("-a", False), ("a-", False), ("a_b.c-d", True), ("", False),
])
def test_label_key_limits(key, ok):
    _sel, errors = parse_selector({"matchLabels": {key: "v"}}, "s")
    assert (not errors) is ok, errors


@pytest.mark.parametrize("value,ok", [
    ("v" * 63, True), ("v" * 64, False), ("", True), ("a.b_c-d", True), ("-a", False), ("a-", False), ("a b", False),
])
def test_label_value_limits(value, ok):
    _sel, errors = parse_selector({"matchLabels": {"k": value}}, "s")
    assert (not errors) is ok, errors


@pytest.mark.parametrize("expr,labels,matches", [
    ({"key": "k", "operator": "In", "values": ["a", "b"]}, {"k": "b"}, True),
    ({"key": "k", "operator": "In", "values": ["a", "b"]}, {"k": "c"}, False),
    ({"key": "k", "operator": "In", "values": ["a"]}, {}, False),
    ({"key": "k", "operator": "NotIn", "values": ["a"]}, {"k": "a"}, False),
    ({"key": "k", "operator": "NotIn", "values": ["a"]}, {"k": "b"}, True),
    ({"key": "k", "operator": "NotIn", "values": ["a"]}, {}, True),  # NotIn matches objects that lack the key
    ({"key": "k", "operator": "Exists"}, {"k": ""}, True),
    ({"key": "k", "operator": "Exists"}, {}, False),
    ({"key": "k", "operator": "DoesNotExist"}, {}, True),
    ({"key": "k", "operator": "DoesNotExist"}, {"k": "x"}, False),
])
def test_expression_operators(expr, labels, matches):
    sel, errors = parse_selector({"matchExpressions": [expr]}, "s")
    assert not errors and sel.matches(labels) is matches


def test_match_labels_and_expressions_are_anded():
    sel, _ = parse_selector({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, "s")
    assert sel.matches({"a": "1", "b": "x"}) and not sel.matches({"a": "1"}) and not sel.matches({"b": "x"})


@pytest.mark.parametrize("expr,field", [
    ({"key": "k", "operator": "In", "values": []}, "s.matchExpressions[0].values"),
    ({"key": "k", "operator": "Exists", "values": ["a"]}, "s.matchExpressions[0].values"),
    ({"key": "k", "operator": "Has"}, "s.matchExpressions[0].operator"),
    ({"key": "k", "operator": "In", "values": ["a b"]}, "s.matchExpressions[0].values[0]"),
])
def test_expression_validation(expr, field):
    _sel, errors = parse_selector({"matchExpressions": [expr]}, "s")
    assert any(e.field == field for e in errors), [str(e) for e in errors]


# -- ports: the numbers at the edges ---------------------------------------------------------

@pytest.mark.parametrize("port,ok", [(1, True), (65535, True), (0, False), (65536, False)])
def test_port_number_limits(port, ok):
    p = parsed({"podSelector": {}, "ingress": [{"ports": [{"port": port}]}]})
    assert (p.policy is not None) is ok, p.errors


@pytest.mark.parametrize("port,end,ok", [(80, 80, True), (80, 81, True), (81, 80, False), (80, 65535, True), (80, 65536, False)])
def test_end_port_limits(port, end, ok):
    p = parsed({"podSelector": {}, "ingress": [{"ports": [{"port": port, "endPort": end}]}]})
    assert (p.policy is not None) is ok, p.errors


def test_end_port_equal_to_port_is_that_one_port():
    text = cluster(np("prod", "one", {"podSelector": {}, "ingress": [{"ports": [{"port": 8080, "endPort": 8080}]}]}))
    a = analysis_of(text, cni=False)
    x, api = endpoint(a, "other/x"), endpoint(a, "prod/api")
    assert a.allowed(x, api, 8080).allowed and not a.allowed(x, api, 8079).allowed and not a.allowed(x, api, 8081).allowed


@pytest.mark.parametrize("port,allowed", [(1, True), (65535, True), (2, False), (65534, False)])
def test_first_and_last_port(port, allowed):
    text = cluster(np("prod", "edges", {"podSelector": {}, "ingress": [{"ports": [{"port": 1}, {"port": 65535}]}]}))
    a = analysis_of(text, cni=False)
    assert a.allowed(endpoint(a, "other/x"), endpoint(a, "prod/api"), port).allowed is allowed


def test_port_set_algebra():
    a = PortSet.of({"TCP": [(1, 10), (20, 30)]})
    b = PortSet.of({"TCP": [(5, 25)], "UDP": [(53, 53)]})
    assert str(a | b) == "TCP 1-30,UDP 53"
    assert str(a & b) == "TCP 5-10,20-25"
    assert str(a - b) == "TCP 1-4,26-30"
    assert str(b - a) == "TCP 11-19,UDP 53"
    assert (ALL - a) | a == ALL and a - ALL == NONE and a & NONE == NONE and a | NONE == a
    assert PortSet.of({"TCP": [(1, 5), (6, 9)]}) == PortSet.of({"TCP": [(1, 9)]})  # adjacent ranges merge
    assert PortSet.of({"TCP": [(1, 5), (7, 9)]}).ranges == (("TCP", ((1, 5), (7, 9))),)  # a gap of one stays
    assert parse_port_set(str(a | b)) == a | b and parse_port_set("All Connections") == ALL and parse_port_set("No Connections") == NONE
    assert not NONE and ALL.is_everything and not a.is_everything


# -- Calico and Cilium selection stays inside a namespaced policy's namespace ---------------

def calico_np(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def test_a_namespaced_calico_policy_selects_only_its_namespace():
    deny = calico_np("staging", "deny-all", {"selector": "all()", "types": ["Ingress"]})
    a = analysis_of(cluster(deny), cni=False)
    assert a.is_isolated(endpoint(a, "staging/web"), "Ingress")
    assert not a.is_isolated(endpoint(a, "prod/web"), "Ingress")
    assert a.allowed(endpoint(a, "staging/web"), endpoint(a, "prod/web"), 80).allowed
    assert not a.allowed(endpoint(a, "prod/web"), endpoint(a, "staging/web"), 80).allowed


def test_a_namespaced_cilium_policy_selects_only_its_namespace():
    deny = ciliumnp("staging", "deny-all", {"endpointSelector": {}, "ingress": [{}]})
    a = analysis_of(cluster(deny), cni=False)
    assert a.is_isolated(endpoint(a, "staging/web"), "Ingress")
    assert not a.is_isolated(endpoint(a, "prod/web"), "Ingress")


def test_a_calico_namespace_selector_narrows_a_global_policy():
    deny = gnp("prod-only", None, {"selector": "all()", "namespaceSelector": "env == 'prod'", "types": ["Ingress"]})
    a = analysis_of(cluster(deny), cni=False)
    assert a.is_isolated(endpoint(a, "prod/api"), "Ingress") and not a.is_isolated(endpoint(a, "staging/web"), "Ingress")


def test_calico_rule_selectors_stay_in_a_namespaced_policy_namespace():
    allow = calico_np("prod", "from-web", {"selector": "all()", "types": ["Ingress"],
                                           "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]})
    a = analysis_of(cluster(allow), cni=False)
    api = endpoint(a, "prod/api")
    assert a.allowed(endpoint(a, "prod/web"), api, 8080).allowed
    assert not a.allowed(endpoint(a, "staging/web"), api, 8080).allowed  # app=web, but another namespace


def test_cilium_endpoints_stay_in_a_namespaced_policy_namespace_unless_named():
    own = ciliumnp("prod", "from-web", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "web"}}]}]})
    a = analysis_of(cluster(own), cni=False)
    api = endpoint(a, "prod/api")
    assert a.allowed(endpoint(a, "prod/web"), api, 8080).allowed and not a.allowed(endpoint(a, "staging/web"), api, 8080).allowed
    named = ciliumnp("prod", "from-staging-web", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [
        {"matchLabels": {"app": "web", "k8s:io.kubernetes.pod.namespace": "staging"}}]}]})
    a = analysis_of(cluster(named), cni=False)
    assert a.allowed(endpoint(a, "staging/web"), endpoint(a, "prod/api"), 8080).allowed
    assert not a.allowed(endpoint(a, "prod/web"), endpoint(a, "prod/api"), 8080).allowed


# -- default-deny judgements of every kind: positive and negative pairs --------------------

def prod_cov(*objs: dict, direction: str = "Ingress"):
    report = audit(cluster(*objs))
    row = next(n for n in report.namespaces if n.name == "prod")
    return (row.default_deny_ingress if direction == "Ingress" else row.default_deny_egress), row


@pytest.mark.parametrize("objs,expected", [
    ([np("prod", "d", {"podSelector": {}, "policyTypes": ["Ingress"]})], True),
    ([np("prod", "d", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]})], False),
    ([np("prod", "d", {"podSelector": {}, "ingress": [{}]})], False),  # allow-all is not deny
    ([np("prod", "d", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]})], False),  # every cluster pod
    ([np("prod", "d", {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]})], True),  # ports narrow it
    ([np("prod", "d", {"podSelector": {}, "policyTypes": ["Egress"]})], False),  # the other direction
    ([np("prod", "d", {"podSelector": {}, "egress": [{}]})], True),  # egress rules only: ingress is still implied
    ([np("staging", "d", {"podSelector": {}, "policyTypes": ["Ingress"]})], False),  # another namespace
], ids=["deny", "workload-only", "allow-all", "all-namespaces", "ports", "egress-type", "implied-ingress", "other-ns"])
def test_networkpolicy_default_deny(objs, expected):
    assert prod_cov(*objs)[0] is expected


@pytest.mark.parametrize("objs,expected", [
    ([ciliumnp("prod", "d", {"endpointSelector": {}, "ingress": [{}]})], True),
    ([ciliumnp("prod", "d", {"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]})], False),
    ([ciliumnp("prod", "d", {"endpointSelector": {}, "ingress": [{"fromEntities": ["all"]}]})], False),
    ([ciliumnp("prod", "d", {"endpointSelector": {}, "ingress": [{"fromEntities": ["cluster"]}]})], False),
    ([ciliumnp("prod", "d", {"endpointSelector": {}, "ingress": [{"fromEntities": ["world"]}]})], True),
    ([ciliumnp("prod", "d", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]})], True),  # `{}` endpoints of a namespaced policy: its own namespace only
    ([ciliumnp("prod", "d", {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80"}]}]}]})], True),
    ([ciliumnp("prod", "d", {"endpointSelector": {}, "egress": [{}]})], False),  # enforces egress only
    ([ciliumnp("prod", "d", {"endpointSelector": {}, "ingress": [{}], "enableDefaultDeny": {"ingress": False}})], False),
    ([ciliumnp("staging", "d", {"endpointSelector": {}, "ingress": [{}]})], False),
    ([{"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "d"},
       "spec": {"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "prod"}}, "ingress": [{}]}}], True),
    ([{"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "d"},
       "spec": {"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "staging"}}, "ingress": [{}]}}], False),
], ids=["deny", "workload-only", "entity-all", "entity-cluster", "entity-world", "endpoints-empty", "ports", "egress-only",
        "default-deny-off", "other-ns", "ccnp-ns", "ccnp-other-ns"])
def test_cilium_default_deny(objs, expected):
    assert prod_cov(*objs)[0] is expected


@pytest.mark.parametrize("objs,expected", [
    ([gnp("d", 10, {"selector": "all()", "types": ["Ingress"]})], True),
    ([gnp("d", 10, {"selector": "app == 'web'", "types": ["Ingress"]})], False),
    ([gnp("d", 10, {"selector": "!has(app)", "types": ["Ingress"]})], False),  # never judged on a made-up pod
    ([gnp("d", 10, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Allow"}]})], False),
    ([gnp("d", 10, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Allow", "protocol": "TCP"}]})], True),
    ([gnp("d", 10, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Pass"}]})], False),
    ([gnp("d", 10, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Deny"}]})], True),
    ([gnp("d", 10, {"selector": "all()", "types": ["Egress"]})], False),
    ([gnp("d", 10, {"selector": "all()", "namespaceSelector": "env == 'staging'", "types": ["Ingress"]})], False),
    ([calico_np("prod", "d", {"selector": "all()", "types": ["Ingress"]})], True),
    ([calico_np("staging", "d", {"selector": "all()", "types": ["Ingress"]})], False),
    ([gnp("deny", 100, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Deny"}]}),
      gnp("allow", 50, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Allow"}]})], False),  # the earlier allow wins
    ([gnp("deny", 50, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Deny"}]}),
      gnp("allow", 100, {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Allow"}]})], True),
], ids=["deny", "workload-only", "negated", "allow-all", "protocol", "pass", "deny-rule", "egress-type", "ns-selector-other",
        "namespaced", "namespaced-other", "allow-first", "deny-first"])
def test_calico_default_deny(objs, expected):
    assert prod_cov(*objs)[0] is expected


@pytest.mark.parametrize("objs,expected", [
    ([anp("d", 1, PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}])], True),
    ([anp("d", 1, PROD, ingress=[{"action": "Deny", "from": STAGING_PEER}])], False),
    ([anp("d", 1, PROD, ingress=[{"action": "Deny", "from": [ALL_NS], "ports": [{"portNumber": {"port": 80, "protocol": "TCP"}}]}])], False),
    ([anp("d", 1, PROD, ingress=[{"action": "Allow", "from": [ALL_NS]}, {"action": "Deny", "from": [ALL_NS]}])], False),
    ([anp("d", 1, PROD, ingress=[{"action": "Pass", "from": [ALL_NS]}, {"action": "Deny", "from": [ALL_NS]}])], False),
    ([anp("d", 1, {"namespaces": {"matchLabels": {"env": "staging"}}}, ingress=[{"action": "Deny", "from": [ALL_NS]}])], False),
    ([anp("d", 1, {"pods": {"namespaceSelector": PROD["namespaces"], "podSelector": {}}}, ingress=[{"action": "Deny", "from": [ALL_NS]}])], True),
    ([anp("d", 1, {"pods": {"namespaceSelector": PROD["namespaces"], "podSelector": {"matchLabels": {"app": "web"}}}},
          ingress=[{"action": "Deny", "from": [ALL_NS]}])], False),
    ([banp(PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}])], True),
    ([banp(PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}]), np("prod", "open", {"podSelector": {}, "ingress": [{}]})], False),
    ([cnp("d", "Baseline", 0, PROD, ingress=[{"action": "Deny", "from": [{"pods": {"namespaceSelector": {}, "podSelector": {}}}]}])], True),
    ([anp("d", 1, PROD, egress=[{"action": "Deny", "to": [ALL_NS]}])], False),
], ids=["deny", "some-peers", "one-port", "allow-first", "pass-first", "other-ns", "subject-pods-all", "subject-pods-some", "banp",
        "banp-under-allow-all", "cnp-baseline-pods-peer", "egress-rule"])
def test_admin_default_deny(objs, expected):
    assert prod_cov(*objs)[0] is expected


def test_egress_default_deny_is_judged_on_its_own():
    ok, row = prod_cov(np("prod", "d", {"podSelector": {}, "policyTypes": ["Egress"]}), direction="Egress")
    assert ok and not row.default_deny_ingress and row.isolated_egress == row.pods and row.isolated_ingress == 0


# -- written against surviving mutants (tools/mutate.py): each names the rule it holds ------

import ipaddress  # noqa: E402

from audit.engine.classes import parse_ip  # noqa: E402
from audit.engine.cni import detect_cni  # noqa: E402
from audit.engine.connectivity import connections  # noqa: E402
from audit.engine.kinds.admin import parse_admin  # noqa: E402
from audit.engine.kinds.clusternetwork import parse_cluster_network_policy  # noqa: E402
from audit.engine.kinds.networkpolicy import PortRule  # noqa: E402
from audit.engine.ports import resolve_ports  # noqa: E402
from audit.inventory import ContainerPort, Inventory  # noqa: E402
from audit.render.connectivity import namespace_matrix  # noqa: E402
from audit.report.build import namespaces_with_pods  # noqa: E402
from tests.conftest import findings  # noqa: E402
from tests.test_stack import CALICO_NODE, daemonset  # noqa: E402


def pod(ns: str, name: str, labels: dict | None = None, ip: str | None = None, ports: list | None = None, host: bool = False) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "i", **({"ports": ports} if ports else {})}]}
    if host:
        spec["hostNetwork"] = True
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "spec": spec}
    if ip:
        doc["status"] = {"phase": "Running", "podIP": ip}
    return doc


def docs(*objs: dict) -> str:
    import yaml
    return "\n---\n".join(yaml.safe_dump(o) for o in objs)


def ns_doc(name: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def test_port_set_edges():
    a = PortSet.of({"TCP": [(1, 10), (20, 30)]})
    assert a - NONE == a and NONE - a == NONE
    assert str(PortSet.of({"TCP": [(5, 10)]}) - PortSet.of({"TCP": [(1, 5)]})) == "TCP 6-10"  # a hole ending at the cursor
    assert str(PortSet.of({"TCP": [(5, 10)]}) - PortSet.of({"TCP": [(10, 20)]})) == "TCP 5-9"
    assert str(resolve_ports([(("UDP",), None, None)], None)) == "UDP 1-65535"  # a protocol with no port: all of them


def test_port_rule_matching():
    http = (ContainerPort(8080, "TCP", "http"),)
    assert PortRule("TCP", 80).matches(80, "TCP", None) and not PortRule("TCP", 80).matches(80, "UDP", None)
    assert PortRule("UDP").matches(53, "UDP", None) and not PortRule("UDP").matches(53, "TCP", None)
    assert PortRule("TCP", "http").matches(8080, "TCP", http) and not PortRule("TCP", "http").matches(8081, "TCP", http)
    assert not PortRule("TCP", "http").matches(8080, "TCP", (ContainerPort(8080, "TCP", "web"),))
    assert not PortRule("TCP", "http").matches(8080, "TCP", None)
    assert not PortRule("UDP", "http").matches(8080, "UDP", http)  # the name is TCP's
    ranged = PortRule("TCP", 80, 90)
    assert ranged.matches(80, "TCP", None) and ranged.matches(90, "TCP", None) and not ranged.matches(91, "TCP", None)
    assert not ranged.matches(79, "TCP", None)


@pytest.mark.parametrize("spec,ok", [
    ({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, True),
    ({"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]}, False),  # more than two
    ({"podSelector": {}, "ingress": [{"ports": [{"port": True}]}]}, False),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": "a" * 15}]}]}, True),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": "a" * 16}]}]}, False),
])
def test_networkpolicy_validation_edges(spec, ok):
    p = parsed(spec)
    assert (p.policy is not None) is ok, p.errors


def test_the_same_selector_invalid_twice_is_invalid_twice():
    for _ in range(2):
        _sel, errors = parse_selector({"matchLabels": {"k": "bad value"}}, "s")
        assert errors
    for raw in (5, "x", [], {"matchLabels": []}, {"matchLabels": False}, {"matchLabels": {"k": 1}}):
        assert parse_selector(raw, "s")[1], raw


def anp_doc(spec: dict, kind: str = "AdminNetworkPolicy") -> PolicyObject:
    return PolicyObject(kind, "policy.networking.k8s.io/v1alpha1", None, "p", spec)


DENY_ALL_IN = [{"action": "Deny", "from": [{"namespaces": {}}]}]


@pytest.mark.parametrize("spec,ok", [
    ({"priority": 0, "subject": {"namespaces": {}}}, True),
    ({"priority": 1000, "subject": {"namespaces": {}}}, True),
    ({"priority": -1, "subject": {"namespaces": {}}}, False),
    ({"priority": 1001, "subject": {"namespaces": {}}}, False),
    ({"priority": 1, "subject": {}}, False),
    ({"priority": 1, "subject": "x"}, False),
    ({"priority": 1, "subject": {"namespaces": {}, "pods": {"podSelector": {}}}}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": DENY_ALL_IN * 100}, True),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": DENY_ALL_IN * 101}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": "x"}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": []}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": "x"}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}], "ports": []}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}], "ports": "x"}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}],
                                                              "ports": [{"portNumber": {"port": 1, "protocol": "TCP"}}, {"portNumber": {"port": 65535, "protocol": "UDP"}}]}]}, True),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"portNumber": {"port": 0}}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"portNumber": {"port": 65536}}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"portNumber": {"port": True}}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}],
                                                              "ports": [{"portRange": {"start": 1, "end": 65535}}]}]}, True),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}],
                                                              "ports": [{"portRange": {"start": 0, "end": 10}}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}],
                                                              "ports": [{"portRange": {"start": 10, "end": 65536}}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}],
                                                              "ports": [{"portRange": {"start": 10, "end": 10}}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}],
                                                              "ports": [{"portRange": {"start": True, "end": 10}}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"namedPort": 5}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"namedPort": "Bad_Name"}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"portName": "http"}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "egress": [{"action": "Deny", "to": [{"networks": ["10.0.0.0/8"]}], "ports": [{"namedPort": "http"}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "egress": [{"action": "Deny", "to": [{"nodes": {}}], "ports": [{"namedPort": "http"}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "egress": [{"action": "Deny", "to": [{"namespaces": {}}], "ports": [{"namedPort": "http"}]}]}, True),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {"sameLabels": ["env"]}}]}]}, True),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {"sameLabels": "env"}}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {"sameLabels": [""]}}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {"sameLabels": ["a"], "notSameLabels": ["b"]}}]}]}, False),
    ({"priority": 1, "subject": {"pods": {"podSelector": {"matchLabels": {"a": "x y"}}}}}, False),
    ({"priority": 1, "subject": {"pods": {"namespaceSelector": {"matchLabels": {"a": "x y"}}, "podSelector": {}}}}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"pods": {"namespaceSelector": {"matchLabels": {"a": "x y"}}}}]}]}, False),
    ({"priority": 1, "subject": {"namespaces": {}}, "egress": [{"action": "Deny", "to": [{"nodes": {"matchLabels": {"a": "x y"}}}]}]}, False),
])
def test_admin_validation_edges(spec, ok):
    parsed_admin = parse_admin(anp_doc(spec))
    assert (parsed_admin.policy is not None) is ok, parsed_admin.errors


def cnp_spec(**rule) -> dict:
    return {"tier": "Admin", "priority": 1, "subject": {"namespaces": {}}, **rule}


IN_ALL = {"action": "Deny", "from": [{"namespaces": {}}]}


@pytest.mark.parametrize("spec,ok", [
    ({"tier": "Admin", "priority": 0, "subject": {"namespaces": {}}}, True),
    ({"tier": "Admin", "priority": 1000, "subject": {"namespaces": {}}}, True),
    ({"tier": "Admin", "priority": -1, "subject": {"namespaces": {}}}, False),
    (cnp_spec(ingress=[IN_ALL] * 25), True),
    (cnp_spec(ingress="x"), False),
    (cnp_spec(ingress=[{**IN_ALL, "name": "n" * 100}]), True),
    (cnp_spec(ingress=[{**IN_ALL, "name": "n" * 101}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "name": 5}]), False),
    (cnp_spec(ingress=[{"action": "Deny", "from": [{"namespaces": {}}] * 25}]), True),
    (cnp_spec(ingress=[{"action": "Deny", "from": [{"namespaces": {}}] * 26}]), False),
    (cnp_spec(ingress=[{"action": "Deny", "from": "x"}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": {"destinationPort": {"number": 1}}}] * 25}]), True),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": {"destinationPort": {"number": 1}}}] * 26}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": []}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": "x"}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": {"destinationPort": {"number": 65535}}}]}]), True),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": {"destinationPort": {"number": 65536}}}]}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": {"destinationPort": {"range": {"start": 1, "end": 65535}}}}]}]), True),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": {"destinationPort": {"range": {"start": 1, "end": 65536}}}}]}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": {"destinationPort": {"range": {"start": True, "end": 5}}}}]}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": {"destinationPort": {"number": 1}}, "udp": {}}]}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": ["tcp"]}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"destinationNamedPort": 5}]}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": {"destinationPort": {"number": 1}, "x": 1}}]}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": "x"}]}]), False),
    (cnp_spec(ingress=[{**IN_ALL, "protocols": [{"tcp": {"destinationPort": {"number": 1, "range": {"start": 1, "end": 2}}}}]}]), False),
    (cnp_spec(egress=[{"action": "Accept", "to": [{"domainNames": []}]}]), False),
    (cnp_spec(egress=[{"action": "Accept", "to": [{"domainNames": "x"}]}]), False),
    (cnp_spec(egress=[{"action": "Accept", "to": [{"namespaces": {}}], "protocols": [{"destinationNamedPort": "http"}]}]), True),
    (cnp_spec(egress=[{"action": "Accept", "to": [{"networks": ["10.0.0.0/8"]}], "protocols": [{"destinationNamedPort": "http"}]}]), False),
    (cnp_spec(egress=[{"action": "Accept", "to": [{"domainNames": ["a.io"]}], "protocols": [{"destinationNamedPort": "http"}]}]), False),
    ({"tier": "Admin", "priority": 1, "subject": {"namespaces": {"matchLabels": {"a": "x y"}}}}, False),
    ({"tier": "Admin", "priority": 1, "subject": {"pods": {"namespaceSelector": {"matchLabels": {"a": "x y"}}, "podSelector": {}}}}, False),
    ({"tier": "Admin", "priority": 1, "subject": {"namespaces": {}}, "ports": []}, False),
])
def test_cluster_network_policy_validation_edges(spec, ok):
    policy, errors = parse_cluster_network_policy(PolicyObject("ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2", None, "p", spec))
    assert (policy is not None) is ok, errors


def test_unknown_cnp_field_ports_says_protocols():
    _policy, errors = parse_cluster_network_policy(PolicyObject("ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2", None, "p",
                                                                  cnp_spec(ingress=[{**IN_ALL, "ports": []}])))
    assert any("under protocols" in e.message for e in errors)
    _policy, errors = parse_cluster_network_policy(PolicyObject("ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2", None, "p",
                                                                  cnp_spec(ingress=[{**IN_ALL, "extra": 1}])))
    assert errors and not any("under protocols" in e.message for e in errors)


def test_same_and_not_same_labels_peers():
    """v1alpha1 before v0.1.5: peers in namespaces with the same (or a different) value of a label than the subject's."""
    text = docs(ns_doc("a1", {"tenant": "a"}), ns_doc("a2", {"tenant": "a"}), ns_doc("b1", {"tenant": "b"}), ns_doc("n1"),
                pod("a1", "x"), pod("a2", "y"), pod("b1", "z"), pod("n1", "w"),
                {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "tenancy"},
                 "spec": {"priority": 1, "subject": {"namespaces": {}}, "ingress": [
                     {"action": "Allow", "from": [{"namespaces": {"sameLabels": ["tenant"]}}]},
                     {"action": "Deny", "from": [{"namespaces": {"notSameLabels": ["tenant"]}}]}]}})
    a = analysis_of(text, cni=False)
    x, y, z, w = (endpoint(a, r) for r in ("a1/x", "a2/y", "b1/z", "n1/w"))
    assert a.allowed(y, x, 80).ingress.decided.action == "Allow"  # same tenant
    assert not a.allowed(z, x, 80).allowed  # other tenant: denied
    assert not a.allowed(w, x, 80).allowed  # no tenant label vs tenant=a: not the same, denied
    assert a.allowed(x, w, 80).ingress.decided.action == "Deny"  # a subject without the label: nobody is "same"
    assert a.egress_signature(x) is not None  # ingress rules only: egress shared
    egress = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "out"},
              "spec": {"priority": 2, "subject": {"namespaces": {}}, "egress": [{"action": "Deny", "to": [{"namespaces": {"notSameLabels": ["tenant"]}}]}]}}
    a = analysis_of(text + "\n---\n" + docs(egress), cni=False)
    x, y, z = (endpoint(a, r) for r in ("a1/x", "a2/y", "b1/z"))
    assert a.egress_signature(x) is None  # the peer depends on the source's namespace
    assert a.allowed(x, y, 80).allowed and not a.allowed(x, z, 80).allowed and not a.allowed(z, x, 80).allowed and a.allowed(z, z, 80).allowed


def test_admin_pod_peers_match_only_pods_they_name():
    base = docs(ns_doc("p", {"env": "prod"}), ns_doc("s", {"env": "staging"}), pod("p", "api", {"app": "api"}),
                pod("s", "web", {"app": "web"}), pod("s", "job", {"app": "job"}), pod("s", "node-agent", {"app": "web"}, host=True))
    deny = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "no-web"},
            "spec": {"priority": 1, "subject": {"namespaces": {"matchLabels": {"env": "prod"}}}, "ingress": [
                {"action": "Deny", "from": [{"pods": {"namespaceSelector": {"matchLabels": {"env": "staging"}}, "podSelector": {"matchLabels": {"app": "web"}}}}]},
                {"action": "Deny", "from": [{"namespaces": {"matchLabels": {"env": "nope"}}}]}]}}
    a = analysis_of(base + "\n---\n" + docs(deny), cni=False)
    api = endpoint(a, "p/api")
    assert not a.allowed(endpoint(a, "s/web"), api, 80).allowed
    assert a.allowed(endpoint(a, "s/job"), api, 80).allowed
    host = a.find_workload("s", "node-agent")
    assert host and a.allowed(host[0], api, 80).allowed  # hostNetwork pods are never a pod peer
    v = a.allowed(host[0], api, 80)
    assert not v.egress.governed and not v.egress.isolated and "not governed" in v.egress.explain()


def test_ip_addresses_of_pods_meet_network_peers():
    text = docs(ns_doc("p"), ns_doc("q"), pod("p", "api", {"app": "api"}, ip="10.1.2.3"), pod("q", "v6", {"app": "v6"}, ip="fd00::5"),
                pod("q", "web", {"app": "web"}, ip="10.9.9.9"),
                {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "no-ten"},
                 "spec": {"priority": 1, "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "q"}}},
                          "egress": [{"action": "Deny", "to": [{"networks": ["10.1.0.0/16", "fd00::/64"]}]}]}})
    a = analysis_of(text, cni=False)
    web, api, v6 = endpoint(a, "q/web"), endpoint(a, "p/api"), endpoint(a, "q/v6")
    assert not a.allowed(web, api, 80).allowed  # the pod's IP is in the denied network
    assert not a.allowed(web, v6, 80).allowed  # IPv6 too
    assert a.allowed(api, web, 80).allowed
    assert parse_ip("10.1.2.3") == ipaddress.IPv4Address("10.1.2.3") and parse_ip("fd00::5") == ipaddress.IPv6Address("fd00::5")
    assert parse_ip("nope") is None


@pytest.mark.parametrize("ip,inside", [("10.0.0.127", True), ("10.0.0.128", False), ("10.0.0.255", False), ("10.0.1.0", False), ("10.0.0.0", True)])
def test_ipblock_except_boundaries_on_pod_ips(ip, inside):
    text = docs(ns_doc("p"), ns_doc("q"), pod("p", "api", {"app": "api"}), pod("q", "web", {"app": "web"}, ip=ip),
                np("p", "from-block", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.128/25"]}}]}]}))
    a = analysis_of(text, cni=False)
    assert a.allowed(endpoint(a, "q/web"), endpoint(a, "p/api"), 80).allowed is inside


def test_pod_only_peers_stay_in_their_own_policy_namespace():
    """Two namespaces with the same `from: podSelector app=web`: each admits only its own web pods."""
    rule = {"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}
    text = docs(ns_doc("a"), ns_doc("b"), pod("a", "web", {"app": "web"}), pod("a", "api", {"app": "api"}),
                pod("b", "web", {"app": "web"}), pod("b", "api", {"app": "api"}), np("a", "p", rule), np("b", "p", rule))
    pairs = [("a", "a"), ("b", "a"), ("b", "b"), ("a", "b")]
    for order in (pairs, pairs[::-1]):
        a = analysis_of(text, cni=False)
        for src_ns, dst_ns in order:
            expected = src_ns == dst_ns
            assert a.allowed(endpoint(a, f"{src_ns}/web"), endpoint(a, f"{dst_ns}/api"), 80).allowed is expected, (src_ns, dst_ns)


def test_named_ports_from_outside_resolve_per_destination():
    text = docs(ns_doc("p"), pod("p", "a", {"tier": "x", "app": "a"}, ports=[{"containerPort": 8080, "name": "http"}]),
                pod("p", "b", {"tier": "x", "app": "b"}, ports=[{"containerPort": 9090, "name": "http"}]),
                np("p", "http-from-anywhere", {"podSelector": {"matchLabels": {"tier": "x"}}, "ingress": [
                    {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": "http"}]}]}))
    lines = {str(c) for c in connections(analysis_of(text, cni=False))}
    assert "0.0.0.0-255.255.255.255[External] => p/a[Pod] : TCP 8080" in lines and "0.0.0.0-255.255.255.255[External] => p/b[Pod] : TCP 9090" in lines


def test_classes_that_share_namespace_policies_but_not_other_kinds_are_kept_apart():
    admin_ingress = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "guard-api"},
                     "spec": {"priority": 1, "subject": {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "api"}}}},
                              "ingress": [{"action": "Deny", "from": [{"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "s"}}}]}],
                              "egress": [{"action": "Deny", "to": [{"networks": ["192.0.2.0/24"]}]}]}}
    text = docs(ns_doc("p"), ns_doc("s"), pod("p", "api", {"app": "api"}), pod("p", "db", {"app": "db"}), pod("s", "web", {"app": "web"}),
                np("p", "same", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]}), admin_ingress)
    lines = {str(c) for c in connections(analysis_of(text, cni=False))}
    assert "s/web[Pod] => p/db[Pod] : All Connections" in lines
    assert not any(line.startswith("s/web[Pod] => p/api[Pod]") for line in lines)
    # Two classes under admin policies of their own and the same NetworkPolicy share nothing.
    admin_db = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "db-port"},
                "spec": {"priority": 2, "subject": {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "db"}}}},
                         "ingress": [{"action": "Allow", "from": [{"namespaces": {}}], "ports": [{"portNumber": {"port": 1, "protocol": "TCP"}}]}]}}
    for order in ((admin_ingress, admin_db), (admin_db, admin_ingress)):
        both = docs(ns_doc("p"), ns_doc("s"), pod("p", "api", {"app": "api"}), pod("p", "db", {"app": "db"}), pod("s", "web", {"app": "web"}),
                    np("p", "same", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]}), *order)
        lines = {str(c) for c in connections(analysis_of(both, cni=False))}
        assert "s/web[Pod] => p/db[Pod] : All Connections" in lines
        assert not any(line.startswith("s/web[Pod] => p/api[Pod]") for line in lines)
        # db reaches every address (one merged range); api every address but 192.0.2.0/24.
        assert "p/db[Pod] => 0.0.0.0-255.255.255.255[External] : All Connections" in lines
        assert {line for line in lines if line.startswith("p/api[Pod] => ") and "External" in line} == {
            "p/api[Pod] => 0.0.0.0-192.0.1.255[External] : All Connections",
            "p/api[Pod] => 192.0.3.0-255.255.255.255[External] : All Connections"}


def test_calico_classes_with_different_own_side_rules_are_kept_apart():
    text = docs(ns_doc("p"), pod("p", "web", {"app": "web"}), pod("p", "api", {"app": "api"}), pod("p", "db", {"app": "db"}),
                gnp("egress", 10, {"selector": "all()", "types": ["Egress"], "egress": [
                    {"action": "Allow", "source": {"selector": "app == 'web'"}, "destination": {"selector": "app == 'db'"}}]}))
    lines = {str(c) for c in connections(analysis_of(text, cni=False))}
    assert "p/web[Pod] => p/db[Pod] : All Connections" in lines
    assert not any(line.startswith("p/api[Pod] => p/db") for line in lines)


def test_an_admin_policy_on_every_namespace_governs_the_ingress_controller_too():
    from tests.test_ingress import SHOP

    deny = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "no-shop"},
            "spec": {"priority": 1, "subject": {"namespaces": {}}, "egress": [
                {"action": "Deny", "to": [{"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}}]}]}}
    before = [str(c) for c in connections(analysis_of(SHOP, cni=False)) if c.src == "{ingress-controller}"]
    after = [str(c) for c in connections(analysis_of(SHOP + "\n---\n" + docs(deny), cni=False)) if c.src == "{ingress-controller}"]
    assert any("shop/" in line for line in before) and not any("shop/" in line for line in after)


def test_namespace_matrix_counts_pairs():
    text = docs(ns_doc("p"), ns_doc("q"), pod("p", "a"), pod("p", "b"), pod("q", "c"))
    a = analysis_of(text, cni=False)
    names, counts = namespace_matrix(list(connections(a)), namespaces_with_pods(a))
    assert names == ["external", "p", "q"]
    assert counts[("p", "p")] == 2 and counts[("p", "q")] == 2 and counts[("q", "p")] == 2 and counts[("external", "q")] == 1


def test_real_dns_pods_are_the_dns_target():
    egress_to = lambda labels: np("app", "dns", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{  # noqa: E731
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}, "podSelector": {"matchLabels": labels}}],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]})
    base = docs(ns_doc("app"), ns_doc("kube-system"), pod("app", "web", {"app": "web"}),
                pod("kube-system", "coredns", {"k8s-app": "kube-dns"}), pod("kube-system", "metrics", {"k8s-app": "metrics"}))
    assert not findings(audit(base + "\n---\n" + docs(egress_to({"k8s-app": "kube-dns"}))), "NP-DNS-001")
    assert findings(audit(base + "\n---\n" + docs(egress_to({"k8s-app": "metrics"}))), "NP-DNS-001")


def test_the_assumed_dns_pod_serves_53_by_name():
    text = docs(ns_doc("app"), pod("app", "web", {"app": "web"}), np("app", "dns-by-name", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"port": "dns", "protocol": "UDP"}, {"port": "dns-tcp", "protocol": "TCP"}]}]}))
    report = audit(text)
    assert not findings(report, "NP-DNS-001") and not findings(report, "NP-DNS-002")


def test_a_namespace_with_only_an_invalid_policy_says_so():
    text = docs(ns_doc("p"), pod("p", "a"), np("p", "broken", {"podSelector": {"matchLabels": {"a": "x y"}}}))
    (hit,) = [f for f in findings(audit(text), "NP-COV-001") if f.namespace == "p"]
    assert "present but invalid: broken" in hit.message


def test_host_network_workloads_count_as_workloads():
    text = docs(ns_doc("p"), pod("p", "a"), pod("p", "agent", host=True))
    row = next(n for n in audit(text).namespaces if n.name == "p")
    assert row.workloads == 2 and row.pods == 1 and row.host_network_pods == 1


def test_coverage_reasons_name_what_decided():
    ok, row = prod_cov(banp(PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}]))
    assert ok and row.ingress_reason.startswith("default-deny ingress by BaselineAdminNetworkPolicy/default")
    ok, row = prod_cov(anp("first", 1, PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}]),
                       np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    assert ok and row.ingress_reason.startswith("default-deny ingress by AdminNetworkPolicy/first")  # the admin tier decides first
    only_labelled = docs(ns_doc("w"), pod("w", "a", {"app": "x"}), pod("w", "b", {"app": "x"}),
                         np("w", "workload", {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress"]}))
    row = next(n for n in audit(only_labelled).namespaces if n.name == "w")
    assert not row.default_deny_ingress and "new pods" in row.ingress_reason and row.isolated_ingress == row.pods == 2
    empty = docs(ns_doc("e"), np("e", "workload", {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress"]}))
    row = next(n for n in audit(empty).namespaces if n.name == "e")
    assert not row.default_deny_ingress and row.ingress_reason.startswith("no policy with an empty podSelector")
    subject_pods = docs(ns_doc("w", {"env": "w"}), pod("w", "a", {"app": "x"}),
                        anp("pods", 1, {"pods": {"namespaceSelector": {"matchLabels": {"env": "w"}}, "podSelector": {"matchLabels": {"app": "x"}}}},
                            ingress=[{"action": "Deny", "from": [ALL_NS]}]))
    row = next(n for n in audit(subject_pods).namespaces if n.name == "w")
    assert not row.default_deny_ingress and row.isolated_ingress == 1  # its current pod, not new ones


def test_a_whole_namespace_policy_counts_in_an_empty_namespace():
    text = docs(ns_doc("e", {"env": "x"}), ns_doc("p"), pod("p", "a"),
                {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "deny"},
                 "spec": {"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "e"}}, "ingress": [{}]}})
    assert "e" not in {f.namespace for f in findings(audit(text), "NP-COV-001")}


def test_credit_takes_the_best_of_several_cni_components():
    deny = anp("deny", 10, PROD, ingress=[{"action": "Deny", "from": [ALL_NS]}])
    flannel = daemonset("kube-flannel-ds", "docker.io/flannel/flannel:v0.25.1")
    ovn = daemonset("ovnkube-node", "ovn-kubernetes/ovn-daemonset:v1", env={"OVN_ADMIN_NETWORK_POLICY_ENABLE": "true"})
    knp = daemonset("kube-network-policies", "registry.k8s.io/networking/kube-network-policies@sha256:0123")  # version unknown
    assert analysis_of(cluster(deny, flannel, knp)).assumed  # no, then conditional: conditional
    assert not analysis_of(cluster(deny, CALICO_NODE, ovn)).assumed  # no (Calico 3.28), then yes: yes
    assert not analysis_of(cluster(deny, ovn, CALICO_NODE)).assumed and not analysis_of(cluster(deny, ovn, CALICO_NODE)).unenforced


def test_cilium_host_policies_and_cidr_sets():
    host_only = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "host"},
                 "spec": {"nodeSelector": {}, "ingressDeny": [{"fromEntities": ["all"]}]}}
    a = analysis_of(cluster(host_only), cni=False)
    assert a.allowed(endpoint(a, "other/x"), endpoint(a, "prod/api"), 80).allowed  # it selects nodes, not pods
    bad_set = ciliumnp("prod", "bad", {"endpointSelector": {}, "egress": [{"toCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["nope"]}]}]})
    assert findings(audit(cluster(bad_set)), "NP-HYG-007")
    l7 = ciliumnp("prod", "l7", {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                                                                   "rules": {"http": [{"method": "GET"}]}}]}]})
    (hit,) = findings(audit(cluster(l7)), "NP-HYG-009")
    assert hit.message == "HTTP rules restrict spec.ingress[0].toPorts[0]: judged at layer 4 only"
    any_protocol = ciliumnp("prod", "l7", {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80"}],
                                                                                              "rules": {"http": [{"method": "GET"}]}}]}]})
    (bad,) = findings(audit(cluster(any_protocol)), "NP-HYG-007")
    assert bad.message == "spec.ingress[0].toPorts[0].ports: L7 rules can only apply to TCP (not ANY) except for DNS rules"


def coredns_helm(selector_labels: dict, pod_labels: dict) -> str:
    """CoreDNS installed by its Helm chart: the kube-dns Service kept, pods labelled its own way."""
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"},
           "spec": {"selector": selector_labels, "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}
    return docs(ns_doc("app"), ns_doc("kube-system"), pod("app", "web", {"app": "web"}),
                pod("kube-system", "coredns-abc", pod_labels, ports=[{"containerPort": 53, "protocol": "UDP", "name": "dns"}]), svc)


def dns_allow_to(labels: dict) -> dict:
    return np("app", "dns", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}, "podSelector": {"matchLabels": labels}}],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]})


HELM = {"app.kubernetes.io/name": "coredns", "app.kubernetes.io/instance": "coredns"}


def test_dns_pods_are_the_ones_the_kube_dns_service_selects():
    cluster_text = coredns_helm(HELM, {**HELM, "pod-template-hash": "abc"})
    right = audit(cluster_text + "\n---\n" + docs(dns_allow_to({"app.kubernetes.io/name": "coredns"})))
    assert not findings(right, "NP-DNS-001")  # the allow names the real pods
    wrong = audit(cluster_text + "\n---\n" + docs(dns_allow_to({"k8s-app": "kube-dns"})))
    (hit,) = findings(wrong, "NP-DNS-001")  # the conventional label names nothing here: DNS is broken
    assert "kube-system/kube-dns Service" in hit.message
    fix = next(iter(yaml.safe_load_all(hit.fix_yaml)))
    assert fix["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"] == HELM  # the fix names the real pods
    assert any("Service selects" in n for n in right.scan.notices)


def test_only_the_named_service_in_the_dns_namespace_names_the_dns_pods():
    other = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a-metrics", "namespace": "kube-system"},
             "spec": {"selector": {"app": "metrics"}}}
    text = docs(other, pod("kube-system", "metrics-abc", {"app": "metrics"})) + "\n---\n" + coredns_helm(HELM, HELM)
    a = analysis_of(text, cni=False)
    (dns,) = a.dns_classes
    assert a.classes[dns].label_map == HELM  # not the pods of the Service listed first


def test_without_a_service_the_labels_then_an_assumed_pod():
    text = docs(ns_doc("app"), pod("app", "web", {"app": "web"}), dns_allow_to({"k8s-app": "kube-dns"}))
    report = audit(text)
    assert not findings(report, "NP-DNS-001")
    assert any("assumed pod" in n for n in report.scan.notices)
    a = analysis_of(text, cni=False)
    (dns,) = a.dns_classes
    assert a.classes[dns].virtual


def test_a_service_that_selects_no_pod_falls_back_to_the_labels():
    text = coredns_helm({"app": "nothing"}, {"k8s-app": "kube-dns"})
    a = analysis_of(text, cni=False)
    (dns,) = a.dns_classes
    assert not a.classes[dns].virtual and "labelled" in a.dns_note


def test_dns_location_is_configurable():
    from audit.config import parse_config
    text = docs(ns_doc("app"), ns_doc("dns"), pod("app", "web"), pod("dns", "resolver", {"role": "dns"}),
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "resolver", "namespace": "dns"}, "spec": {"selector": {"role": "dns"}}})
    cfg = parse_config({"dns": {"namespace": "dns", "service": "resolver"}})
    a = analysis_of(text, cni=False)
    assert a.classes[a.dns_classes[0]].virtual  # the default location has nothing
    from audit.engine.analysis import Analysis
    b = Analysis(inventory(text), cfg.dns)
    assert not b.classes[b.dns_classes[0]].virtual and b.dns_target.labels == (("role", "dns"),)
    with pytest.raises(Exception, match=r"dns\.serviceName"):
        parse_config({"dns": {"serviceName": "x"}})


def test_the_default_credits_only_what_the_cni_enforces():
    from audit.engine.analysis import Analysis
    inv = inventory(cluster(ciliumnp("prod", "d", {"endpointSelector": {}, "ingress": [{}]}), CALICO_NODE))
    a = Analysis(inv, cni=detect_cni(inv))  # no assume_enforced given
    assert a.unenforced and not a.policies and [p.key for p in a.unenforced_policies] == ["CiliumNetworkPolicy/prod/d"]


def test_ipv6_pods_meet_ipv6_ip_blocks():
    text = docs(ns_doc("p"), ns_doc("q"), pod("p", "api", {"app": "api"}), pod("q", "v6", {"app": "v6"}, ip="fd00::5"),
                pod("q", "v4", {"app": "v4"}, ip="10.0.0.5"),
                np("p", "from-v6", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "fd00::/64"}}]}]}))
    a = analysis_of(text, cni=False)
    api = endpoint(a, "p/api")
    assert a.allowed(endpoint(a, "q/v6"), api, 80).allowed and not a.allowed(endpoint(a, "q/v4"), api, 80).allowed


def test_an_admin_allow_into_a_data_port_is_a_cross_environment_exposure():
    """NetworkPolicy admits only the database's own namespace; an admin-tier Allow opens it to
    staging: the exposure check must follow the stack, not the NetworkPolicy peers alone."""
    text = docs(ns_doc("prod", {"env": "prod"}), ns_doc("staging", {"env": "staging"}),
                pod("prod", "db", {"app": "db"}, ports=[{"containerPort": 5432}]), pod("prod", "api", {"app": "api"}),
                pod("staging", "web", {"app": "web"}),
                np("prod", "db-from-api", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": 5432}]}]}))
    assert not [f for f in findings(audit(text), "NP-EXP-002") if f.namespace == "prod"]
    opened = text + "\n---\n" + docs(anp("staging-to-db", 5, {"pods": {"namespaceSelector": {"matchLabels": {"env": "prod"}},
                                                                      "podSelector": {"matchLabels": {"app": "db"}}}},
                                           ingress=[{"action": "Allow", "from": [{"namespaces": {"matchLabels": {"env": "staging"}}}]}]))
    assert [f for f in findings(audit(opened), "NP-EXP-002") if f.namespace == "prod"]


def statefulset_pods(ns: str, name: str, n: int, labels: dict) -> list[dict]:
    """A StatefulSet's pods as the API serves them: each with its own per-pod labels."""
    return [{"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"{name}-{i}", "namespace": ns,
        "labels": {**labels, "statefulset.kubernetes.io/pod-name": f"{name}-{i}", "apps.kubernetes.io/pod-index": str(i),
                   "controller-revision-hash": f"{name}-7d9f"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name, "controller": True, "uid": "u"}]},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 5432}]}]},
        "status": {"phase": "Running", "podIP": f"10.0.0.{10 + i}"}} for i in range(n)]


def test_a_statefulset_is_one_workload_with_one_finding_per_check():
    text = docs(ns_doc("db"), *statefulset_pods("db", "pg", 3, {"app": "pg"}))
    report = audit(text)
    ids = [f.id for f in report.findings]
    assert len(ids) == len(set(ids))  # fingerprints are unique
    row = next(n for n in report.namespaces if n.name == "db")
    assert row.workloads == 1 and row.pods == 3
    for f in report.findings:
        assert f.objects.count("db/pg[StatefulSet]") <= 1


def test_a_policy_naming_one_statefulset_pod_is_still_evaluated_per_pod():
    only_pg0 = np("db", "pg-0-from-app", {"podSelector": {"matchLabels": {"statefulset.kubernetes.io/pod-name": "pg-0"}},
                                          "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "app"}}}]}]})
    text = docs(ns_doc("db"), ns_doc("app"), ns_doc("other"), pod("app", "web"), pod("other", "x"), *statefulset_pods("db", "pg", 3, {"app": "pg"}), only_pg0)
    a = analysis_of(text, cni=False)
    pg = a.find_workload("db", "pg")
    assert len(pg) == 3
    x = endpoint(a, "other/x")
    verdicts = sorted(a.allowed(x, cid, 5432).allowed for cid in pg)
    assert verdicts == [False, True, True]  # pg-0 is isolated, its siblings are not
    report = audit(text)
    assert len({f.id for f in report.findings}) == len(report.findings)


@pytest.mark.parametrize("ports,ok", [
    # The CRD types port as a string; the agent parses it as Go's ParseUint(port, 0, 16) or a service name.
    ([{"port": "80"}], True), ([{"port": "65535"}], True), ([{"port": 65535}], False), ([{"port": "70000"}], False), ([{"port": -5}], False),
    ([{"port": "http"}], True), ([{"port": "Bad_Name"}], False), ([{"port": "80", "endPort": 90}], True),
    ([{"port": "80", "endPort": 70}], True),  # no check: an end below the start is the start alone (pkg/policy/portrange.go)
    ([{"port": "80", "endPort": 70000}], False), ([{"port": True}], False),
    ([{"port": "65536"}], False), ([{"port": "1"}], True), ([{"port": ""}], False), ([{"protocol": "TCP"}], False),
    ([{"port": "80", "endPort": 80}], True), ([{"port": "80", "endPort": 65535}], True), ([{"port": "80", "endPort": 65536}], False),
    ([{"port": "65535", "endPort": 65535}], True), ([{"port": "0080"}], False), ([{"port": "0x50"}], True),
    ([{"port": "80", "protocol": "tcp"}], False), ([{"port": "80", "protocol": "ICMP"}], False), ([{"port": "0", "protocol": "VRRP"}], True),
])
def test_cilium_ports_are_range_checked(ports, ok):
    policy = ciliumnp("prod", "p", {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": ports}]}]})
    assert bool(findings(audit(cluster(policy)), "NP-HYG-007")) is not ok



# -- Calico and Cilium branches, each with a case that fails when the branch is wrong --------

def calico_allows(rule: dict, src: str, dst: str, port: int = 80, proto: str = "TCP", direction: str = "Ingress") -> bool:
    spec = {"selector": "all()", "types": [direction], direction.lower(): [rule]}
    a = analysis_of(cluster(gnp("p", 10, spec)), cni=False)
    return a.allowed(endpoint(a, src), endpoint(a, dst), port, proto).allowed


def test_calico_rule_matching_branches():
    assert not calico_allows({"action": "Allow", "destination": {"notNets": ["10.0.0.0/8"]}}, "prod/web", "10.1.2.3", direction="Egress")
    assert calico_allows({"action": "Allow", "destination": {"notNets": ["10.0.0.0/8"]}}, "prod/web", "8.8.8.8", direction="Egress")
    assert calico_allows({"action": "Allow", "destination": {"nets": ["192.0.2.10"]}}, "prod/web", "192.0.2.10", direction="Egress")
    assert not calico_allows({"action": "Allow", "destination": {"nets": ["192.0.2.10"]}}, "prod/web", "192.0.2.11", direction="Egress")
    assert not calico_allows({"action": "Allow", "destination": {"selector": "app == 'db'"}}, "prod/web", "8.8.8.8", direction="Egress")
    assert calico_allows({"action": "Allow", "protocol": "TCP"}, "other/x", "prod/api", 8080, "TCP")
    assert not calico_allows({"action": "Allow", "protocol": "TCP"}, "other/x", "prod/api", 53, "UDP")
    assert calico_allows({"action": "Allow", "protocol": 6, "destination": {"ports": [8080]}}, "other/x", "prod/api", 8080)


def test_calico_selector_narrows_the_subject():
    a = analysis_of(cluster(gnp("web-only", 10, {"selector": "app == 'web'", "types": ["Ingress"]})), cni=False)
    assert not a.allowed(endpoint(a, "other/x"), endpoint(a, "prod/web"), 80).allowed
    assert a.allowed(endpoint(a, "other/x"), endpoint(a, "prod/api"), 80).allowed


@pytest.mark.parametrize("text,labels,matches", [
    ("has(app)", {"app": "x"}, True), ("has(app)", {}, False), ("!has(app)", {}, True), ("all()", {}, True),
    ("has == 'x'", {"has": "x"}, True), ("k == ''", {"k": ""}, True), ("k == ''", {"k": "a"}, False),
    ("a == 'x' && (b == 'y' || c == 'z')", {"a": "x", "c": "z"}, True),
])
def test_calico_selector_grammar_edges(text, labels, matches):
    from audit.engine.kinds.calico import compile_selector
    assert compile_selector(text)(labels) is matches


@pytest.mark.parametrize("spec,ok", [
    ({"selector": "all()", "order": True}, False), ({"selector": "all()", "order": 10.5}, True),
    ({"selector": "all()", "types": ["Ingress", "Sideways"]}, False), ({"selector": "all()", "types": "Ingress"}, False),
    ({"selector": "all()", "types": ["Ingress", "Ingress"]}, False),
    ({"selector": "all()", "ingress": [{"action": "Allow", "protocol": 1}]}, True), ({"selector": "all()", "ingress": [{"action": "Allow", "protocol": 255}]}, True),
    ({"selector": "all()", "ingress": [{"action": "Allow", "protocol": 0}]}, False), ({"selector": "all()", "ingress": [{"action": "Allow", "protocol": 256}]}, False),
    ({"selector": "all()", "ingress": [{"action": "Allow", "protocol": "1"}]}, True), ({"selector": "all()", "ingress": [{"action": "Allow", "protocol": "255"}]}, True),
    ({"selector": "all()", "ingress": [{"action": "Allow", "protocol": "0"}]}, False), ({"selector": "all()", "ingress": [{"action": "Allow", "protocol": "256"}]}, False),
    ({"selector": "all()", "ingress": [{"action": "Allow", "protocol": True}]}, False), ({"selector": "all()", "ingress": [{"action": "Allow", "protocol": "gre"}]}, False),
])
def test_calico_validation_edges(spec, ok):
    from audit.engine.kinds.calico import compile_calico
    policy, errors = compile_calico(PolicyObject("GlobalNetworkPolicy", "projectcalico.org/v3", None, "p", spec), Inventory((), (), ()))
    assert (policy is not None and not errors) is ok, errors


@pytest.mark.parametrize("rule,default_deny", [
    ({"action": "Allow", "source": {"selector": "app == 'web'"}}, True),  # some sources: still default-deny
    ({"action": "Allow", "destination": {"selector": "app == 'api'"}}, True),  # some of its own pods only
    ({"action": "Allow"}, False),
])
def test_calico_opening_rules_are_judged_whole(rule, default_deny):
    assert prod_cov(gnp("d", 10, {"selector": "all()", "types": ["Ingress"], "ingress": [rule]}))[0] is default_deny


def test_a_calico_policy_of_another_namespace_or_selector_covers_no_empty_namespace():
    for policy in (calico_np("staging", "d", {"selector": "all()", "types": ["Ingress"]}),
                   gnp("d", 10, {"selector": "app == 'x'", "types": ["Ingress"]})):
        report = audit(cluster(policy) + "\n---\n" + docs(ns_doc("empty")))
        assert not next(n for n in report.namespaces if n.name == "empty").default_deny_ingress


def cilium_allowed(spec: dict, src: str, dst: str, port: int = 80, extra: tuple = ()) -> bool:
    a = analysis_of(cluster(ciliumnp("prod", "c", spec), *extra), cni=False)
    return a.allowed(endpoint(a, src), endpoint(a, dst), port).allowed


def test_cilium_entities():
    assert cilium_allowed({"endpointSelector": {}, "ingress": [{"fromEntities": ["all"]}]}, "other/x", "prod/api")
    assert cilium_allowed({"endpointSelector": {}, "egress": [{"toEntities": ["world"]}]}, "prod/web", "8.8.8.8")
    assert not cilium_allowed({"endpointSelector": {}, "egress": [{"toEntities": ["cluster"]}]}, "prod/web", "8.8.8.8")
    assert cilium_allowed({"endpointSelector": {}, "egress": [{"toEntities": ["cluster"]}]}, "prod/web", "other/x")
    assert not cilium_allowed({"endpointSelector": {}, "egress": [{"toEntities": ["world"]}]}, "prod/web", "other/x")


def test_cilium_endpoints_never_name_host_network_pods():
    host = pod("prod", "agent", {"app": "web"}, host=True)
    a = analysis_of(cluster(ciliumnp("prod", "c", {"endpointSelector": {"matchLabels": {"app": "api"}},
                                                   "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "web"}}]}]})) + "\n---\n" + docs(host), cni=False)
    api = endpoint(a, "prod/api")
    (agent,) = a.find_workload("prod", "agent")
    assert a.allowed(endpoint(a, "prod/web"), api, 80).allowed and not a.allowed(agent, api, 80).allowed


def test_cilium_specs_with_a_node_selector_select_no_pod():
    host = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "host"},
            "spec": {"specs": [{"nodeSelector": {}, "ingressDeny": [{"fromEntities": ["all"]}]}]}}
    a = analysis_of(cluster(host), cni=False)
    assert a.allowed(endpoint(a, "other/x"), endpoint(a, "prod/api"), 80).allowed


def test_cilium_namespace_label_selectors_cover_the_namespace():
    ccnp = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "by-label"},
            "spec": {"endpointSelector": {"matchLabels": {"k8s:io.cilium.k8s.namespace.labels.env": "prod"}}, "ingress": [{}]}}
    assert prod_cov(ccnp)[0]
    web_only = docs(ns_doc("w"), pod("w", "a", {"app": "x"}),
                    ciliumnp("w", "d", {"endpointSelector": {"matchLabels": {"app": "x"}}, "ingress": [{}]}))
    row = next(n for n in audit(web_only).namespaces if n.name == "w")
    assert not row.default_deny_ingress and row.isolated_ingress == 1  # its pod today, not new ones


def test_cilium_port_one_is_one_port():
    for one in ("1", "01"):  # Go's ParseUint with base 0: a leading 0 is octal ("0x1" is a port name: it has a letter)
        assert cilium_allowed({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": one}]}]}]}, "other/x", "prod/api", 1)
        assert not cilium_allowed({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": one}]}]}]}, "other/x", "prod/api", 2)
    octal = {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "010"}]}]}]}
    assert cilium_allowed(octal, "other/x", "prod/api", 8) and not cilium_allowed(octal, "other/x", "prod/api", 10)
    below = {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80", "endPort": 70}]}]}]}
    assert cilium_allowed(below, "other/x", "prod/api", 80) and not cilium_allowed(below, "other/x", "prod/api", 75)
    ranged = {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80", "endPort": 90}]}]}]}
    assert cilium_allowed(ranged, "other/x", "prod/api", 85) and not cilium_allowed(ranged, "other/x", "prod/api", 91)
    for spec in ({"ingress": [{}]}, {"endpointSelector": {}, "nodeSelector": {}, "ingress": [{}]}):
        assert findings(audit(cluster(ciliumnp("prod", "x", spec))), "NP-HYG-007")  # exactly one selector
    bad = ciliumnp("prod", "bad", {"endpointSelector": {"matchExpressions": ["x"]}})
    assert findings(audit(cluster(bad)), "NP-HYG-007")


@pytest.mark.parametrize("value,ok", [("10.0.0.0/8", True), ("10.0.0.0/255.0.0.0", False), ("fe80::1%eth0/64", False),
                                      (" 10.0.0.0/8", False), ("/8", False), ("10.0.0.0/", False)])
def test_parse_cidr_as_go_reads_it(value, ok):
    from audit.engine.addresses import parse_cidr
    assert (parse_cidr(value) is not None) is ok


def test_an_admin_port_entry_has_exactly_one_field():
    spec = {"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}],
            "ports": [{"portNumber": {"port": 80, "protocol": "TCP"}, "portRange": {"start": 1, "end": 2}}]}]}
    assert parse_admin(anp_doc(spec)).policy is None


def test_the_ingress_controller_has_no_blast_radius_row_of_its_own():
    from audit.engine.connectivity import blast_radius
    from tests.test_ingress import SHOP
    rows = blast_radius(analysis_of(SHOP, cni=False))
    assert rows and "ingress-controller-ns" not in {r.namespace for r in rows}


def test_a_quoted_value_and_a_validation_message_are_capped_exactly():
    """A value is quoted whole up to 60 characters, else its first 57 and "..."; a field or message
    up to MESSAGE_LIMIT characters whole, else cut there with the length it had."""
    from audit.engine.selectors import MESSAGE_LIMIT, FieldError, show

    for length in (57, 58, 59, 60, 61, 62, 500):
        text = "x" * (length - 2)  # repr adds the two quotes
        expected = repr(text) if length <= 60 else repr(text)[:57] + "..."
        assert show(text) == expected and len(show(text)) == min(length, 60)
    assert MESSAGE_LIMIT == 400
    for length in (399, 400, 401, 5000):
        error = FieldError("f" * length, "m" * length)
        for got in (error.field, error.message):
            assert got == got[0] * length if length <= 400 else got == got[0] * 400 + f"... ({length} characters)"


def test_an_expression_with_an_error_gives_no_requirement():
    """A requirement is kept only when nothing is wrong with it: a bad value, operator or key drops it."""
    from audit.engine.selectors import parse_selector

    for expr in ({"key": "app", "operator": "In", "values": ["bad value!"]}, {"key": "app", "operator": "Exists", "values": ["x"]},
                 {"key": "app", "operator": "Near", "values": ["x"]}, {"key": "bad key!", "operator": "In", "values": ["x"]}):
        selector, errors = parse_selector({"matchExpressions": [expr]}, "spec.podSelector")
        assert errors and selector.requirements == (), expr
    selector, errors = parse_selector({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, "spec.podSelector")
    assert not errors and len(selector.requirements) == 1


@pytest.mark.parametrize("seed", range(6))
def test_classes_in_a_block_are_those_with_an_address_inside_and_outside_every_except(seed):
    """Against ipaddress's own membership test, pod by pod: excepts that overlap, that nest, that
    reach past the block or hold no pod, blocks of either version, addresses on the edges."""
    import ipaddress
    import random

    from audit.engine.addresses import IPBlock
    from tests.conftest import analyse

    rng = random.Random(seed)
    addresses = [f"10.{rng.choice([0, 1, 2, 255])}.{rng.randrange(256)}.{rng.choice([0, 1, 128, 255, rng.randrange(256)])}" for _ in range(120)]
    addresses += ["10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0", "fd00::1", "fd00::ffff", "fd01::1"]
    analysis = analyse(docs(*(pod("p", f"pod-{i}", {"i": str(i)}, ip) for i, ip in enumerate(addresses))))
    where = {}
    for c in analysis.real_classes():
        for w in c.workloads:
            for ip in w.ips:
                where.setdefault(c.id, []).append(ipaddress.ip_address(ip))
    nets = ["10.0.0.0/8", "10.0.0.0/16", "10.1.0.0/16", "10.0.0.0/24", "10.0.0.128/25", "10.0.0.0/32", "10.255.255.255/32", "10.2.0.0/15",
            "10.3.0.0/16", "fd00::/16", "fd00::/120", "fd00::1/128"]
    cases = [("10.0.0.0/8", ("10.0.0.0/16", "10.0.0.128/25")), ("10.0.0.0/8", ("10.0.0.128/25", "10.0.0.0/16", "10.0.0.0/24")),
             ("10.0.0.0/16", ("10.0.0.0/8",)), ("10.1.0.0/16", ("10.0.0.0/15", "10.1.0.0/24")), ("10.0.0.0/24", ("10.0.0.0/16",))]
    for _ in range(200):  # excepts drawn from every network, not only the block's own subnets: the walk must clamp them
        cidr = ipaddress.ip_network(rng.choice(nets))
        same = [n for n in nets if ipaddress.ip_network(n).version == cidr.version]
        cases.append((str(cidr), tuple(rng.sample(same, min(len(same), rng.randrange(5))))))
    for raw_cidr, raw_excepts in cases:
        cidr, excepts = ipaddress.ip_network(raw_cidr), tuple(ipaddress.ip_network(e) for e in raw_excepts)
        want = frozenset(cid for cid, ips in where.items()
                         if any(ip in cidr and not any(ip in ex for ex in excepts) for ip in ips))
        assert analysis.classes_in_block(IPBlock(cidr, excepts)) == want, (cidr, excepts)


def test_classes_are_numbered_by_namespace_labels_and_account_whatever_the_workload_order():
    import random

    from audit.engine.analysis import Analysis
    from audit.inventory import Inventory, Namespace, Workload

    workloads = [Workload(ns, "Deployment", f"w{i}", labels, service_account=account)
                 for i, (ns, labels, account) in enumerate((ns, labels, account) for ns in ("b", "a", "ab", "a-b")
                                                           for labels in ((("app", "x"),), (("app", "w"), ("z", "1")), (("app", "w"),), ())
                                                           for account in ("default", "api"))]
    workloads.append(Workload("a", "StatefulSet", "ports", (("app", "x"),), ports=(ContainerPort(80, "TCP", None),)))  # a tie but for ports
    random.Random(3).shuffle(workloads)
    namespaces = tuple(Namespace(n, (("kubernetes.io/metadata.name", n),)) for n in ("a", "a-b", "ab", "b"))
    analysis = Analysis(Inventory(namespaces, tuple(workloads), ()))
    keys = [(c.namespace, c.labels, c.service_account) for c in analysis.real_classes()]
    assert keys == sorted(keys) and len(keys) == 33
    ties = [c for c in analysis.real_classes() if c.namespace == "a" and c.labels == (("app", "x"),) and c.service_account == "default"]
    first = next(w for w in workloads if w.namespace == "a" and w.labels == (("app", "x"),) and w.service_account == "default")
    assert len(ties) == 2 and ties[0].workloads[0] is first  # equal keys keep the order their workloads came in


def test_named_clients_are_the_other_namespaces_workloads_whose_egress_names_the_destination():
    def egress(ns, name, app, to, port):
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"namespace": ns, "name": name},
                "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Egress"],
                         "egress": [{"to": [to], "ports": [{"port": port}]}]}}

    every_db = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "db"}}}
    objs = [ns_doc(n) for n in "abcde"]
    objs += [pod("a", "db", {"app": "db"}), pod("e", "db", {"app": "db"}), pod("a", "client-a", {"app": "client"}),
             pod("b", "client-b", {"app": "client"}), pod("c", "client-c", {"app": "client"}), pod("d", "client-d", {"app": "client"})]
    objs += [egress("a", "own", "client", every_db, 5432), egress("b", "to-db", "client", every_db, 5432),
             egress("c", "wrong-port", "client", every_db, 80),
             egress("d", "to-a", "client", {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "a"}},
                                            "podSelector": {"matchLabels": {"app": "db"}}}, 5432)]
    from tests.conftest import analyse

    analysis = analyse(docs(*objs))
    by_name = {c.workloads[0].name if c.namespace != "e" else "db-e": c.id for c in analysis.real_classes()}
    named = {cid: analysis.classes[cid].namespace for cid in analysis.clients.of(by_name["db"], frozenset({5432}))}
    assert sorted(named.values()) == ["b", "d"]  # a's own client is not another namespace's; c's rule is for port 80
    assert sorted(analysis.classes[c].namespace for c in analysis.clients.of(by_name["db-e"], frozenset({5432}))) == ["a", "b"]
    assert analysis.clients.of(by_name["db"], frozenset({80})) == [by_name["client-c"]]
    assert analysis.clients.of(by_name["db"], frozenset({5432})) == sorted(named)


def test_egress_content_tells_apart_what_the_allowed_ports_depend_on():
    """`Analysis.egress_content` keys the class graph's egress ports: equal for stacks alike in
    content (one batch's shared peers and ports, other policy objects), different when anything the
    walk reads differs: the tier, the group, isolation, a rule's action, peers, ports, excluded
    ports, all-peers, IP family; None when a rule depends on the subject."""
    from audit.engine.analysis import _content
    from audit.engine.compiled import CompiledPeer, CompiledPolicy, CompiledPort, CompiledRule, CompiledSubject, Layer
    from audit.engine.selection import PodSelection
    from audit.engine.stack import Entry

    peers = (CompiledPeer("to[0]", "pods", PodSelection(namespace="a")),)
    other_peers = (CompiledPeer("to[0]", "pods", PodSelection(namespace="a")),)  # equal text, another object
    ports = (CompiledPort("ports[0]", ("TCP",), 53),)
    other_ports = (CompiledPort("ports[0]", ("TCP",), 53),)

    def stack(name="p", tier="namespace", group=(0.0, ""), isolates=("Egress",), action="Allow", rule_peers=peers, rule_ports=ports,
              not_ports=(), all_peers=False, family=None, own=None):
        rule = CompiledRule("Egress", action, "egress[0]", f"{name} egress[0]", "text", rule_peers, all_peers, rule_ports, not_ports,
                            own=own, ip_family=family)
        layer = Layer(tier, (1000.0, name), "note", (("Egress", (rule,)),), isolates, group=group)
        policy = CompiledPolicy("K", "K", "a", name, f"a/{name}", CompiledSubject("s", "s", PodSelection(namespace="a")), (rule,),
                                ("Egress",), (layer,))
        return {tier: (Entry(policy, layer),)}

    base = _content(stack(), "Egress")
    assert base is not None and _content(stack(name="other-object"), "Egress") == base  # another policy, same content
    for changed in (dict(tier="admin"), dict(group=(5.0, "tier")), dict(isolates=()), dict(action="Deny"), dict(rule_peers=other_peers),
                    dict(rule_ports=other_ports), dict(rule_ports=None), dict(not_ports=other_ports), dict(all_peers=True), dict(family=6)):
        assert _content(stack(**changed), "Egress") != base, changed
    assert _content(stack(tier="admin", isolates=()), "Egress") != _content(stack(isolates=()), "Egress")  # the tier alone
    assert _content(stack(own=peers[0]), "Egress") is None
    assert _content({}, "Egress") == ()


def test_whole_namespace_and_classes_with_pods():
    """A namespaced policy selects all of its own namespace only (never another's, whatever its
    selector), and the classes "with pods" of a namespace leave out workloads scaled to zero."""
    from tests.conftest import analyse
    from tests.test_checks import scaled_to_zero
    from tests.test_semantics import policies

    analysis = analyse(policies(("prod", {"podSelector": {}, "policyTypes": ["Ingress"]})) + scaled_to_zero("prod"))
    (policy,) = [p for p in analysis.policies if p.namespace == "prod"]
    assert analysis.whole_namespace(policy, "prod") and not analysis.whole_namespace(policy, "staging")
    with_pods = {c.workloads[0].name for c in analysis.governed_with_pods("prod")}
    governed = {c.workloads[0].name for c in analysis.governed_classes("prod")}
    assert "idle" in governed and "idle" not in with_pods and with_pods == governed - {"idle"}


def test_namespaces_a_selection_reaches():
    """`Analysis.namespaces_of`: a policy's own namespace alone (when the inventory has it), every
    namespace for no selector, the selector's namespaces, and within its own namespace only when
    it has one."""
    from audit.engine.selection import PodSelection
    from audit.engine.selectors import parse_selector
    from tests.conftest import analyse
    from tests.test_semantics import CLUSTER

    analysis = analyse(CLUSTER)
    prod_env, errors = parse_selector({"matchLabels": {"env": "prod"}}, "s")
    everything, more = parse_selector({}, "s")
    assert not errors and not more
    assert analysis.namespaces_of(PodSelection(namespace="prod")) == ["prod"]
    assert analysis.namespaces_of(PodSelection(namespace="prod", namespaces=everything)) == ["prod"]
    assert analysis.namespaces_of(PodSelection(namespace="absent")) == []
    assert analysis.namespaces_of(PodSelection()) == sorted(analysis.namespaces)
    assert analysis.namespaces_of(PodSelection(namespaces=prod_env)) == ["prod"]
    assert analysis.namespaces_of(PodSelection(namespace="prod", namespaces=prod_env)) == ["prod"]
    assert analysis.namespaces_of(PodSelection(namespace="staging", namespaces=prod_env)) == []


def test_cni_settings_act_as_policies_but_are_never_listed_as_policy_objects():
    """Cilium's enable-policy=always isolates every pod: it takes part in the stack as a setting,
    and the lists of policies of core and other kinds leave it out."""
    from audit.engine.analysis import Analysis
    from audit.engine.cni import detect_cni
    from tests.conftest import inventory
    from tests.test_checks import CILIUM
    from tests.test_semantics import policies

    inv = inventory(policies(("prod", {"podSelector": {}, "policyTypes": ["Ingress"]})) + CILIUM.replace("enable-policy: default",
                                                                                                         "enable-policy: always"))
    analysis = Analysis(inv, cni=detect_cni(inv))
    assert analysis.settings and all(p.setting for p in analysis.settings)
    listed = analysis.policies_of(True) + analysis.policies_of(False)
    assert sorted(p.key for p in listed) == sorted(p.key for p in analysis.policies if p not in analysis.settings)
    assert [p.key for p in analysis.policies_of(True)] == ["prod/p0"]
