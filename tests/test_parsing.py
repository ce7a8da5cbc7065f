"""Selectors and NetworkPolicy parsing: the API server's defaulting and validation."""

from __future__ import annotations

import random

import pytest

from audit.engine.kinds.networkpolicy import parse_policy
from audit.engine.selectors import Requirement, Selector, SelectorIndex, parse_selector
from audit.inventory import PolicyObject


def parse(spec):
    return parse_policy(PolicyObject("NetworkPolicy", "networking.k8s.io/v1", "ns", "p", spec))


@pytest.mark.parametrize("raw,field,message", [
    ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}, "s.matchExpressions[0].operator", "not a valid selector operator"),
    ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "s.matchExpressions[0].values", "must be specified when operator is In"),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]}, "s.matchExpressions[0].values", "must be specified"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "s.matchExpressions[0].values", "may not be specified"),
    ({"matchExpressions": [{"operator": "Exists"}]}, "s.matchExpressions[0].key", "required"),
    ({"matchLabels": {"bad key!": "x"}}, "s.matchLabels", "label key"),
    ({"matchLabels": {"app": "-bad"}}, "s.matchLabels", "label value"),
    ({"matchLabels": {"app": "x" * 64}}, "s.matchLabels", "63 characters"),
    ({"matchLabels": {"app": True}}, "s.matchLabels", "must be a string"),
    ({"matchLabels": {"app": 1}}, "s.matchLabels", "must be a string"),
    ({"matchLabel": {"app": "x"}}, "s.matchLabel", "unknown field"),
    ({"matchLabels": ["app"]}, "s.matchLabels", "must be a map"),
])
def test_invalid_selectors_are_rejected_naming_the_field(raw, field, message):
    _sel, errors = parse_selector(raw, "s")
    assert errors and errors[0].field == field and message in errors[0].message


def test_valid_selector_forms():
    for raw in (None, {}, {"matchLabels": {}}, {"matchLabels": {"example.com/app": "a.b_c-d"}}):
        sel, errors = parse_selector(raw, "s")
        assert not errors
    sel, _ = parse_selector({"matchLabels": {"app": None}}, "s")
    assert sel.empty_values == ("app",)  # null is read as "" by the API's JSON decoding


@pytest.mark.parametrize("labels,req,expected", [
    ({"a": "1"}, Requirement("a", "In", ("1", "2")), True),
    ({}, Requirement("a", "In", ("1",)), False),
    ({"a": "3"}, Requirement("a", "NotIn", ("1",)), True),
    ({}, Requirement("a", "NotIn", ("1",)), True),
    ({"a": "1"}, Requirement("a", "NotIn", ("1",)), False),
    ({"a": ""}, Requirement("a", "Exists"), True),
    ({}, Requirement("a", "Exists"), False),
    ({}, Requirement("a", "DoesNotExist"), True),
    ({"a": "1"}, Requirement("a", "DoesNotExist"), False),
])
def test_requirement_matching(labels, req, expected):
    assert req.matches(labels) is expected


def test_selector_index_agrees_with_brute_force():
    rng = random.Random(7)
    keys, values = ["app", "tier", "env", "team"], ["a", "b", "c", ""]
    items = [{k: rng.choice(values) for k in keys if rng.random() < 0.6} for _ in range(300)]
    index = SelectorIndex(items)
    ops = ["In", "NotIn", "Exists", "DoesNotExist"]
    for _ in range(400):
        reqs = []
        for _ in range(rng.randint(0, 3)):
            op = rng.choice(ops)
            vals = tuple(sorted(set(rng.sample(values, rng.randint(1, 2))))) if op in ("In", "NotIn") else ()
            reqs.append(Requirement(rng.choice(keys), op, vals))
        sel = Selector(tuple(reqs))
        assert index.select(sel) == frozenset(i for i, labels in enumerate(items) if sel.matches(labels))


@pytest.mark.parametrize("spec,types", [
    ({"podSelector": {}}, ("Ingress",)),
    ({"podSelector": {}, "ingress": [{}]}, ("Ingress",)),
    ({"podSelector": {}, "egress": [{}]}, ("Ingress", "Egress")),
    ({"podSelector": {}, "egress": []}, ("Ingress",)),
    ({"podSelector": {}, "policyTypes": [], "egress": [{}]}, ("Ingress", "Egress")),
    ({"podSelector": {}, "policyTypes": ["Egress"]}, ("Egress",)),
    ({"podSelector": {}, "policyTypes": ["Egress", "Ingress"]}, ("Ingress", "Egress")),
])
def test_policy_types_defaulting(spec, types):
    assert parse(spec).policy.types == types


def test_protocol_defaults_to_tcp_and_ports_parse():
    p = parse({"podSelector": {}, "ingress": [{"ports": [{"port": 80}, {"port": "http"}, {"protocol": "UDP"}, {"port": 1000, "endPort": 2000}]}]}).policy
    assert [str(x) for x in p.ingress[0].ports] == ["TCP/80", "TCP/http", "UDP/*", "TCP/1000-2000"]


@pytest.mark.parametrize("spec,field,message", [
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]}, "spec.ingress[0].from[0].ipBlock.cidr", "not a valid CIDR"),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]}, "spec.ingress[0].from[0].ipBlock.cidr", "not a valid CIDR"),
    ({"ingress": [{"from": [{"ipBlock": {}}]}]}, "spec.ingress[0].from[0].ipBlock.cidr", "required"),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]}]}, "spec.egress[0].to[0].ipBlock.except[0]", "strict subset"),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}]}, "spec.egress[0].to[0].ipBlock.except[0]", "strict subset"),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["::/64"]}}]}]}, "spec.egress[0].to[0].ipBlock.except[0]", "strict subset"),
    ({"ingress": [{"ports": [{"port": 8080, "endPort": 80}]}]}, "spec.ingress[0].ports[0].endPort", "greater than or equal"),
    ({"ingress": [{"ports": [{"port": "http", "endPort": 90}]}]}, "spec.ingress[0].ports[0].endPort", "non-numeric"),
    ({"ingress": [{"ports": [{"endPort": 90}]}]}, "spec.ingress[0].ports[0].endPort", "port is not specified"),
    ({"ingress": [{"ports": [{"port": 0}]}]}, "spec.ingress[0].ports[0].port", "between 1 and 65535"),
    ({"ingress": [{"ports": [{"port": 70000}]}]}, "spec.ingress[0].ports[0].port", "between 1 and 65535"),
    ({"ingress": [{"ports": [{"port": "8080"}]}]}, "spec.ingress[0].ports[0].port", "at least one letter"),
    ({"ingress": [{"ports": [{"port": "Http"}]}]}, "spec.ingress[0].ports[0].port", "lower-case"),
    ({"ingress": [{"ports": [{"port": "a-very-long-port-name"}]}]}, "spec.ingress[0].ports[0].port", "15 characters"),
    ({"ingress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]}, "spec.ingress[0].ports[0].protocol", "Unsupported value"),
    ({"ingress": [{"from": [{}]}]}, "spec.ingress[0].from[0]", "must specify a peer"),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "namespaceSelector": {}}]}]}, "spec.ingress[0].from[0]", "ipBlock and another peer"),
    ({"policyTypes": ["Ingress", "Outgress"]}, "spec.policyTypes[1]", "Unsupported value"),
    ({"podselector": {"matchLabels": {"app": "x"}}}, "spec.podselector", "unknown field"),
    ({"ingress": [{"form": [{"podSelector": {}}]}]}, "spec.ingress[0].form", "unknown field"),
    ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "spec.podSelector.matchExpressions[0].values", "must be specified"),
    ({"ingress": "all"}, "spec.ingress", "must be a list"),
])
def test_invalid_policies_are_rejected_naming_the_field(spec, field, message):
    parsed = parse({"podSelector": {}, **spec})
    assert parsed.policy is None
    assert any(e.field == field and message in e.message for e in parsed.errors), parsed.errors


def test_cidr_with_host_bits_is_accepted_like_the_api():
    p = parse({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.1.2.3/8"}}]}]}).policy
    assert str(p.egress[0].peers[0].ip_block.cidr) == "10.0.0.0/8"


def test_missing_pod_selector_is_read_as_empty():
    p = parse({"policyTypes": ["Ingress"]}).policy
    assert p.pod_selector.empty and p.pod_selector_missing


def test_null_peer_selectors_are_absent_not_empty():
    p = parse({"podSelector": {}, "ingress": [{"from": [{"podSelector": None, "namespaceSelector": {}}]}]}).policy
    peer = p.ingress[0].peers[0]
    assert peer.pods is None and peer.namespaces is not None and peer.all_cluster_pods


def _np(ns, name, spec):
    return PolicyObject("NetworkPolicy", "networking.k8s.io/v1", ns, name, spec)


def test_a_batch_with_one_spec_in_many_namespaces_compiles_each_in_its_own():
    """Specs parsed once per batch: a peer without a namespaceSelector still means the policy's own
    namespace, labels and keys are each policy's, and the result is what one policy alone gives."""
    from audit.engine.kinds.networkpolicy import KIND
    from audit.inventory import Inventory

    spec = {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}},
                                                      {"namespaceSelector": {"matchLabels": {"env": "prod"}}}],
                                             "ports": [{"port": 80}]}]}
    objs = [_np("a", "p", spec), _np("b", "p", dict(spec)), _np("a", "q", spec), _np("b", "bad", {"podSelector": {}, "ingress": 5})]
    batch = KIND.compile(objs, Inventory((), (), ()))
    alone = [KIND.compile([o], Inventory((), (), ())).policies for o in objs[:3]]
    assert [p.key for p in batch.policies] == ["a/p", "b/p", "a/q"]
    for got, (want,) in zip(batch.policies, alone):
        (rule,), (expected,) = got.rules, want.rules
        assert (rule.label, rule.text, rule.field) == (expected.label, expected.text, expected.field)
        assert [p.pods for p in rule.peers] == [p.pods for p in expected.peers]
        assert rule.ports == expected.ports
    assert [p.rules[0].peers[0].pods.namespace for p in batch.policies] == ["a", "b", "a"]
    assert [p.rules[0].label for p in batch.policies] == ["a/p ingress[0]", "b/p ingress[0]", "a/q ingress[0]"]
    assert [(o.name, [e.field for e in errors]) for o, errors in batch.invalid] == [("bad", ["spec.ingress"])]


@pytest.mark.parametrize("first,second", [
    (float("nan"), None),  # orjson writes NaN as null
    (float("inf"), None),
    (__import__("datetime").date(2024, 1, 2), "2024-01-02"),  # a YAML date beside the string it would be written as
    (True, 1),
    (80, 80.0),
])
def test_specs_that_only_look_alike_as_json_are_parsed_apart(first, second):
    from audit.engine.kinds.networkpolicy import KIND
    from audit.inventory import Inventory

    def spec(port):
        return {"podSelector": {}, "ingress": [{"ports": [{"port": port}]}]}

    batch = KIND.compile([_np("a", "one", spec(first)), _np("a", "two", spec(second))], Inventory((), (), ()))
    alone = [KIND.compile([_np("a", n, spec(v))], Inventory((), (), ())) for n, v in (("one", first), ("two", second))]
    assert [(o.name, [str(e) for e in errs]) for o, errs in batch.invalid] == [
        (o.name, [str(e) for e in errs]) for c in alone for o, errs in c.invalid]
    assert [[(r.text, r.ports) for r in p.rules] for p in batch.policies] == [[(r.text, r.ports) for r in p.rules] for c in alone for p in c.policies]


def test_a_batch_parses_each_spec_once_and_shares_what_it_compiled(monkeypatch):
    from audit.engine.kinds import networkpolicy
    from audit.inventory import Inventory

    parsed = []
    real = networkpolicy._parse_spec
    monkeypatch.setattr(networkpolicy, "_parse_spec", lambda spec: parsed.append(spec) or real(spec))
    spec = {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 80}]}]}
    odd = {"podSelector": {}, "ingress": [{"ports": [{"port": float("nan")}]}]}  # written as null by orjson: never keyed
    batch = networkpolicy.KIND.compile([_np("a", "p", spec), _np("a", "q", dict(spec)), _np("b", "p", spec),
                                        _np("a", "n1", odd), _np("a", "n2", odd)], Inventory((), (), ()))
    assert len(parsed) == 3  # the shared spec once, the spec with NaN each time
    (p, q, other), bad = batch.policies, batch.invalid
    assert p.rules[0].peers[0] is q.rules[0].peers[0] and p.rules[0].ports is q.rules[0].ports  # one namespace: shared
    assert p.rules[0].peers[0] is not other.rules[0].peers[0]  # another namespace: its own peer
    assert p.rules[0] is not q.rules[0] and p.rules[0].label != q.rules[0].label
    assert [o.name for o, _ in bad] == ["n1", "n2"]
    assert networkpolicy.parse_policy(_np("a", "alone", spec)).policy is not None  # without a memo: parsed as ever
    dns = {"podSelector": {}, "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}},
                                                 {"ipBlock": {"cidr": "10.0.0.10/32"}}], "ports": [{"port": 53, "protocol": "UDP"}]}]}
    a, b = networkpolicy.KIND.compile([_np("a", "dns", dns), _np("b", "dns", dns)], Inventory((), (), ())).policies
    assert a.rules[0].peers is b.rules[0].peers and a.rules[0].label == "a/dns egress[0]"  # no peer means "this namespace"
