"""`connectivity` agrees with netpol-analyzer (np-guard) on AdminNetworkPolicy / Baseline semantics.

The scenarios are ours, written from what netpol-analyzer's published tests show
(`anp_banp_core_test`, `anp_np_banp_core_test`, `anp_test_10`, over the network-policy-api
conformance base of four houses); the expected lines are the connections its published
outputs list for them, in its line format.
"""

from __future__ import annotations

import yaml

from audit.engine.connectivity import connections
from tests.conftest import analyse
from tests.test_admin import anp, banp, np

HOUSES = {"gryffindor": "harry-potter", "slytherin": "draco-malfoy", "hufflepuff": "cedric-diggory", "ravenclaw": "luna-lovegood"}
PORTS = [(80, "TCP"), (8080, "TCP"), (5353, "UDP"), (53, "UDP"), (9003, "SCTP"), (9005, "SCTP")]


def base() -> list[dict]:
    """Four namespaces labelled by house, a two-replica StatefulSet of servers in each."""
    docs: list[dict] = []
    for house, name in HOUSES.items():
        ns = f"network-policy-conformance-{house}"
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"conformance-house": house}}})
        containers = [{"name": f"{name}-client", "image": "agnhost"}] + [
            {"name": f"{name}-{port}", "image": "agnhost", "ports": [{"containerPort": port, "protocol": proto}]} for port, proto in PORTS]
        docs.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": ns}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"conformance-house": house}},
            "template": {"metadata": {"labels": {"conformance-house": house}}, "spec": {"containers": containers}}}})
    return docs


def house(name: str) -> dict:
    return {"namespaces": {"matchLabels": {"conformance-house": name}}}


def by_name(name: str) -> dict:
    return {"pods": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": f"network-policy-conformance-{name}"}},
                     "podSelector": {}}}


def ref(name: str) -> str:
    return f"network-policy-conformance-{name}/{HOUSES[name]}[StatefulSet]"


def lines(*policies: dict) -> list[str]:
    text = "\n---\n".join(yaml.safe_dump(d) for d in base() + list(policies))
    return [str(c) for c in connections(analyse(text))]


def full_mesh(except_pairs: dict[tuple[str, str], str | None]) -> list[str]:
    """netpol-analyzer's listing: every house to every other and to and from 0.0.0.0/0, with the
    given pairs changed (None: no line)."""
    out = []
    everything = "0.0.0.0-255.255.255.255[External]"
    for h in HOUSES:
        if except_pairs.get(("outside", h), "All Connections"):
            out.append(f"{everything} => {ref(h)} : {except_pairs.get(('outside', h), 'All Connections')}")
    for src in HOUSES:
        if except_pairs.get((src, "outside"), "All Connections"):
            out.append(f"{ref(src)} => {everything} : {except_pairs.get((src, 'outside'), 'All Connections')}")
        for dst in HOUSES:
            if src != dst and except_pairs.get((src, dst), "All Connections"):
                out.append(f"{ref(src)} => {ref(dst)} : {except_pairs.get((src, dst), 'All Connections')}")
    return sorted(out)


PASS_SLYTHERIN = anp("pass-example", 10, house("gryffindor"),
                     ingress=[{"name": "pass-all-ingress-from-slytherin", "action": "Pass", "from": [house("slytherin")]}],
                     egress=[{"name": "pass-all-egress-to-slytherin", "action": "Pass", "to": [house("slytherin")]}])
BASELINE_DENY_SLYTHERIN = banp(house("gryffindor"),
                               ingress=[{"name": "deny-all-ingress-from-slytherin", "action": "Deny", "from": [house("slytherin")]}],
                               egress=[{"name": "deny-all-egress-to-slytherin", "action": "Deny", "to": [house("slytherin")]}])


def test_anp_pass_then_baseline_deny():
    """anp_banp_core_test: Pass hands Slytherin's traffic to the (absent) NetworkPolicy tier, so the baseline denies it."""
    expected = full_mesh({("gryffindor", "slytherin"): None, ("slytherin", "gryffindor"): None})
    assert sorted(lines(PASS_SLYTHERIN, BASELINE_DENY_SLYTHERIN)) == expected


def test_anp_pass_then_networkpolicy_isolation_skips_the_baseline():
    """anp_np_banp_core_test: a NetworkPolicy that isolates Gryffindor and allows only Slytherin decides; the baseline is not reached."""
    allow = np("network-policy-conformance-gryffindor", "allow-gress-from-to-slytherin-to-gryffindor", {
        "podSelector": {}, "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"conformance-house": "slytherin"}}}]}],
        "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"conformance-house": "slytherin"}}}]}]})
    gone = {("outside", "gryffindor"): None, ("gryffindor", "outside"): None}
    for other in ("hufflepuff", "ravenclaw"):
        gone[("gryffindor", other)] = gone[(other, "gryffindor")] = None
    assert sorted(lines(PASS_SLYTHERIN, allow, BASELINE_DENY_SLYTHERIN)) == full_mesh(gone)


def test_first_matching_admin_rule_decides_port_by_port():
    """anp_test_10: an Allow before a Deny before a Pass to Ravenclaw; a UDP 5353 Deny before its Pass to
    Slytherin; only UDP 53 to Gryffindor, then a Deny of the rest."""
    policy = anp("egress-udp", 7, {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "network-policy-conformance-hufflepuff"}}}, egress=[
        {"name": "allow-to-ravenclaw-everything", "action": "Allow", "to": [by_name("ravenclaw")]},
        {"name": "deny-to-ravenclaw-everything", "action": "Deny", "to": [by_name("ravenclaw")]},
        {"name": "pass-to-ravenclaw-everything", "action": "Pass", "to": [by_name("ravenclaw")]},
        {"name": "deny-to-slytherin-at-port-5353", "action": "Deny", "to": [by_name("slytherin")],
         "ports": [{"portNumber": {"protocol": "UDP", "port": 5353}}]},
        {"name": "pass-to-slytherin-at-port-5353", "action": "Pass", "to": [by_name("slytherin")],
         "ports": [{"portNumber": {"protocol": "UDP", "port": 5353}}]},
        {"name": "allow-to-gryffindor-at-port-53", "action": "Allow", "to": [by_name("gryffindor")],
         "ports": [{"portNumber": {"protocol": "UDP", "port": 53}}]},
        {"name": "deny-to-gryffindor-everything-else", "action": "Deny", "to": [by_name("gryffindor")]},
    ])
    expected = full_mesh({("hufflepuff", "gryffindor"): "UDP 53",
                          ("hufflepuff", "slytherin"): "SCTP 1-65535,TCP 1-65535,UDP 1-5352,5354-65535"})
    assert sorted(lines(policy)) == expected
