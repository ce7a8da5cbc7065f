"""Boundaries and branches of the engine, each as a positive and a negative case.

Written against mutation testing (tools/mutate.py): every rule here fails when one operator
or constant of the engine is wrong, and says which rule in its name.
"""

from __future__ import annotations

import pytest

from audit.engine.kinds.networkpolicy import ParsedPolicy, parse_policy
from audit.engine.ports import ALL, NONE, PortSet, parse_port_set
from audit.engine.selectors import parse_selector
from audit.inventory import PolicyObject
from tests.conftest import audit
from tests.test_admin import PROD, STAGING_PEER, anp, banp, cluster, np
from tests.test_stack import ALL_NS, analysis_of, ciliumnp, cnp, endpoint, gnp


def parsed(spec: dict) -> ParsedPolicy:
    return parse_policy(PolicyObject("prod", "p", spec))


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
