"""NetworkPolicy semantics, table-driven: every rule of DESIGN.md is a case that fails if the rule is wrong."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from tests.conftest import analyse

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: staging, labels: {env: staging}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web, tier: front}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: prod, labels: {app: api, tier: back}}
spec:
  containers:
    - name: c
      image: i
      ports: [{containerPort: 8080, name: http}, {containerPort: 5353, name: metrics, protocol: UDP}]
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 5432, name: pg}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: bare, namespace: prod}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: staging, labels: {app: web, tier: front}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Pod
metadata: {name: x, namespace: other, labels: {app: x}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: prod, labels: {app: agent}}
spec: {hostNetwork: true, containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Pod
metadata: {name: ipd, namespace: other, labels: {app: ipd}}
spec: {containers: [{name: c, image: i}]}
status: {podIP: 10.1.2.3}
"""


def policies(*specs: tuple[str, dict]) -> str:
    docs = []
    for i, (ns, spec) in enumerate(specs):
        docs.append(yaml.safe_dump({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                    "metadata": {"name": f"p{i}", "namespace": ns}, "spec": spec}))
    return CLUSTER + "\n---\n" + "\n---\n".join(docs)


def reach(specs: list[tuple[str, dict]], src: str, dst: str, port: int, proto: str = "TCP") -> bool:
    a = analyse(policies(*specs))

    def endpoint(ref: str):
        if "/" not in ref:
            return ipaddress.ip_address(ref)
        ns, name = ref.split("/")
        (cid,) = a.find_workload(ns, name)
        return cid

    return a.allowed(endpoint(src), endpoint(dst), port, proto).allowed


def sel(**labels: str) -> dict:
    return {"matchLabels": labels}


API = sel(app="api")
DENY_IN = {"podSelector": {}, "policyTypes": ["Ingress"]}
DENY_OUT = {"podSelector": {}, "policyTypes": ["Egress"]}

CASES = [
    # (id, policies, src, dst, port, proto, expected)
    ("no policy: everything allowed", [], "staging/web", "prod/db", 5432, "TCP", True),
    ("selected for ingress, no rules: denied", [("prod", {"podSelector": API, "policyTypes": ["Ingress"]})], "prod/web", "prod/api", 8080, "TCP", False),
    ("ingress isolation leaves egress open", [("prod", {"podSelector": API, "policyTypes": ["Ingress"]})], "prod/api", "prod/db", 5432, "TCP", True),
    ("omitted policyTypes with ingress rules: egress not isolated",
     [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": sel(app="web")}]}]})], "prod/api", "other/x", 80, "TCP", True),
    ("omitted policyTypes with only egress rules: ingress denied too",
     [("prod", {"podSelector": API, "egress": [{"to": [{"podSelector": sel(app="db")}]}]})], "prod/web", "prod/api", 8080, "TCP", False),
    ("omitted policyTypes with only egress rules: egress allowed per rule",
     [("prod", {"podSelector": API, "egress": [{"to": [{"podSelector": sel(app="db")}]}]})], "prod/api", "prod/db", 5432, "TCP", True),
    ("omitted policyTypes with only egress rules: other egress denied",
     [("prod", {"podSelector": API, "egress": [{"to": [{"podSelector": sel(app="db")}]}]})], "prod/api", "prod/web", 80, "TCP", False),
    ("explicit [Egress] ignores ingress rules: ingress not isolated",
     [("prod", {"podSelector": API, "policyTypes": ["Egress"], "ingress": [{"from": [{"podSelector": sel(app="web")}]}]})], "other/x", "prod/api", 8080, "TCP", True),
    ("additive: a second policy's allow wins over the first's silence",
     [("prod", {"podSelector": API, "policyTypes": ["Ingress"]}),
      ("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": sel(app="web")}]}]})], "prod/web", "prod/api", 8080, "TCP", True),
    ("additive: no policy allows the third source", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": sel(app="web")}]}]})], "prod/db", "prod/api", 8080, "TCP", False),
    ("podSelector {} selects every pod of its namespace", [("prod", DENY_IN)], "prod/web", "prod/bare", 80, "TCP", False),
    ("podSelector {} does not select other namespaces", [("prod", DENY_IN)], "prod/web", "staging/web", 80, "TCP", True),
    ("empty rule {} allows all peers on all ports", [("prod", {"podSelector": API, "ingress": [{}]})], "other/x", "prod/api", 9999, "UDP", True),
    ("empty rule {} allows external addresses", [("prod", {"podSelector": API, "ingress": [{}]})], "203.0.113.9", "prod/api", 22, "TCP", True),
    ("missing from with ports: any source, only those ports (allowed)", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 8080}]}]})], "other/x", "prod/api", 8080, "TCP", True),
    ("missing from with ports: any source, only those ports (denied)", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 8080}]}]})], "other/x", "prod/api", 9090, "TCP", False),
    ("empty from list = all peers", [("prod", {"podSelector": API, "ingress": [{"from": [], "ports": [{"port": 8080}]}]})], "staging/web", "prod/api", 8080, "TCP", True),
    ("missing ports = all ports", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": sel(app="web")}]}]})], "prod/web", "prod/api", 31337, "TCP", True),
    ("podSelector-only peer = own namespace (same ns allowed)", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": sel(app="web")}]}]})], "prod/web", "prod/api", 8080, "TCP", True),
    ("podSelector-only peer = own namespace (other ns denied)", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": sel(app="web")}]}]})], "staging/web", "prod/api", 8080, "TCP", False),
    ("namespaceSelector-only peer = every pod of matching namespaces", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging")}]}]})], "staging/web", "prod/api", 8080, "TCP", True),
    ("namespaceSelector-only peer excludes non-matching namespaces", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging")}]}]})], "other/x", "prod/api", 8080, "TCP", False),
    ("namespaceSelector-only peer excludes its own namespace unless it matches", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging")}]}]})], "prod/web", "prod/api", 8080, "TCP", False),
    ("both in one peer = AND (match)", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging"), "podSelector": sel(app="web")}]}]})], "staging/web", "prod/api", 8080, "TCP", True),
    ("both in one peer = AND (pod in own namespace does not match)", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging"), "podSelector": sel(app="web")}]}]})], "prod/web", "prod/api", 8080, "TCP", False),
    ("two peers = OR (pods of own namespace)", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging")}, {"podSelector": sel(app="web")}]}]})], "prod/web", "prod/api", 8080, "TCP", True),
    ("two peers = OR (any pod of the namespace)", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging")}, {"podSelector": sel(app="nope")}]}]})], "staging/web", "prod/api", 8080, "TCP", True),
    ("namespaceSelector {} = every namespace", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": {}}]}]})], "other/x", "prod/api", 8080, "TCP", True),
    ("namespaceSelector {} still excludes external addresses", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": {}}]}]})], "203.0.113.9", "prod/api", 8080, "TCP", False),
    ("matchLabels AND matchExpressions both apply", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]}}]}]})], "prod/web", "prod/api", 8080, "TCP", False),
    ("matchExpressions In", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]}}]}]})], "prod/web", "prod/api", 8080, "TCP", True),
    ("matchExpressions NotIn matches pods lacking the key", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}}]}]})], "prod/bare", "prod/api", 8080, "TCP", True),
    ("matchExpressions NotIn excludes listed values", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}}]}]})], "prod/web", "prod/api", 8080, "TCP", False),
    ("matchExpressions Exists", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}]}]})], "prod/bare", "prod/api", 8080, "TCP", False),
    ("matchExpressions DoesNotExist matches pods lacking the key", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}}]}]})], "prod/bare", "prod/api", 8080, "TCP", True),
    ("namespace matchExpressions apply to namespace labels", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}}]}]})], "other/x", "prod/api", 8080, "TCP", True),
    ("kubernetes.io/metadata.name is synthesized for namespaces", [("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(**{"kubernetes.io/metadata.name": "other"})}]}]})], "other/x", "prod/api", 8080, "TCP", True),
    ("protocol defaults to TCP (TCP allowed)", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 53}]}]})], "prod/web", "prod/api", 53, "TCP", True),
    ("protocol defaults to TCP (UDP denied)", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 53}]}]})], "prod/web", "prod/api", 53, "UDP", False),
    ("UDP rule", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})], "prod/web", "prod/api", 53, "UDP", True),
    ("SCTP rule does not admit TCP", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 7000, "protocol": "SCTP"}]}]})], "prod/web", "prod/api", 7000, "TCP", False),
    ("protocol-only port entry admits every port of that protocol", [("prod", {"podSelector": API, "ingress": [{"ports": [{"protocol": "UDP"}]}]})], "prod/web", "prod/api", 9999, "UDP", True),
    ("named ingress port resolves against the destination", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": "http"}]}]})], "prod/web", "prod/api", 8080, "TCP", True),
    ("named ingress port does not admit other numbers", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": "http"}]}]})], "prod/web", "prod/api", 9090, "TCP", False),
    ("named port needs the same protocol", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": "metrics"}]}]})], "prod/web", "prod/api", 5353, "TCP", False),
    ("named port with its protocol", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": "metrics", "protocol": "UDP"}]}]})], "prod/web", "prod/api", 5353, "UDP", True),
    ("named egress port resolves against the destination pod", [("prod", {"podSelector": sel(app="web"), "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "pg"}]}]})], "prod/web", "prod/db", 5432, "TCP", True),
    ("named egress port not defined by the destination", [("prod", {"podSelector": sel(app="web"), "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "pg"}]}]})], "prod/web", "prod/api", 5432, "TCP", False),
    ("named egress port never matches an external address", [("prod", {"podSelector": sel(app="web"), "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "pg"}]}]})], "prod/web", "198.51.100.1", 5432, "TCP", False),
    ("endPort range includes its ends", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 8000, "endPort": 8080}]}]})], "prod/web", "prod/api", 8080, "TCP", True),
    ("endPort range excludes above", [("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 8000, "endPort": 8080}]}]})], "prod/web", "prod/api", 8081, "TCP", False),
    ("ipBlock admits an address inside", [("prod", {"podSelector": sel(app="web"), "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24", "except": ["198.51.100.128/25"]}}]}]})], "prod/web", "198.51.100.7", 443, "TCP", True),
    ("ipBlock except removes addresses", [("prod", {"podSelector": sel(app="web"), "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24", "except": ["198.51.100.128/25"]}}]}]})], "prod/web", "198.51.100.200", 443, "TCP", False),
    ("ipBlock IPv6", [("prod", {"podSelector": sel(app="web"), "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "2001:db8::/32"}}]}]})], "prod/web", "2001:db8::1", 443, "TCP", True),
    ("IPv4 ipBlock does not admit IPv6", [("prod", {"podSelector": sel(app="web"), "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})], "prod/web", "2001:db8::1", 443, "TCP", False),
    ("all-but-private still reaches cloud metadata", [("prod", {"podSelector": sel(app="web"), "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}]}]})], "prod/web", "169.254.169.254", 80, "TCP", True),
    ("ipBlock matches a pod by its IP", [("prod", {"podSelector": API, "ingress": [{"from": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}]})], "other/ipd", "prod/api", 8080, "TCP", True),
    ("ipBlock except removes a pod by its IP", [("prod", {"podSelector": API, "ingress": [{"from": [{"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.1.2.0/24"]}}]}]})], "other/ipd", "prod/api", 8080, "TCP", False),
    ("ipBlock does not match pods without a known IP", [("prod", {"podSelector": API, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})], "other/x", "prod/api", 8080, "TCP", False),
    ("connection needs the source's egress (ingress allows, egress denies)",
     [("prod", {"podSelector": API, "ingress": [{}]}), ("staging", DENY_OUT)], "staging/web", "prod/api", 8080, "TCP", False),
    ("connection needs the destination's ingress (egress allows, ingress denies)",
     [("staging", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}), ("prod", DENY_IN)], "staging/web", "prod/api", 8080, "TCP", False),
    ("both sides allow", [("staging", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": sel(env="prod")}]}]}),
                         ("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging")}]}]})], "staging/web", "prod/api", 8080, "TCP", True),
    ("hostNetwork pods are not isolated by a namespace default-deny", [("prod", DENY_IN)], "other/x", "prod/agent", 9100, "TCP", True),
    ("hostNetwork pods do not match pod peers", [("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": {}}]}]})], "prod/agent", "prod/api", 8080, "TCP", False),
]


@pytest.mark.parametrize("specs,src,dst,port,proto,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reachability(specs, src, dst, port, proto, expected):
    assert reach(specs, src, dst, port, proto) is expected


def test_verdict_names_deciding_policy_and_rule():
    a = analyse(policies(("prod", DENY_IN), ("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": sel(app="web")}], "ports": [{"port": 8080}]}]})))
    (web,) = a.find_workload("prod", "web")
    (api,) = a.find_workload("prod", "api")
    allowed = a.allowed(web, api, 8080)
    assert allowed.allowed
    assert allowed.ingress.policies == ("prod/p0", "prod/p1")
    assert [str(r) for r in allowed.ingress.allowed_by] == ["prod/p1 ingress[0]"]
    assert not allowed.egress.isolated
    denied = a.allowed(web, api, 9090)
    assert not denied.allowed and denied.ingress.allowed_by == ()
    assert "no rule allows it" in denied.ingress.explain()


def test_one_direction_selection_is_not_coverage_of_the_other():
    a = analyse(policies(("prod", {"podSelector": API, "policyTypes": ["Egress"]})))
    (api,) = a.find_workload("prod", "api")
    assert a.isolating(api, "Egress") and not a.isolating(api, "Ingress")
    cov = a.coverage["prod"]
    assert cov.egress.isolated_pods == 1 and cov.ingress.isolated_pods == 0


def test_equivalence_classes_group_identical_pods():
    text = CLUSTER + "".join(
        f"\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: w{i}, namespace: prod, labels: {{app: web, tier: front}}}}\nspec: {{containers: [{{name: c, image: i}}]}}\n"
        for i in range(50)
    )
    a = analyse(text)
    web_classes = {cid for i in range(50) for cid in a.find_workload("prod", f"w{i}")}
    assert len(web_classes) == 1
    assert a.classes[web_classes.pop()].pods == 51  # the 50 plus prod/web: same labels and ports
