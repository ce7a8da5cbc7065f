"""Calico NetworkPolicy and GlobalNetworkPolicy: the selector grammar, the ordered walk, coverage."""

from __future__ import annotations

import pytest

from audit.engine.connectivity import connections
from audit.engine.kinds.calico import SelectorError, compile_selector
from tests.conftest import analyse, audit, findings
from tests.test_admin import cluster, np, verdict


def cnp(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def gnp(name: str, spec: dict) -> dict:
    return {"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkPolicy", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("expr,labels,expected", [
    ("all()", {}, True),
    ("", {"a": "1"}, True),
    ("has(app)", {"app": "x"}, True),
    ("!has(app)", {"app": "x"}, False),
    ("app == 'web'", {"app": "web"}, True),
    ('app == "web"', {"app": "api"}, False),
    ("app != 'web'", {}, True),
    ("app in {'web', 'api'}", {"app": "api"}, True),
    ("app not in {'web', 'api'}", {"app": "db"}, True),
    ("app not in {'web'}", {}, True),
    ("app == 'web' && tier == 'front'", {"app": "web", "tier": "back"}, False),
    ("app == 'web' || tier == 'front'", {"app": "x", "tier": "front"}, True),
    ("!(app == 'web' || app == 'api') && has(tier)", {"app": "db", "tier": "x"}, True),
    ("app contains 'we'", {"app": "web"}, True),
    ("app starts with 'w'", {"app": "web"}, True),
    ("app ends with 'x'", {"app": "web"}, False),
    ("global()", {}, True),
])
def test_selector_grammar(expr, labels, expected):
    assert compile_selector(expr)(labels) is expected


@pytest.mark.parametrize("expr,message", [
    ("app = 'web'", "unexpected character '='"),
    ("app == web", "expected a quoted value"),
    ("app == 'web' &&", "expected more"),
    ("(app == 'web'", "expected )"),
    ("app in {'a' 'b'", "expected , or }"),
    ("has(app", "expected )"),
    ("app", "expected an operator after 'app'"),
    ("app == 'a' b == 'c'", "unexpected 'b'"),
])
def test_selector_errors_say_where(expr, message):
    with pytest.raises(SelectorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_selector(expr)


API = "app == 'api'"

CASES = [
    ("namespaced policy: Allow from a selector in its namespace",
     [cnp("prod", "p", {"selector": API, "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]})], "prod/web", "prod/api", 8080, True),
    ("selected pods deny what no rule allows (end of tier)",
     [cnp("prod", "p", {"selector": API, "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]})], "prod/db", "prod/api", 8080, False),
    ("namespaced selectors stay in the namespace",
     [cnp("prod", "p", {"selector": API, "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]})], "staging/web", "prod/api", 8080, False),
    ("namespaceSelector reaches other namespaces",
     [cnp("prod", "p", {"selector": API, "ingress": [{"action": "Allow", "source": {"namespaceSelector": "env == 'staging'"}}]})], "staging/web", "prod/api", 8080, True),
    ("lower order decides first: Deny at 100 beats Allow at 200",
     [gnp("deny", {"order": 100, "selector": API, "ingress": [{"action": "Deny", "source": {"namespaceSelector": "env == 'staging'"}}]}),
      gnp("allow", {"order": 200, "selector": API, "ingress": [{"action": "Allow"}]})], "staging/web", "prod/api", 8080, False),
    ("no match in a policy: the next policy decides",
     [gnp("deny", {"order": 100, "selector": API, "ingress": [{"action": "Deny", "source": {"namespaceSelector": "env == 'staging'"}}]}),
      gnp("allow", {"order": 200, "selector": API, "ingress": [{"action": "Allow"}]})], "other/x", "prod/api", 8080, True),
    ("Calico Deny at order 100 beats a NetworkPolicy allow (order 1000)",
     [np("prod", "allow-all", {"podSelector": {}, "ingress": [{}]}),
      gnp("deny", {"order": 100, "selector": API, "ingress": [{"action": "Deny", "source": {"namespaceSelector": "env == 'staging'"}}]})],
     "staging/web", "prod/api", 8080, False),
    ("a NetworkPolicy allow (order 1000) beats a Calico Deny at 2000",
     [np("prod", "allow-all", {"podSelector": {}, "ingress": [{}]}),
      gnp("deny", {"order": 2000, "selector": API, "ingress": [{"action": "Deny"}]})], "staging/web", "prod/api", 8080, True),
    ("Pass skips the tier: the namespace default allows",
     [gnp("pass", {"order": 10, "selector": API, "ingress": [{"action": "Pass", "source": {"namespaceSelector": "env == 'staging'"}}]}),
      gnp("deny", {"order": 20, "selector": API, "ingress": [{"action": "Deny"}]})], "staging/web", "prod/api", 8080, True),
    ("Log decides nothing",
     [gnp("log", {"order": 10, "selector": API, "ingress": [{"action": "Log"}, {"action": "Deny"}]})], "other/x", "prod/api", 8080, False),
    ("destination ports and protocol",
     [cnp("prod", "p", {"selector": API, "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [8080, "9000:9100"]}}]})],
     "other/x", "prod/api", 9050, True),
    ("protocol mismatch",
     [cnp("prod", "p", {"selector": API, "ingress": [{"action": "Allow", "protocol": "UDP", "destination": {"ports": [8080]}}]})],
     "other/x", "prod/api", 8080, False),
    ("named destination port",
     [cnp("prod", "p", {"selector": API, "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": ["http"]}}]})],
     "other/x", "prod/api", 8080, True),
    ("egress to nets (the domain text's deny-external-egress)",
     [gnp("deny-external-egress", {"order": 100, "selector": "!has(allow-external)", "types": ["Egress"], "egress": [
         {"action": "Allow", "destination": {"nets": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}},
         {"action": "Allow", "protocol": "UDP", "destination": {"selector": "k8s-app == 'kube-dns'", "ports": [53]}},
         {"action": "Deny"}]})], "prod/web", "203.0.113.9", 443, False),
    ("egress to nets allows the private ranges",
     [gnp("deny-external-egress", {"order": 100, "selector": "!has(allow-external)", "types": ["Egress"], "egress": [
         {"action": "Allow", "destination": {"nets": ["10.0.0.0/8"]}}, {"action": "Deny"}]})], "prod/web", "10.3.4.5", 443, True),
    ("notNets excludes",
     [gnp("g", {"order": 1, "selector": "all()", "types": ["Egress"], "egress": [
         {"action": "Allow", "destination": {"notNets": ["169.254.0.0/16"]}}]})], "prod/web", "169.254.169.254", 80, False),
]


@pytest.mark.parametrize("objs,src,dst,port,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_calico_truth_table(objs, src, dst, port, expected):
    assert verdict(cluster(*objs), src, dst, port).allowed is expected


def test_calico_explanation_and_coverage():
    text = cluster(gnp("default-deny", {"order": 2000, "selector": "all()", "types": ["Ingress", "Egress"]}))
    v = verdict(text, "prod/web", "prod/api", 8080)
    assert not v.allowed and "the end of the tier" in v.ingress.explain()
    report = audit(text)
    prod = next(n for n in report.namespaces if n.name == "prod")
    assert prod.default_deny_ingress and prod.default_deny_egress and "Calico GlobalNetworkPolicy/default-deny" in prod.ingress_reason
    assert prod.isolated_ingress == prod.pods
    v = verdict(cluster(gnp("deny", {"order": 100, "selector": API, "ingress": [{"action": "Deny"}]})), "prod/web", "prod/api", 8080)
    assert "denied by Calico GlobalNetworkPolicy/deny ingress[0] (Calico order)" in v.ingress.explain()


def test_calico_connectivity_walks_ports_in_order():
    text = cluster(gnp("g", {"order": 10, "selector": API, "ingress": [
        {"action": "Deny", "protocol": "UDP", "destination": {"ports": [53]}}, {"action": "Allow"}]}))
    lines = {str(c) for c in connections(analyse(text))}
    assert "other/x[Pod] => prod/api[Pod] : SCTP 1-65535,TCP 1-65535,UDP 1-52,54-65535" in lines


def test_invalid_calico_selector_is_reported():
    report = audit(cluster(gnp("bad", {"order": 1, "selector": "app = 'x'"})))
    (hit,) = findings(report, "NP-HYG-007")
    assert hit.kind == "GlobalNetworkPolicy" and "spec.selector" in hit.message and "unexpected character" in hit.message
