"""DNS names as destinations: Cilium's matchName and matchPattern as pkg/fqdn/matchpattern reads them,
the lookup (blocked, refused by rules.dns, intercepted, or at layer 4 only: a qualified answer),
answers that depend on the address a name resolves to (UNKNOWN unless --address), `verify`, and
the finding for toFQDNs rules whose pods' lookups Cilium does not see."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.engine.dnsnames import is_dns_name, name_matches
from tests.conftest import audit, findings

runner = CliRunner()


@pytest.mark.parametrize("pattern,name,expected", [
    ("cilium.io", "cilium.io", True), ("cilium.io", "sub.cilium.io", False), ("cilium.io", "CILIUM.IO.", True),
    ("*.cilium.io", "sub.cilium.io", True), ("*.cilium.io", "cilium.io", False), ("*.cilium.io", "a.b.cilium.io", False),
    ("*cilium.io", "cilium.io", True), ("*cilium.io", "subcilium.io", True), ("*cilium.io", "sub-cilium.io", True),
    ("*cilium.io", "www.cilium.io", False), ("sub*.cilium.io", "subdomain.cilium.io", True), ("sub*.cilium.io", "www.cilium.io", False),
    ("part*ial.com", "part-extra-ial.com", True), ("*.*.cilium.io", "_foobar._tcp.cilium.io", True), ("*.*.cilium.io", "x.cilium.io", False),
    ("**.cilium.io", "app.cilium.io", True), ("**.cilium.io", "test.app.cilium.io", True), ("**.cilium.io", "cilium.io", False),
    ("*", "anything.example.com", True), ("**", "a.b", True), ("*.", "x.y.z", True),
    ("api.stripe.com.", "api.stripe.com", True), ("API.Stripe.com", "api.stripe.com.", True), ("api.stripe.com", "apixstripe.com", False),
])
def test_match_patterns(pattern, name, expected):
    assert name_matches(pattern, name) is expected


@pytest.mark.parametrize("text,expected", [("api.stripe.com", True), ("shop/web", False), ("shop", False), ("10.0.0.1", True),
                                           ("bad name.com", False)])
def test_what_reads_as_a_dns_name(text, expected):
    # An address is tried as an address first (reach), so its shape as a name does not matter there.
    assert is_dns_name(text) is expected


def base(*policies: dict) -> str:
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "checkout", "namespace": "shop", "labels": {"app": "checkout"}},
             "spec": {"containers": [{"name": "c", "image": "i"}]}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
             "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 53, "protocol": "UDP"}]}]}},
            *policies]
    return "\n---\n".join(yaml.safe_dump(d) for d in docs)


DNS_PEER = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}


def egress(*rules: dict, name: str = "checkout") -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"endpointSelector": {"matchLabels": {"app": "checkout"}}, "egress": list(rules)}}


def dns_rule(patterns: list[str] | None) -> dict:
    port: dict = {"ports": [{"port": "53", "protocol": "ANY"}]}
    if patterns is not None:
        port["rules"] = {"dns": [{"matchPattern": p} for p in patterns]}
    return {"toEndpoints": [DNS_PEER], "toPorts": [port]}


STRIPE = {"toFQDNs": [{"matchName": "api.stripe.com"}], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}


def reach(text: str, destination: str, *extra: str, tmp_path) -> tuple[int, str]:
    path = tmp_path / "in.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["reach", "shop/checkout", destination, "-p", "443", str(path), *extra])
    return result.exit_code, result.stdout


@pytest.mark.parametrize("policy,destination,code,word", [
    (egress(dns_rule(["*"]), STRIPE), "api.stripe.com", 0, "ALLOWED"),  # intercepted lookup, toFQDNs allows
    (egress(dns_rule(["*.stripe.com"]), STRIPE), "api.stripe.com", 0, "ALLOWED"),
    (egress(dns_rule(["*.stripe.com"]), STRIPE), "API.Stripe.com.", 0, "ALLOWED"),
    (egress(dns_rule(["*.stripe.com"]), STRIPE), "evil.example.com", 1, "DENIED"),  # the proxy refuses the lookup
    (egress(dns_rule(["*"]), STRIPE), "evil.example.com", 1, "DENIED"),  # resolves, but nothing allows it
    (egress(dns_rule(None), STRIPE), "api.stripe.com", 6, "CONDITIONAL"),  # 53 at layer 4 only: not intercepted
    (egress(STRIPE), "api.stripe.com", 1, "DENIED"),  # DNS blocked: no lookup at all
])
def test_reach_a_name(policy, destination, code, word, tmp_path):
    got, out = reach(base(policy), destination, tmp_path=tmp_path)
    assert got == code and word in out, out


def test_an_answer_that_depends_on_the_address_is_unknown_unless_given(tmp_path):
    policy = egress(dns_rule(["*"]), {"toCIDR": ["203.0.113.0/24"], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]})
    code, out = reach(base(policy), "partner.example.com", tmp_path=tmp_path)
    assert code == 6 and "UNKNOWN" in out and "203.0.113.0-203.0.113.255 allowed" in out and "give --address" in out
    assert reach(base(policy), "partner.example.com", "--address", "203.0.113.9", tmp_path=tmp_path)[0] == 0
    assert reach(base(policy), "partner.example.com", "--address", "198.51.100.1", tmp_path=tmp_path)[0] == 1
    assert reach(base(policy), "partner.example.com", "--address", "nope", tmp_path=tmp_path)[0] == 2


def test_an_unisolated_pod_reaches_any_name(tmp_path):
    assert reach(base(), "anything.example.com", tmp_path=tmp_path)[0] == 0


def test_verify_takes_names(tmp_path):
    path = tmp_path / "in.yaml"
    path.write_text(base(egress(dns_rule(["*"]), STRIPE)))
    expect = tmp_path / "e.yaml"
    expect.write_text(yaml.safe_dump({"expectations": [
        {"from": "shop/checkout", "to": "api.stripe.com", "port": 443, "expect": "allowed"},
        {"from": "shop/checkout", "to": "evil.example.com", "port": 443, "expect": "denied"}]}))
    assert runner.invoke(app, ["verify", str(expect), str(path)]).exit_code == 0


def test_fqdn_rules_without_interception_are_a_finding():
    plain = audit(base(egress(dns_rule(None), STRIPE)))
    (hit,) = findings(plain, "NP-DNS-003")
    assert "api.stripe.com" in hit.message and "layer 4 only" in hit.message
    refused = audit(base(egress(dns_rule(["*.internal"]), STRIPE)))
    (hit,) = findings(refused, "NP-DNS-003")
    assert "refuses a lookup of api.stripe.com." in hit.message
    assert not findings(audit(base(egress(dns_rule(["*"]), STRIPE))), "NP-DNS-003")


@pytest.mark.parametrize("selector,message", [
    ({"matchName": "bad name"}, "is not a valid matchName"), ({"matchName": "*.x.com"}, "is not a valid matchName"),
    ({"matchName": "a.com", "matchPattern": "*.b.com"}, "exactly one of matchName or matchPattern"), ({}, "exactly one of"),
    ({"matchPattern": "x" * 256}, "at most 255"),
])
def test_fqdn_selectors_are_validated(selector, message):
    bad = egress({"toFQDNs": [selector]})
    (hit,) = findings(audit(base(bad)), "NP-HYG-007")
    assert message in hit.message


def test_fqdn_finding_of_a_clusterwide_policy_leaves_out_excluded_namespaces():
    """A clusterwide toFQDNs policy selects pods of every namespace: the finding names the workloads of
    audited namespaces only (an excluded namespace's pods are not the audit's to report)."""
    clusterwide = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "to-stripe"},
                   "spec": {"endpointSelector": {"matchLabels": {"app": "checkout"}}, "egress": [dns_rule(None), STRIPE]}}
    other = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy"}},
             {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "checkout", "namespace": "legacy", "labels": {"app": "checkout"}},
              "spec": {"containers": [{"name": "c", "image": "i"}]}}]
    text = base(clusterwide, *other)
    (hit,) = findings(audit(text), "NP-DNS-003")
    assert hit.objects == ("legacy/checkout[Pod]", "shop/checkout[Pod]"), hit.objects
    (hit,) = findings(audit(text, {"excludeNamespaces": ["legacy"]}), "NP-DNS-003")
    assert hit.objects == ("shop/checkout[Pod]",), hit.objects
