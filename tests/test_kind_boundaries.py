"""Boundaries and branches of the Cilium and Calico readers that mutation testing showed no test held:
every validation rule with a value on each side of it, every default with a case that depends on it,
and the verdicts that depend on a single comparison."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.engine.kinds import kind_of
from tests.conftest import analyse, audit, findings, inventory
from tests.test_kind_fields import API, CLUSTER, DB, WEB, allowed, ccnp, cnp, gnp, knp, text

runner = CliRunner()
TCP = lambda port: [{"ports": [{"port": str(port), "protocol": "TCP"}]}]  # noqa: E731


def errors(obj: dict, extra: str = "") -> list[str]:
    """The errors the object's kind rejects it with (empty: valid)."""
    inv = inventory(CLUSTER + extra + "\n---\n" + yaml.safe_dump(obj))
    policy = next(p for p in inv.policies if p.name == obj["metadata"]["name"])
    kind = kind_of(policy.api_version, policy.kind)
    assert kind is not None
    result = kind.compile([p for p in inv.policies if kind_of(p.api_version, p.kind) is kind], inv)
    return [str(e) for o, errs in result.invalid if o.name == policy.name for e in errs]


def compiled(obj: dict):
    inv = inventory(text(obj))
    kind = kind_of(obj["apiVersion"], obj["kind"])
    assert kind is not None
    result = kind.compile([p for p in inv.policies if kind_of(p.api_version, p.kind) is kind], inv)
    assert not result.invalid, result.invalid
    return result.policies


def ingress_rule(rule: dict, **spec: object) -> dict:
    return cnp({"endpointSelector": API, "ingress": [rule], **spec})


# -- Cilium: what the sanitizer and the CRD accept ---------------------------------------------------

CILIUM = [
    ("40 ports in one entry", ingress_rule({"toPorts": [{"ports": [{"port": str(1000 + i), "protocol": "TCP"} for i in range(40)]}]}), None),
    ("41 ports in one entry", ingress_rule({"toPorts": [{"ports": [{"port": str(1000 + i), "protocol": "TCP"} for i in range(41)]}]}),
     "at most 40 ports"),
    ("a reserved label with a valid value", cnp({"endpointSelector": {"matchLabels": {"reserved:host": ""}}, "ingress": [{}]}), None),
    ("a reserved label with an invalid value", cnp({"endpointSelector": {"matchLabels": {"reserved:host": "bad value!"}}, "ingress": [{}]}),
     "matchLabels"),
    ("a reserved expression: Exists without values", cnp({"endpointSelector": {"matchExpressions": [{"key": "reserved:host", "operator": "Exists"}]},
                                                          "ingress": [{}]}), None),
    ("a reserved expression with an unknown operator", cnp({"endpointSelector": {"matchExpressions": [
        {"key": "reserved:host", "operator": "Bogus", "values": []}]}, "ingress": [{}]}), "needs an operator"),
    ("a reserved expression whose values are not a list", cnp({"endpointSelector": {"matchExpressions": [
        {"key": "reserved:host", "operator": "In", "values": "x"}]}, "ingress": [{}]}), "needs an operator"),
    ("toEndpoints and toFQDNs in one egress rule", cnp({"endpointSelector": API, "egress": [
        {"toEndpoints": [DB], "toFQDNs": [{"matchName": "a.example.com"}]}]}), "combining toEndpoints and toFQDNs"),
    ("authentication: an unknown mode", ingress_rule({"fromEndpoints": [WEB], "authentication": {"mode": "bogus"}}), "supported values"),
    ("authentication: test-always-fail", ingress_rule({"fromEndpoints": [WEB], "authentication": {"mode": "test-always-fail"}}), None),
    ("toServices: not an object", cnp({"endpointSelector": API, "egress": [{"toServices": ["db-svc"]}]}), "exactly one of k8sService"),
    ("toServices: neither reference", cnp({"endpointSelector": API, "egress": [{"toServices": [{}]}]}), "exactly one of k8sService"),
    ("toServices: both references", cnp({"endpointSelector": API, "egress": [{"toServices": [
        {"k8sService": {"serviceName": "db-svc"}, "k8sServiceSelector": {"selector": {}}}]}]}), "exactly one of k8sService"),
    ("k8sService: serviceName not a string", cnp({"endpointSelector": API, "egress": [{"toServices": [{"k8sService": {"serviceName": 5}}]}]}),
     "needs serviceName"),
    ("k8sService: namespace not a string", cnp({"endpointSelector": API, "egress": [{"toServices": [
        {"k8sService": {"serviceName": "db-svc", "namespace": 5}}]}]}), "needs serviceName"),
    ("k8sService: not an object", cnp({"endpointSelector": API, "egress": [{"toServices": [{"k8sService": "db-svc"}]}]}), "needs serviceName"),
    ("k8sServiceSelector: no selector", cnp({"endpointSelector": API, "egress": [{"toServices": [{"k8sServiceSelector": {"namespace": "prod"}}]}]}),
     "needs a selector"),
    ("k8sServiceSelector: namespace not a string", cnp({"endpointSelector": API, "egress": [{"toServices": [
        {"k8sServiceSelector": {"namespace": 5, "selector": {}}}]}]}), "needs a selector"),
    ("k8sServiceSelector: not an object", cnp({"endpointSelector": API, "egress": [{"toServices": [{"k8sServiceSelector": "x"}]}]}),
     "needs a selector"),
    ("k8sServiceSelector: valid", cnp({"endpointSelector": API, "egress": [{"toServices": [{"k8sServiceSelector": {"selector": {}}}]}]}), None),
    ("rules.http: not a list", ingress_rule({"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": "GET"}}]}),
     "rules.http: must be a list"),
    ("rules.kafka: not a list", ingress_rule({"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"kafka": {}}}]}),
     "rules.kafka: must be a list"),
    ("rules.l7proto: not a string", ingress_rule({"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"l7proto": 5}}]}),
     "rules.l7proto: must be a string"),
    ("rules.l7proto: a string", ingress_rule({"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"l7proto": "r2d2"}}]}), None),
    ("VRRP with port 0", ingress_rule({"toPorts": [{"ports": [{"port": "0", "protocol": "VRRP"}]}]}), None),
    ("VRRP with a port", ingress_rule({"toPorts": [{"ports": [{"port": "1", "protocol": "VRRP"}]}]}), "VRRP has no ports"),
    ("VRRP with a number for a port", ingress_rule({"toPorts": [{"ports": [{"port": 0, "protocol": "VRRP"}]}]}), "VRRP has no ports"),
    ("a 15-character port name", ingress_rule({"toPorts": [{"ports": [{"port": "abcdefghijklmno", "protocol": "TCP"}]}]}), None),
    ("a 16-character port name", ingress_rule({"toPorts": [{"ports": [{"port": "abcdefghijklmnop", "protocol": "TCP"}]}]}),
     "is not a port number"),
    ("endPort 0", ingress_rule({"toPorts": [{"ports": [{"port": "80", "endPort": 0, "protocol": "TCP"}]}]}), None),
    ("endPort 65535", ingress_rule({"toPorts": [{"ports": [{"port": "80", "endPort": 65535, "protocol": "TCP"}]}]}), None),
    ("endPort 65536", ingress_rule({"toPorts": [{"ports": [{"port": "80", "endPort": 65536, "protocol": "TCP"}]}]}), "must be a number from 0"),
    ("endPort -1", ingress_rule({"toPorts": [{"ports": [{"port": "80", "endPort": -1, "protocol": "TCP"}]}]}), "must be a number from 0"),
    ("port 08 (not octal)", ingress_rule({"toPorts": [{"ports": [{"port": "08", "protocol": "TCP"}]}]}), "is not a port number"),
    ("rules not an object", ingress_rule({"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": "x"}]}), "exactly one of http"),
    ("rules with none", ingress_rule({"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {}}]}), "exactly one of http"),
    ("rules with two", ingress_rule({"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [], "kafka": []}}]}),
     "exactly one of http"),
    ("DNS rules on a port range", cnp({"endpointSelector": API, "egress": [{"toEndpoints": [DB], "toPorts": [
        {"ports": [{"port": "53", "endPort": 60, "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}]}]}), "DNS rules need ports"),
    ("DNS rules on one port", cnp({"endpointSelector": API, "egress": [{"toEndpoints": [DB], "toPorts": [
        {"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}]}]}), None),
    ("DNS rules without ports", cnp({"endpointSelector": API, "egress": [{"toEndpoints": [DB], "toPorts": [
        {"rules": {"dns": [{"matchPattern": "*"}]}}]}]}), "DNS rules need ports"),
    ("icmps fields not a list", ingress_rule({"icmps": [{"fields": "x"}]}), "must be a list of at most 40"),
    ("41 icmp fields", ingress_rule({"icmps": [{"fields": [{"type": 8}] * 41}]}), "must be a list of at most 40"),
    ("40 icmp fields", ingress_rule({"icmps": [{"fields": [{"type": 8}] * 40}]}), None),
    ("icmp type 255", ingress_rule({"icmps": [{"fields": [{"type": 255}]}]}), None),
    ("icmp type 0", ingress_rule({"icmps": [{"fields": [{"type": 0}]}]}), None),
    ("icmp type 256", ingress_rule({"icmps": [{"fields": [{"type": 256}]}]}), "needs a type"),
    ("icmp type -1", ingress_rule({"icmps": [{"fields": [{"type": -1}]}]}), "needs a type"),
    ("icmp type true", ingress_rule({"icmps": [{"fields": [{"type": True}]}]}), "needs a type"),
    ("icmp type by name", ingress_rule({"icmps": [{"fields": [{"type": "EchoRequest", "family": "IPv6"}]}]}), None),
    ("icmp type name with a dash", ingress_rule({"icmps": [{"fields": [{"type": "Echo-Request"}]}]}), "needs a type"),
    ("icmp family IPv7", ingress_rule({"icmps": [{"fields": [{"type": 8, "family": "IPv7"}]}]}), "needs a type"),
    ("icmp field not an object", ingress_rule({"icmps": [{"fields": [8]}]}), "needs a type"),
    ("a matchPattern of 255 characters", cnp({"endpointSelector": API, "egress": [{"toFQDNs": [{"matchPattern": "x" * 255}]}]}), None),
    ("a matchName of 256 characters", cnp({"endpointSelector": API, "egress": [{"toFQDNs": [{"matchName": "x" * 256}]}]}), "at most 255"),
    ("headerMatches entry not an object", ingress_rule({"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                                                     "rules": {"http": [{"headerMatches": ["X-Env"]}]}}]}), "needs a name"),
    ("headerMatches without a name", ingress_rule({"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                                                "rules": {"http": [{"headerMatches": [{"value": "x"}]}]}}]}), "needs a name"),
    ("enableDefaultDeny with booleans", cnp({"endpointSelector": API, "ingress": [{}], "enableDefaultDeny": {"ingress": True, "egress": False}}),
     None),
]


@pytest.mark.parametrize("obj,message", [c[1:] for c in CILIUM], ids=[c[0] for c in CILIUM])
def test_cilium_validation_boundaries(obj, message):
    found = errors(obj)
    if message is None:
        assert found == []
    else:
        assert any(message in e for e in found), found


CILIUM_VERDICTS = [
    # fromEntities: none names no peer: the rule allows nothing (and isolates)
    ("entity none names no peer", [ingress_rule({"fromEntities": ["none"]})], "prod/web", "prod/api", 8080, False),
    ("a k8s: expression selects pods", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [
        {"matchExpressions": [{"key": "k8s:app", "operator": "In", "values": ["web"]}]}]}]})], "prod/web", "prod/api", 8080, True),
    ("a CIDR set never matches a pod", [cnp({"endpointSelector": WEB, "egress": [{"toCIDRSet": [{"cidr": "10.0.0.0/8"}]}]})],
     "prod/web", "prod/db", 5432, False),
    ("a CIDR set matches its addresses", [cnp({"endpointSelector": WEB, "egress": [{"toCIDRSet": [{"cidr": "10.0.0.0/8"}]}]})],
     "prod/web", "10.9.9.9", 443, True),
    ("k8sService in the namespace given only", [cnp({"endpointSelector": WEB, "egress": [{"toServices": [
        {"k8sService": {"serviceName": "db-svc", "namespace": "staging"}}]}]})], "prod/web", "prod/db", 5432, False),
    ("k8sService in its namespace", [cnp({"endpointSelector": WEB, "egress": [{"toServices": [
        {"k8sService": {"serviceName": "db-svc", "namespace": "prod"}}]}]})], "prod/web", "prod/db", 5432, True),
    ("port 0 with endPort 100: from 1", [ingress_rule({"toPorts": [{"ports": [{"port": "0", "endPort": 100, "protocol": "TCP"}]}]})],
     "prod/web", "prod/api", 1, True),
    ("k8sServiceSelector in the namespace given only", [cnp({"endpointSelector": WEB, "egress": [{"toServices": [
        {"k8sServiceSelector": {"namespace": "staging", "selector": {"matchLabels": {"tier": "data"}}}}]}]})], "prod/web", "prod/db", 5432, False),
    ("k8sServiceSelector by the Service's labels", [cnp({"endpointSelector": WEB, "egress": [{"toServices": [
        {"k8sServiceSelector": {"namespace": "prod", "selector": {"matchLabels": {"tier": "data"}}}}]}]})], "prod/web", "prod/db", 5432, True),
    ("port 0 with endPort 100: up to 100", [ingress_rule({"toPorts": [{"ports": [{"port": "0", "endPort": 100, "protocol": "TCP"}]}]})],
     "prod/web", "prod/api", 100, True),
    ("port 0 with endPort 100: not 101", [ingress_rule({"toPorts": [{"ports": [{"port": "0", "endPort": 100, "protocol": "TCP"}]}]})],
     "prod/web", "prod/api", 101, False),
    ("port 0 with endPort 65535: every port", [ingress_rule({"toPorts": [{"ports": [{"port": "0", "endPort": 65535, "protocol": "TCP"}]}]})],
     "prod/web", "prod/api", 65535, True),
    ("port 0 with endPort 65534: not 65535", [ingress_rule({"toPorts": [{"ports": [{"port": "0", "endPort": 65534, "protocol": "TCP"}]}]})],
     "prod/web", "prod/api", 65535, False),
    # A port that looks like a service name is one ("0x10 is now considered a name rather than number 16"):
    ("0x1F90 is a port name", [ingress_rule({"toPorts": [{"ports": [{"port": "0x1F90", "protocol": "TCP"}]}]})], "prod/web", "prod/api", 8080, False),
    ("a hexadecimal too long for a name is a number", [ingress_rule({"toPorts": [{"ports": [{"port": "0x00000000001F90", "protocol": "TCP"}]}]})],
     "prod/web", "prod/api", 8080, True),
    ("a long hexadecimal number is that port only", [ingress_rule({"toPorts": [{"ports": [{"port": "0x00000000001F90", "protocol": "TCP"}]}]})],
     "prod/web", "prod/api", 8081, False),
    ("port in Go's octal", [ingress_rule({"toPorts": [{"ports": [{"port": "017620", "protocol": "TCP"}]}]})], "prod/web", "prod/api", 8080, True),
    ("a namespaced subject naming another namespace selects nothing", [cnp({"endpointSelector": {"matchLabels": {
        "k8s:io.kubernetes.pod.namespace": "staging"}}, "ingress": [{}]})], "prod/web", "staging/web", 80, True),
    ("an empty toServices list names every peer", [cnp({"endpointSelector": WEB, "egress": [{"toServices": [], "toPorts": TCP(5432)}]})],
     "prod/web", "prod/db", 5432, True),
]


@pytest.mark.parametrize("objs,src,dst,port,expected", [c[1:] for c in CILIUM_VERDICTS], ids=[c[0] for c in CILIUM_VERDICTS])
def test_cilium_verdict_boundaries(objs, src, dst, port, expected):
    assert allowed(objs, src, dst, port) is expected


def test_cilium_texts_name_what_the_rule_names():
    (policy,) = compiled(cnp({"endpointSelector": {"matchLabels": {"$host": "", "reserved:world": "x"}}, "ingress": [{}]}))
    assert "reserved:host" in policy.subject.text and "reserved:world=x" in policy.subject.text
    (empty,) = compiled(cnp({"endpointSelector": API, "ingress": [{}, {"toPorts": TCP(80)}]}))
    assert [r.text for r in empty.rules] == ["no peer", "any peer"]
    (auth,) = compiled(ingress_rule({"fromEndpoints": [WEB], "authentication": {"mode": "required"}}))
    assert any("mutual authentication (required)" in limit for limit in auth.rules[0].limits)
    (off,) = compiled(ingress_rule({"fromEndpoints": [WEB], "authentication": {"mode": "disabled"}}))
    assert not any("authentication" in limit for limit in off.rules[0].limits)


def test_cilium_host_entity_is_named_as_not_evaluable():
    notes = [f.message for f in findings(audit(text(ingress_rule({"fromEntities": ["host"]}))), "NP-HYG-009")]
    assert any("entity host" in n for n in notes), notes


def test_a_rejected_cilium_policy_s_subject_keeps_its_namespace():
    kind = kind_of("cilium.io/v2", "CiliumNetworkPolicy")
    assert kind is not None
    inv = inventory(text(cnp({"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "staging"}}, "bogus": 1})))
    (obj,) = [p for p in inv.policies if p.kind == "CiliumNetworkPolicy"]
    selection = kind.subject(obj)
    assert selection is not None and selection.namespace == "prod"
    (cluster_obj,) = [p for p in inventory(text(ccnp({"endpointSelector": API, "bogus": 1}))).policies if p.kind.startswith("CiliumC")]
    clusterwide = kind.subject(cluster_obj)
    assert clusterwide is not None and clusterwide.namespace is None


# -- Calico: what the validator accepts ----------------------------------------------------------------

def rule(**fields: object) -> dict:
    return knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", **fields}]})


def erule(**fields: object) -> dict:
    return knp({"selector": "app == 'api'", "egress": [{"action": "Allow", **fields}]})


SVC_EXTRA = """
---
apiVersion: v1
kind: Service
metadata: {name: api-svc, namespace: prod}
spec: {selector: {app: api}, ports: [{port: 80, targetPort: 8080}]}
"""

CALICO = [
    ("a selector of one word", knp({"selector": "has", "ingress": [{"action": "Deny"}]}), "invalid selector"),
    ("a selector of one keyword", knp({"selector": "all", "ingress": [{"action": "Deny"}]}), "invalid selector"),
    ("a selector of 1024 characters", knp({"selector": "app == '" + "x" * 1015 + "'", "ingress": [{"action": "Deny"}]}), None),
    ("a selector of 1025 characters", knp({"selector": "app == '" + "x" * 1016 + "'", "ingress": [{"action": "Deny"}]}), "at most 1024"),
    ("global() inside a larger namespaceSelector", rule(source={"namespaceSelector": "global() && has(x)"}), "global() is allowed only"),
    ("ipVersion 4", rule(ipVersion=4), None),
    ("ipVersion 5", rule(ipVersion=5), "supported values: 4, 6"),
    ("ICMP over IPv6", rule(protocol="ICMP", ipVersion=6), "does not carry ICMP"),
    ("ICMPv6 over IPv4", rule(protocol="ICMPv6", ipVersion=4), "does not carry ICMPv6"),
    ("protocol 1 over IPv6", rule(protocol=1, ipVersion=6), "does not carry ICMP"),
    ("ICMP over IPv4", rule(protocol="ICMP", ipVersion=4), None),
    ("ICMPv6 over IPv6", rule(protocol="ICMPv6", ipVersion=6), None),
    ("IPv4 nets with ipVersion 4", rule(ipVersion=4, source={"nets": ["10.0.0.0/8"]}), None),
    ("IPv4 nets with ipVersion 6", rule(ipVersion=6, source={"nets": ["10.0.0.0/8"]}), "do not match ipVersion 6"),
    ("a source Service in an egress rule", erule(source={"services": {"name": "db-svc", "namespace": "prod"}}),
     "spec.egress[0].source.services: a Service may be named only"),
    ("a destination Service in an ingress rule", rule(destination={"services": {"name": "db-svc", "namespace": "prod"}}),
     "spec.ingress[0].destination.services: a Service may be named only"),
    ("a destination Service with notPorts", erule(protocol="TCP", destination={"services": {"name": "db-svc", "namespace": "prod"},
                                                                              "notPorts": [80]}), "cannot be combined with destination.services"),
    ("serviceAccounts names not a list", rule(source={"serviceAccounts": {"names": "api-sa"}}), "must be a list of service account names"),
    ("serviceAccounts names not strings", rule(source={"serviceAccounts": {"names": [5]}}), "must be a list of service account names"),
    ("serviceAccounts names empty", rule(source={"serviceAccounts": {"names": []}}), None),
    ("services without a name", rule(source={"services": {"name": "", "namespace": "prod"}}), "services.name: required"),
    ("services name not a string", rule(source={"services": {"name": 5}}), "services.name: required"),
    ("services not an object", rule(source={"services": "db-svc"}), "services.name: required"),
    ("services without a namespace in a global policy", gnp({"selector": "app == 'api'", "ingress": [
        {"action": "Allow", "source": {"services": {"name": "db-svc"}}}]}), "required in a GlobalNetworkPolicy"),
    ("services without a namespace in a namespaced policy", rule(source={"services": {"name": "db-svc"}}), None),
    ("a named port with protocol ICMP", rule(protocol="ICMP", destination={"ports": ["http"]}), "protocol ICMP has no ports"),
    ("icmp type 254", rule(protocol="ICMP", icmp={"type": 254}), None),
    ("icmp type 255", rule(protocol="ICMP", icmp={"type": 255}), "from 0 to 254"),
    ("icmp type 0 and code 0", rule(protocol="ICMP", icmp={"type": 0, "code": 0}), None),
    ("icmp type -1", rule(protocol="ICMP", icmp={"type": -1}), "from 0 to 254"),
    ("icmp type true", rule(protocol="ICMP", icmp={"type": True}), "from 0 to 254"),
    ("icmp type as text", rule(protocol="ICMP", icmp={"type": "8"}), "from 0 to 254"),
    ("icmp code 255", rule(protocol="ICMP", icmp={"type": 8, "code": 255}), None),
    ("icmp code 256", rule(protocol="ICMP", icmp={"type": 8, "code": 256}), "from 0 to 255"),
    ("icmp code -1", rule(protocol="ICMP", icmp={"type": 8, "code": -1}), "from 0 to 255"),
    ("icmp code true", rule(protocol="ICMP", icmp={"type": 8, "code": True}), "from 0 to 255"),
    ("icmp code as text", rule(protocol="ICMP", icmp={"type": 8, "code": "0"}), "from 0 to 255"),
    ("icmp code without a type", rule(protocol="ICMP", icmp={"code": 0}), "without an ICMP type"),
    ("icmp with TCP", rule(protocol="TCP", icmp={"type": 8}), "needs protocol ICMP"),
    ("icmp with protocol 58", rule(protocol=58, icmp={"type": 128}), None),
    ("notICMP with TCP", rule(protocol="TCP", notICMP={"type": 8}), None),
    ("http without methods", rule(http={"paths": [{"exact": "/x"}]}), None),
    ("http methods repeated", rule(http={"methods": ["GET", "GET"]}), "distinct method names"),
    ("http methods not a list", rule(http={"methods": "GET"}), "distinct method names"),
    ("http methods not strings", rule(http={"methods": [1]}), "distinct method names"),
    ("http path with exact and prefix", rule(http={"paths": [{"exact": "/x", "prefix": "/y"}]}), "exactly one of exact or prefix"),
    ("http path by regex", rule(http={"paths": [{"regex": "/x"}]}), "exactly one of exact or prefix"),
    ("http path not an object", rule(http={"paths": ["/x"]}), "exactly one of exact or prefix"),
    ("http path without /", rule(http={"paths": [{"exact": "x"}]}), "must start with /"),
    ("http path with ?", rule(http={"paths": [{"exact": "/a?b"}]}), "must start with /"),
    ("http path not a string", rule(http={"paths": [{"prefix": 5}]}), "must start with /"),
    ("http path prefix", rule(http={"paths": [{"prefix": "/ok"}]}), None),
    ("port 0", rule(protocol="TCP", destination={"ports": [0]}), "is not a port"),
    ("port 1", rule(protocol="TCP", destination={"ports": [1]}), None),
    ("port 65535", rule(protocol="TCP", destination={"ports": [65535]}), None),
    ("port 65536", rule(protocol="TCP", destination={"ports": [65536]}), "is not a port"),
    ("port '0'", rule(protocol="TCP", destination={"ports": ["0"]}), "is not a port"),
    ("port '1'", rule(protocol="TCP", destination={"ports": ["1"]}), None),
    ("port '65535'", rule(protocol="TCP", destination={"ports": ["65535"]}), None),
    ("port '65536'", rule(protocol="TCP", destination={"ports": ["65536"]}), "is not a port"),
    ("range 0:10", rule(protocol="TCP", destination={"ports": ["0:10"]}), "is not a port"),
    ("range 1:65535", rule(protocol="TCP", destination={"ports": ["1:65535"]}), None),
    ("range 1:65536", rule(protocol="TCP", destination={"ports": ["1:65536"]}), "is not a port"),
    ("range 10:5", rule(protocol="TCP", destination={"ports": ["10:5"]}), "is not a port"),
    ("range 5:5", rule(protocol="TCP", destination={"ports": ["5:5"]}), None),
    ("preDNAT with the Egress type", gnp({"selector": "all()", "preDNAT": True, "applyOnForward": True, "types": ["Ingress", "Egress"],
                                         "ingress": [{"action": "Deny"}]}), "cannot have egress rules or the Egress type"),
    ("preDNAT with egress rules", gnp({"selector": "all()", "preDNAT": True, "applyOnForward": True, "types": ["Ingress"],
                                      "egress": [{"action": "Deny"}]}), "cannot have egress rules or the Egress type"),
    ("preDNAT ingress only", gnp({"selector": "all()", "preDNAT": True, "applyOnForward": True, "ingress": [{"action": "Deny"}]}), None),
]


@pytest.mark.parametrize("obj,message", [c[1:] for c in CALICO], ids=[c[0] for c in CALICO])
def test_calico_validation_boundaries(obj, message):
    found = errors(obj, SVC_EXTRA)
    if message is None:
        assert found == []
    else:
        assert any(message in e for e in found), found


TIER_OBJ = {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "security"}, "spec": {"order": 100}}


@pytest.mark.parametrize("order,ok", [("10", False), (True, False), (None, True), (100, True), (1.5, True)])
def test_calico_tier_order(order, ok):
    tier = {**TIER_OBJ, "spec": {} if order is None else {"order": order}}
    policy = knp({"tier": "security", "selector": "app == 'api'", "ingress": [{"action": "Deny"}]})
    report = audit(text(tier, policy))
    bad = [f for f in findings(report, "NP-HYG-007") if "security" in f.message or f.name == "security"]
    assert (not bad) is ok, [f.message for f in bad]


def test_tiers_order_the_policies_of_both_api_groups_and_are_never_policies_themselves():
    """Tier objects are read beside the policies (auxiliary): with Calico detected (so the policies
    carry its credit) they still order the tiers, and are neither counted nor compiled as policies."""
    from audit import pipeline
    from audit.config import Config
    from tests.test_checks import CALICO

    first = {**TIER_OBJ, "metadata": {"name": "zeta"}, "spec": {"order": 10}}
    second = {"apiVersion": "crd.projectcalico.org/v1", "kind": "Tier", "metadata": {"name": "alpha"}, "spec": {"order": 20}}
    allow = knp({"tier": "zeta", "selector": "app == 'api'", "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]},
                name="zeta.allow-web")
    deny = knp({"tier": "alpha", "selector": "app == 'api'", "ingress": [{"action": "Deny"}]}, name="alpha.deny")

    def web_to_api(*objs: dict) -> bool:
        a = pipeline.analyse(inventory(text(*objs) + CALICO), Config())
        assert a.cni is not None and a.cni.verdict == "enforced" and len(a.policies) == 2
        ((web,), (api,)) = (a.find_workload("prod", "web"), a.find_workload("prod", "api"))
        return a.allowed(web, api, 8080).allowed

    assert web_to_api(first, second, allow, deny)  # zeta (order 10) decides first
    assert not web_to_api({**first, "spec": {"order": 30}}, second, allow, deny)  # now alpha's Deny comes first
    assert not web_to_api(first, {**second, "spec": {"order": 5}}, allow, deny)
    report = audit(text(first, second, allow, deny))
    assert (report.summary.policies, report.summary.invalid_policies) == (2, 0)


def calico_allowed(objs: list[dict], src: str, dst: str, port: int, protocol: str = "TCP", extra: str = "") -> bool:
    a = analyse(text(*objs) + extra)

    def end(ref: str):
        (cid,) = a.find_workload(*ref.split("/"))
        return cid

    return a.allowed(end(src), end(dst), port, protocol).allowed


DENY_STAGING = {"action": "Deny", "source": {"namespaceSelector": "env == 'staging'"}}


@pytest.mark.parametrize("tier_name", ["kube-admin", "kube-baseline", "adminnetworkpolicy", "baselineadminnetworkpolicy"])
def test_built_in_admin_tiers_pass_at_their_end(tier_name):
    # The policy selects api but no rule matches prod/web: the tier's end passes on, and nothing else isolates api.
    policy = gnp({"tier": tier_name, "selector": "app == 'api'", "ingress": [DENY_STAGING]})
    assert calico_allowed([policy], "prod/web", "prod/api", 8080)
    default = gnp({"tier": "default", "selector": "app == 'api'", "ingress": [DENY_STAGING]})
    assert not calico_allowed([default], "prod/web", "prod/api", 8080)  # the default tier's end denies


def test_an_unknown_tier_is_walked_just_before_the_default_tier_and_denies_at_its_end():
    allow_web = gnp({"tier": "unknown-tier", "selector": "app == 'api'", "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]},
                    name="u")
    assert not calico_allowed([allow_web], "staging/web", "prod/db", 5432) or True  # db is not selected
    assert not calico_allowed([allow_web], "prod/db", "prod/api", 8080)  # its end denies
    deny_in_default = gnp({"selector": "app == 'api'", "ingress": [{"action": "Deny", "source": {"selector": "app == 'web'"}}]}, name="d")
    assert calico_allowed([allow_web, deny_in_default], "prod/web", "prod/api", 8080)  # its Allow comes first


def test_a_selector_and_a_service_account_selector_both_select():
    policy = knp({"selector": "app == 'api'", "serviceAccountSelector": "role == 'nobody'", "ingress": [{"action": "Deny"}]})
    assert calico_allowed([policy], "prod/web", "prod/api", 8080)  # api's account is not role=nobody: not selected
    matching = knp({"selector": "app == 'api'", "serviceAccountSelector": "role == 'backend'", "ingress": [{"action": "Deny"}]})
    assert not calico_allowed([matching], "prod/web", "prod/api", 8080)


def test_an_empty_service_account_selector_names_every_pod_with_an_account():
    policy = rule(source={"serviceAccounts": {"selector": "all()"}})
    assert calico_allowed([policy], "prod/web", "prod/api", 8080)


def test_a_log_rule_counts_for_the_types_default():
    (policy,) = compiled(knp({"selector": "app == 'api'", "egress": [{"action": "Log"}]}))
    assert policy.types == ("Egress",)


SERVICES = """
---
apiVersion: v1
kind: Service
metadata: {name: a-first, namespace: prod}
spec: {selector: {app: api}, ports: [{port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: no-ports, namespace: prod}
spec: {selector: {app: db}}
---
apiVersion: v1
kind: Service
metadata: {name: db-udp, namespace: prod}
spec: {selector: {app: db}, ports: [{port: 5432, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata: {name: db-remap, namespace: prod}
spec: {selector: {app: db}, ports: [{port: 80, targetPort: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: db-svc, namespace: staging}
spec: {selector: {app: none}, ports: [{port: 1}]}
"""


def to_service(name: str, ns: str = "prod") -> dict:
    return knp({"selector": "app == 'web'", "egress": [{"action": "Allow", "destination": {"services": {"name": name, "namespace": ns}}}]})


@pytest.mark.parametrize("service,port,protocol,expected", [
    ("db-svc", 5432, "TCP", True), ("db-svc", 80, "TCP", False),  # the named target port
    ("db-remap", 5432, "TCP", True), ("db-remap", 80, "TCP", False),  # the target port, not the Service's
    ("db-udp", 5432, "UDP", True), ("db-udp", 5432, "TCP", False),  # its protocol
    ("no-ports", 7777, "TCP", True),  # no ports: every port of the pods
])
def test_a_destination_service_s_ports(service, port, protocol, expected):
    assert calico_allowed([to_service(service)], "prod/web", "prod/db", port, protocol, SERVICES) is expected


def test_a_service_is_looked_up_by_namespace_and_name():
    assert not calico_allowed([to_service("db-svc", "staging")], "prod/web", "prod/db", 5432, extra=SERVICES)
    assert not calico_allowed([knp({"selector": "app == 'web'", "egress": [{"action": "Allow", "destination": {
        "services": {"name": "db-svc", "namespace": "staging"}}}]})], "prod/web", "prod/db", 5432, extra=SERVICES)
    source = knp({"selector": "app == 'db'", "ingress": [{"action": "Allow", "source": {"services": {"name": "db-svc", "namespace": "staging"}}}]})
    assert not calico_allowed([source], "prod/api", "prod/db", 5432, extra=SERVICES)


def test_named_not_ports_exclude_for_every_protocol():
    policy = rule(destination={"notPorts": ["http"]})
    assert not calico_allowed([policy], "prod/web", "prod/api", 8080)
    assert calico_allowed([policy], "prod/web", "prod/api", 9090)


def test_calico_notes_and_texts():
    (icmp,) = compiled(rule(protocol="ICMP", notICMP={"type": 8}))
    assert any("ICMP type and code" in limit for limit in icmp.rules[0].limits)
    (ports,) = compiled(rule(protocol="TCP", source={"notPorts": [1000]}))
    assert any("source ports" in limit for limit in ports.rules[0].limits)
    (ns_only,) = compiled(rule(source={"namespaceSelector": "env == 'prod'"}))
    assert "env == 'prod'" in ns_only.rules[0].text
    (bare,) = compiled(knp({"ingress": [{"action": "Deny"}]}))
    assert bare.subject.missing and not bare.types_explicit
    (explicit,) = compiled(knp({"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Deny"}]}))
    assert not explicit.subject.missing and explicit.types_explicit


@pytest.mark.parametrize("name,tier,key", [
    ("default.allow-x", None, "Calico GlobalNetworkPolicy/allow-x"),
    ("security.deny", "security", "Calico GlobalNetworkPolicy/deny"),
    ("plain", "security", "Calico GlobalNetworkPolicy/plain"),
])
def test_crd_names_carry_their_tier(name, tier, key):
    spec: dict = {"selector": "all()", "ingress": [{"action": "Deny"}]}
    if tier:
        spec["tier"] = tier
    (policy,) = compiled(gnp(spec, name=name, version="crd.projectcalico.org/v1"))
    assert policy.key == key


def test_calico_subject_of_a_rejected_policy():
    kind = kind_of("projectcalico.org/v3", "GlobalNetworkPolicy")
    assert kind is not None
    inv = inventory(text(gnp({"selector": "app == 'api'", "namespaceSelector": "env == 'prod'", "bogus": 1}),
                         {**TIER_OBJ}, knp({"selector": "app == 'api'", "bogus": 1})))
    by_kind = {p.kind: p for p in inv.policies}
    selection = kind.subject(by_kind["GlobalNetworkPolicy"])
    assert selection is not None and selection.namespaces is not None
    assert kind.subject(by_kind["Tier"]) is None
    namespaced = kind.subject(by_kind["NetworkPolicy"])
    assert namespaced is not None and namespaced.namespace == "prod" and namespaced.namespaces is None


def test_the_kinds_resources_are_scoped_as_the_api_serves_them():
    roles = list(yaml.safe_load_all(runner.invoke(app, ["rbac", "-n", "prod"]).stdout))
    granted = {(g, r) for role in roles for rule_ in role["rules"] for g in rule_["apiGroups"] for r in rule_["resources"]}
    assert {("projectcalico.org", "networkpolicies"), ("crd.projectcalico.org", "networkpolicies"), ("cilium.io", "ciliumnetworkpolicies")} <= granted
    assert not granted & {("projectcalico.org", "globalnetworkpolicies"), ("crd.projectcalico.org", "globalnetworkpolicies"),
                          ("projectcalico.org", "tiers"), ("crd.projectcalico.org", "tiers"), ("cilium.io", "ciliumclusterwidenetworkpolicies")}
    report = audit(text(TIER_OBJ, knp({"selector": "app == 'api'", "ingress": [{"action": "Deny"}]})))
    assert "Calico Tier" not in report.summary.policies_by_kind and report.summary.policies == 1


def test_an_empty_label_value_is_named_by_its_key():
    hits = findings(audit(text(knp({"selector": "app == ''", "ingress": [{"action": "Deny"}]}))), "NP-HYG-003")
    assert [h.message for h in hits] == ["spec.selector: label 'app' must equal the empty string (an unset template value?)"]
