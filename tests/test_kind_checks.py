"""Every rule check judges every policy kind alike: per kind, a positive case pinned to the exact
findings (check, kind, object, field path, count) and a negative case that must stay silent.

The cluster is test_semantics' (prod with api, db and web; staging; other); each case adds
policies of one kind. Checks that a kind's shape cannot trigger (the OR/AND trap of a kind whose
peer is one object, allow-all where every peer is a pod) have no positive case for that kind.
"""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import audit
from tests.test_semantics import CLUSTER

PROD = {"matchLabels": {"env": "prod"}}
STAGING = {"matchLabels": {"env": "staging"}}
API = {"matchLabels": {"app": "api"}}
DB = {"matchLabels": {"app": "db"}}
WEB = {"matchLabels": {"app": "web"}}
PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def np(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def cnp(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def ccnp(name: str, spec: dict) -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def calico(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def gnp(name: str, spec: dict) -> dict:
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def anp(name: str, spec: dict, priority: int = 10) -> dict:
    return {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": name},
            "spec": {"priority": priority, **spec}}


def banp(spec: dict) -> dict:
    return {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"},
            "spec": spec}


def cnpol(name: str, spec: dict, tier: str = "Admin", priority: int = 10) -> dict:
    return {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy", "metadata": {"name": name},
            "spec": {"tier": tier, "priority": priority, **spec}}


def ports(*numbers: int) -> list[dict]:
    return [{"ports": [{"port": str(n), "protocol": "TCP"} for n in numbers]}]


def anp_ports(*numbers: int) -> list[dict]:
    return [{"portNumber": {"port": n, "protocol": "TCP"}} for n in numbers]


def cnpol_ports(*numbers: int) -> list[dict]:
    return [{"tcp": {"destinationPort": {"number": n}}} for n in numbers]


CASES: list[tuple[str, str, list[dict], set[tuple[str, str | None, str, str | None]], list[dict]]] = [
    # check, kind, policies, exact findings {(kind, namespace, name, field)}, policies that must not trigger it
    ("NP-PERM-001", "NetworkPolicy",
     [np("prod", "p", {"podSelector": API, "ingress": [{}]})],
     {("NetworkPolicy", "prod", "p", "spec.ingress[0]")},
     [np("prod", "p", {"podSelector": API, "ingress": [{"ports": [{"port": 8080}]}]})]),
    ("NP-PERM-001", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEntities": ["all"]}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.ingress[0]")},
     # Cilium's `{}` selects nothing (its default-deny idiom); `all` with a port is narrower.
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{}]}),
      cnp("prod", "d", {"endpointSelector": API, "ingress": [{"fromEntities": ["all"], "toPorts": ports(8080)}]})]),
    ("NP-PERM-001", "CiliumClusterwideNetworkPolicy",
     [ccnp("c", {"endpointSelector": API, "egress": [{"toEntities": ["all"]}]})],
     {("CiliumClusterwideNetworkPolicy", None, "c", "spec.egress[0]")},
     [ccnp("c", {"endpointSelector": API, "egressDeny": [{"toEntities": ["all"]}]})]),
    ("NP-PERM-001", "Calico NetworkPolicy",
     [calico("prod", "k", {"selector": "app == 'api'", "ingress": [{"action": "Allow"}]})],
     {("Calico NetworkPolicy", "prod", "k", "spec.ingress[0]")},
     [calico("prod", "k", {"selector": "app == 'api'", "ingress": [{"action": "Deny"}, {"action": "Allow", "protocol": "ICMP"},
                                                                    {"action": "Allow", "destination": {"ports": [8080]}, "protocol": "TCP"}]})]),
    ("NP-PERM-001", "Calico GlobalNetworkPolicy",
     [gnp("g", {"selector": "all()", "types": ["Egress"], "egress": [{"action": "Allow"}]})],
     {("Calico GlobalNetworkPolicy", None, "g", "spec.egress[0]")},
     # A Pass hands its traffic past the namespace tier: here a baseline denies every pod it selects everything.
     [gnp("g", {"selector": "all()", "namespaceSelector": "env == 'prod'", "types": ["Egress"], "egress": [{"action": "Pass"}]}),
      banp({"subject": {"namespaces": PROD}, "egress": [{"action": "Deny", "to": [{"namespaces": {}}]}]})]),
    ("NP-PERM-001", "AdminNetworkPolicy",  # an admin peer is pods or networks, never both: no rule names every peer
     [anp("a", {"subject": {"namespaces": {}}, "egress": [{"action": "Pass", "to": [{"networks": ["0.0.0.0/0", "::/0"]}]}]})],
     set(),
     [anp("a", {"subject": {"namespaces": {}}, "ingress": [{"action": "Allow", "from": [{"namespaces": {}}]}]})]),

    ("NP-PERM-002", "NetworkPolicy",
     [np("prod", "p", {"podSelector": {}, "ingress": [{"from": [{"podSelector": WEB}]}]})],
     {("NetworkPolicy", "prod", "p", "spec.podSelector")},
     [np("prod", "p", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})]),
    ("NP-PERM-002", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [WEB]}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.endpointSelector")},
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB]}]}),
      cnp("prod", "d", {"endpointSelector": {}, "ingressDeny": [{"fromEntities": ["world"]}]})]),
    ("NP-PERM-002", "CiliumClusterwideNetworkPolicy",
     [ccnp("c", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [WEB]}]})],
     {("CiliumClusterwideNetworkPolicy", None, "c", "spec.endpointSelector")},
     [ccnp("c", {"endpointSelector": {"matchLabels": {"io.kubernetes.pod.namespace": "prod"}}, "ingress": [{"fromEndpoints": [WEB]}]})]),
    ("NP-PERM-002", "Calico NetworkPolicy",
     [calico("prod", "k", {"ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]})],
     {("Calico NetworkPolicy", "prod", "k", "spec.selector")},
     [calico("prod", "k", {"selector": "all()", "types": ["Egress"], "egress": [
         {"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}]})]),
    ("NP-PERM-002", "Calico GlobalNetworkPolicy",
     [gnp("g", {"selector": "all()", "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]})],
     {("Calico GlobalNetworkPolicy", None, "g", "spec.selector")},
     [gnp("g", {"selector": "all()", "ingress": [{"action": "Deny", "source": {"selector": "app == 'web'"}}]})]),
    ("NP-PERM-002", "AdminNetworkPolicy",
     [anp("a", {"subject": {"namespaces": {}}, "ingress": [{"action": "Allow", "from": [{"namespaces": STAGING}]}]})],
     {("AdminNetworkPolicy", None, "a", "spec.subject.namespaces")},
     [anp("a", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Allow", "from": [{"namespaces": STAGING}]}]})]),
    ("NP-PERM-002", "ClusterNetworkPolicy",
     [cnpol("n", {"subject": {"namespaces": {}}, "ingress": [{"action": "Accept", "from": [{"namespaces": STAGING}]}]})],
     {("ClusterNetworkPolicy", None, "n", "spec.subject.namespaces")},
     [cnpol("n", {"subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": STAGING}]}]})]),

    ("NP-PERM-003", "NetworkPolicy",
     [np("prod", "p", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080}]}]})],
     {("NetworkPolicy", "prod", "p", "spec.ingress[0].from[0]")},
     [np("prod", "p", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": STAGING}], "ports": [{"port": 8080}]}]})]),
    ("NP-PERM-003", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": DB, "ingress": [{"fromEntities": ["cluster"], "toPorts": ports(6379)},
                                                           {"fromEndpoints": [{"matchExpressions": [
                                                               {"key": "io.kubernetes.pod.namespace", "operator": "Exists"}]}],
                                                            "toPorts": ports(5432)}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.ingress[0].fromEntities[0]"),
      ("CiliumNetworkPolicy", "prod", "c", "spec.ingress[1].fromEndpoints[0]")},
     [cnp("prod", "c", {"endpointSelector": DB, "ingress": [{"fromEndpoints": [WEB], "toPorts": ports(6379)}]}),
      cnp("prod", "d", {"endpointSelector": DB, "ingressDeny": [{"fromEntities": ["cluster"]}]})]),
    ("NP-PERM-003", "CiliumClusterwideNetworkPolicy",  # a clusterwide selector without a namespace reaches every namespace
     [ccnp("c", {"endpointSelector": DB, "ingress": [{"fromEndpoints": [WEB], "toPorts": ports(5432)}]})],
     {("CiliumClusterwideNetworkPolicy", None, "c", "spec.ingress[0].fromEndpoints[0]")},
     [ccnp("c", {"endpointSelector": DB, "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "web", "io.kubernetes.pod.namespace": "prod"}}],
                                                     "toPorts": ports(5432)}]})]),
    ("NP-PERM-003", "Calico NetworkPolicy",
     [calico("prod", "k", {"selector": "app == 'db'", "ingress": [
         {"action": "Allow", "protocol": "TCP", "source": {"namespaceSelector": "all()"}, "destination": {"ports": [5432]}}]})],
     {("Calico NetworkPolicy", "prod", "k", "spec.ingress[0].source")},
     [calico("prod", "k", {"selector": "app == 'db'", "ingress": [
         {"action": "Allow", "protocol": "TCP", "source": {"namespaceSelector": "env == 'staging'"}, "destination": {"ports": [5432]}}]})]),
    ("NP-PERM-003", "Calico GlobalNetworkPolicy",
     [gnp("g", {"selector": "app == 'db'", "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]})],
     {("Calico GlobalNetworkPolicy", None, "g", "spec.ingress[0].source")},
     [gnp("g", {"selector": "app == 'db'", "ingress": [
         {"action": "Allow", "source": {"selector": "app == 'web'", "namespaceSelector": "env == 'prod'"}}]})]),
    ("NP-PERM-003", "AdminNetworkPolicy",
     [anp("a", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Allow", "from": [{"namespaces": {}}],
                                                              "ports": anp_ports(8080)}]})],
     {("AdminNetworkPolicy", None, "a", "spec.ingress[0].from[0]")},
     [anp("a", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]})]),
    ("NP-PERM-003", "ClusterNetworkPolicy",
     [cnpol("n", {"subject": {"namespaces": PROD}, "ingress": [
         {"action": "Accept", "from": [{"pods": {"namespaceSelector": {}, "podSelector": WEB}}], "protocols": cnpol_ports(8080)}]})],
     {("ClusterNetworkPolicy", None, "n", "spec.ingress[0].from[0]")},
     [cnpol("n", {"subject": {"namespaces": PROD}, "ingress": [
         {"action": "Accept", "from": [{"pods": {"namespaceSelector": STAGING, "podSelector": WEB}}], "protocols": cnpol_ports(8080)}]})]),

    ("NP-PERM-004", "NetworkPolicy",
     [np("prod", "p", {"podSelector": API, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}]})],
     {("NetworkPolicy", "prod", "p", "spec.ingress[0].from[0]")},
     [np("prod", "p", {"podSelector": API, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                                                        "ports": [{"port": 443}]}]})]),
    ("NP-PERM-004", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEntities": ["world"], "toPorts": ports(8443)}],
                        "egress": [{"toCIDR": ["0.0.0.0/0"]}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.ingress[0].fromEntities[0]"),
      ("CiliumNetworkPolicy", "prod", "c", "spec.egress[0].toCIDR[0]")},
     [cnp("prod", "c", {"endpointSelector": API, "egress": [{"toCIDR": ["203.0.113.0/24"]}, {"toCIDRSet": [
         {"cidr": "0.0.0.0/0", "except": PRIVATE}]}]})]),
    ("NP-PERM-004", "Calico GlobalNetworkPolicy",
     [gnp("g", {"selector": "all()", "types": ["Egress"], "egress": [{"action": "Allow", "destination": {"nets": ["0.0.0.0/0"]}}]})],
     {("Calico GlobalNetworkPolicy", None, "g", "spec.egress[0].destination")},
     [gnp("g", {"selector": "all()", "types": ["Egress"], "egress": [{"action": "Deny", "destination": {"nets": ["0.0.0.0/0"]}},
                                                                     {"action": "Allow", "destination": {"nets": ["0.0.0.0/0"],
                                                                                                         "notNets": PRIVATE}}]})]),
    ("NP-PERM-004", "AdminNetworkPolicy",
     [anp("a", {"subject": {"namespaces": PROD}, "egress": [{"action": "Allow", "to": [{"networks": ["::/0"]}]}]})],
     {("AdminNetworkPolicy", None, "a", "spec.egress[0].to[0]")},
     [anp("a", {"subject": {"namespaces": PROD}, "egress": [{"action": "Deny", "to": [{"networks": ["::/0"]}]}]})]),
    ("NP-PERM-004", "ClusterNetworkPolicy",
     [cnpol("n", {"subject": {"namespaces": PROD}, "egress": [{"action": "Accept", "to": [{"networks": ["0.0.0.0/0"]}]}]})],
     {("ClusterNetworkPolicy", None, "n", "spec.egress[0].to[0]")},
     [cnpol("n", {"subject": {"namespaces": PROD}, "egress": [{"action": "Accept", "to": [{"networks": ["198.51.100.0/24"]}]}]})]),

    ("NP-PERM-005", "NetworkPolicy",
     [np("prod", "p", {"podSelector": API, "ingress": [{"from": [{"podSelector": WEB}]}]})],
     {("NetworkPolicy", "prod", "p", "spec.ingress[0]")},
     [np("prod", "p", {"podSelector": API, "ingress": [{"from": [{"podSelector": WEB}], "ports": [{"port": 8080}]}]})]),
    ("NP-PERM-005", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB]}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.ingress[0]")},
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB], "toPorts": ports(8080)}]})]),
    ("NP-PERM-005", "Calico NetworkPolicy",
     [calico("prod", "k", {"selector": "app == 'api'", "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}},
                                                                    {"action": "Allow", "protocol": "TCP",
                                                                     "source": {"selector": "app == 'db'"}}]})],
     {("Calico NetworkPolicy", "prod", "k", "spec.ingress[0]"), ("Calico NetworkPolicy", "prod", "k", "spec.ingress[1]")},
     [calico("prod", "k", {"selector": "app == 'api'", "ingress": [
         {"action": "Allow", "protocol": "ICMP", "source": {"selector": "app == 'web'"}},
         {"action": "Allow", "protocol": "TCP", "source": {"selector": "app == 'web'"}, "destination": {"ports": [8080]}}]})]),
    ("NP-PERM-005", "AdminNetworkPolicy",
     [anp("a", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Allow", "from": [{"namespaces": STAGING}]}]})],
     {("AdminNetworkPolicy", None, "a", "spec.ingress[0]")},
     [anp("a", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Allow", "from": [{"namespaces": STAGING}],
                                                              "ports": anp_ports(8080)}]})]),
    ("NP-PERM-005", "ClusterNetworkPolicy",
     [cnpol("n", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Accept", "from": [{"namespaces": STAGING}]}]})],
     {("ClusterNetworkPolicy", None, "n", "spec.ingress[0]")},
     [cnpol("n", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Accept", "from": [{"namespaces": STAGING}],
                                                                "protocols": cnpol_ports(8080)}]})]),

    ("NP-PERM-006", "NetworkPolicy",
     [np("prod", "p", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": STAGING}, {"podSelector": WEB}],
                                                        "ports": [{"port": 8080}]}]})],
     {("NetworkPolicy", "prod", "p", "spec.ingress[0]")},
     [np("prod", "p", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": STAGING, "podSelector": WEB}],
                                                        "ports": [{"port": 8080}]}]})]),
    ("NP-PERM-006", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [
         WEB, {"matchLabels": {"io.kubernetes.pod.namespace": "staging"}}], "toPorts": ports(8080)}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.ingress[0]")},
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [
         {"matchLabels": {"app": "web", "io.kubernetes.pod.namespace": "staging"}}], "toPorts": ports(8080)}]})]),

    ("NP-PERM-007", "NetworkPolicy",
     [np("prod", "p", {"podSelector": API, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE}}]}]})],
     {("NetworkPolicy", "prod", "p", "spec.egress[0].to[0]")},
     [np("prod", "p", {"podSelector": API, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {
         "cidr": "0.0.0.0/0", "except": [*PRIVATE, "169.254.0.0/16"]}}]}]})]),
    ("NP-PERM-007", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": API, "egress": [{"toCIDRSet": [{"cidr": "0.0.0.0/0", "except": PRIVATE}]},
                                                           {"toEntities": ["world"], "toPorts": ports(80)}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.egress[0].toCIDRSet[0]"), ("CiliumNetworkPolicy", "prod", "c", "spec.egress[1].toEntities[0]")},
     [cnp("prod", "c", {"endpointSelector": API, "egress": [{"toCIDRSet": [{"cidr": "0.0.0.0/0", "except": [*PRIVATE, "169.254.0.0/16"]}]},
                                                           {"toEntities": ["world"], "toPorts": ports(443)}]})]),
    ("NP-PERM-007", "Calico GlobalNetworkPolicy",
     [gnp("g", {"selector": "all()", "types": ["Egress"], "egress": [{"action": "Allow", "destination": {"nets": ["169.254.0.0/16"]}}]})],
     {("Calico GlobalNetworkPolicy", None, "g", "spec.egress[0].destination")},
     [gnp("g", {"selector": "all()", "types": ["Egress"], "egress": [
         {"action": "Allow", "destination": {"nets": ["0.0.0.0/0"], "notNets": ["169.254.169.254/32"]}}]})]),
    ("NP-PERM-007", "AdminNetworkPolicy",
     [anp("a", {"subject": {"namespaces": PROD}, "egress": [{"action": "Allow", "to": [{"networks": ["169.254.169.254/32"]}]}]})],
     {("AdminNetworkPolicy", None, "a", "spec.egress[0].to[0]")},
     [anp("a", {"subject": {"namespaces": PROD}, "egress": [{"action": "Allow", "to": [{"networks": ["169.254.169.254/32"]}],
                                                             "ports": anp_ports(443)}]})]),

    ("NP-HYG-001", "NetworkPolicy",
     [np("prod", "p", {"podSelector": {"matchLabels": {"app": "wbe"}}, "policyTypes": ["Ingress"]})],
     {("NetworkPolicy", "prod", "p", "spec.podSelector")},
     [np("prod", "p", {"podSelector": WEB, "policyTypes": ["Ingress"]})]),
    ("NP-HYG-001", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": {"matchLabels": {"app": "wbe"}}, "ingress": [{}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.endpointSelector")},
     [cnp("prod", "c", {"endpointSelector": WEB, "ingress": [{}]})]),
    ("NP-HYG-001", "Calico NetworkPolicy",
     [calico("prod", "k", {"selector": "app == 'wbe'", "types": ["Ingress"]})],
     {("Calico NetworkPolicy", "prod", "k", "spec.selector")},
     [calico("prod", "k", {"selector": "app == 'web'", "types": ["Ingress"]})]),
    ("NP-HYG-001", "AdminNetworkPolicy",
     [anp("a", {"subject": {"namespaces": {"matchLabels": {"env": "prdo"}}}, "ingress": [{"action": "Deny", "from": [{"namespaces": STAGING}]}]})],
     {("AdminNetworkPolicy", None, "a", "spec.subject.namespaces")},
     [anp("a", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Deny", "from": [{"namespaces": STAGING}]}]})]),

    ("NP-HYG-002", "NetworkPolicy",
     [np("prod", "p", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "prdo"}}}]}]})],
     {("NetworkPolicy", "prod", "p", "spec.ingress[0].from[0]")},
     [np("prod", "p", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": STAGING}]}]})]),
    ("NP-HYG-002", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "wbe"}}]}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.ingress[0].fromEndpoints[0]")},
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB]}]})]),
    ("NP-HYG-002", "Calico NetworkPolicy",
     [calico("prod", "k", {"selector": "app == 'api'", "ingress": [{"action": "Deny", "source": {"selector": "app == 'wbe'"}}]})],
     {("Calico NetworkPolicy", "prod", "k", "spec.ingress[0].source")},
     [calico("prod", "k", {"selector": "app == 'api'", "ingress": [{"action": "Deny", "source": {"selector": "app == 'web'"}}]})]),
    ("NP-HYG-002", "AdminNetworkPolicy",
     [anp("a", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Deny", "from": [{"namespaces": {"matchLabels": {"env": "prdo"}}}]}]})],
     {("AdminNetworkPolicy", None, "a", "spec.ingress[0].from[0]")},
     [anp("a", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Deny", "from": [{"namespaces": STAGING}]}]})]),

    ("NP-HYG-003", "NetworkPolicy",
     [np("prod", "p", {"podSelector": {"matchLabels": {"app": ""}}, "policyTypes": ["Ingress"]})],
     {("NetworkPolicy", "prod", "p", "spec.podSelector")},
     [np("prod", "p", {"podSelector": API, "policyTypes": ["Ingress"]})]),
    ("NP-HYG-003", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [{"matchLabels": {"app": ""}}]}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.ingress[0].fromEndpoints[0]")},
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB]}]})]),
    ("NP-HYG-003", "Calico NetworkPolicy",
     [calico("prod", "k", {"selector": "app == ''", "types": ["Ingress"]})],
     {("Calico NetworkPolicy", "prod", "k", "spec.selector")},
     [calico("prod", "k", {"selector": "app != ''", "types": ["Ingress"]})]),
    ("NP-HYG-003", "AdminNetworkPolicy",
     [anp("a", {"subject": {"namespaces": {"matchLabels": {"team": ""}}}, "ingress": [{"action": "Deny", "from": [{"namespaces": STAGING}]}]})],
     {("AdminNetworkPolicy", None, "a", "spec.subject.namespaces")},
     [anp("a", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Deny", "from": [{"namespaces": STAGING}]}]})]),

    ("NP-HYG-004", "NetworkPolicy",
     [np("prod", "p", {"podSelector": API, "ingress": [{"ports": [{"port": "htpp"}]}]})],
     {("NetworkPolicy", "prod", "p", "spec.ingress[0].ports[0]")},
     [np("prod", "p", {"podSelector": API, "ingress": [{"ports": [{"port": "http"}]}]})]),
    ("NP-HYG-004", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"toPorts": [{"ports": [{"port": "htpp", "protocol": "TCP"}]}]}]})],
     {("CiliumNetworkPolicy", "prod", "c", "spec.ingress[0].toPorts[0].ports[0]")},
     [cnp("prod", "c", {"endpointSelector": API, "ingress": [{"toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}]}]}]})]),
    ("NP-HYG-004", "Calico NetworkPolicy",
     [calico("prod", "k", {"selector": "app == 'api'", "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": ["htpp"]}}]})],
     {("Calico NetworkPolicy", "prod", "k", "spec.ingress[0].destination.ports[0]")},
     [calico("prod", "k", {"selector": "app == 'api'", "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": ["http"]}}]})]),
    ("NP-HYG-004", "AdminNetworkPolicy",
     [anp("a", {"subject": {"pods": {"namespaceSelector": PROD, "podSelector": API}}, "ingress": [
         {"action": "Allow", "from": [{"namespaces": STAGING}], "ports": [{"namedPort": "htpp"}]}]})],
     {("AdminNetworkPolicy", None, "a", "spec.ingress[0].ports[0]")},
     [anp("a", {"subject": {"pods": {"namespaceSelector": PROD, "podSelector": API}}, "ingress": [
         {"action": "Allow", "from": [{"namespaces": STAGING}], "ports": [{"namedPort": "http"}]}]})]),
    ("NP-HYG-004", "ClusterNetworkPolicy",
     [cnpol("n", {"subject": {"pods": {"namespaceSelector": PROD, "podSelector": API}}, "ingress": [
         {"action": "Accept", "from": [{"namespaces": STAGING}], "protocols": [{"destinationNamedPort": "htpp"}]}]})],
     {("ClusterNetworkPolicy", None, "n", "spec.ingress[0].protocols[0]")},
     [cnpol("n", {"subject": {"pods": {"namespaceSelector": PROD, "podSelector": API}}, "ingress": [
         {"action": "Accept", "from": [{"namespaces": STAGING}], "protocols": [{"destinationNamedPort": "http"}]}]})]),

    ("NP-HYG-006", "NetworkPolicy",
     [np("prod", "p", {"podSelector": API, "policyTypes": ["Ingress"], "egress": [{}]})],
     {("NetworkPolicy", "prod", "p", "spec.egress")},
     [np("prod", "p", {"podSelector": API, "policyTypes": ["Ingress", "Egress"], "egress": [{}]})]),
    ("NP-HYG-006", "Calico NetworkPolicy",
     [calico("prod", "k", {"selector": "app == 'api'", "types": ["Ingress"], "egress": [{"action": "Allow"}]})],
     {("Calico NetworkPolicy", "prod", "k", "spec.egress")},
     [calico("prod", "k", {"selector": "app == 'api'", "types": ["Ingress", "Egress"], "egress": [{"action": "Allow"}]})]),

    ("NP-HYG-008", "AdminNetworkPolicy",
     [anp("a", {"subject": {"namespaces": PROD}}, priority=7), anp("b", {"subject": {"namespaces": PROD}}, priority=7)],
     {("AdminNetworkPolicy", None, "a, b", None)},
     [anp("a", {"subject": {"namespaces": PROD}}, priority=7), anp("b", {"subject": {"namespaces": PROD}}, priority=8)]),
    ("NP-HYG-008", "ClusterNetworkPolicy",
     [anp("a", {"subject": {"namespaces": PROD}}, priority=7), cnpol("n", {"subject": {"namespaces": PROD}}, priority=7)],
     {("AdminNetworkPolicy/ClusterNetworkPolicy", None, "a, n", None)},
     # a BaselineAdminNetworkPolicy has no priority: beside a Baseline-tier ClusterNetworkPolicy there is no tie
     [banp({"subject": {"namespaces": PROD}}), cnpol("n", {"subject": {"namespaces": PROD}}, tier="Baseline", priority=0)]),

    ("NP-HYG-009", "CiliumNetworkPolicy",
     [cnp("prod", "c", {"endpointSelector": API, "egress": [{"toFQDNs": [{"matchName": "api.stripe.com"}]}],
                        "ingress": [{"toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}]}]})],
     {("CiliumNetworkPolicy", "prod", "c", None)},
     [cnp("prod", "c", {"endpointSelector": API, "egress": [{"toCIDR": ["203.0.113.0/24"]}]})]),
    ("NP-HYG-009", "AdminNetworkPolicy",
     [anp("a", {"subject": {"namespaces": PROD}, "egress": [{"action": "Allow", "to": [{"nodes": {}}]}]})],
     {("AdminNetworkPolicy", None, "a", None)},
     [anp("a", {"subject": {"namespaces": PROD}, "egress": [{"action": "Allow", "to": [{"networks": ["10.0.0.0/8"]}]}]})]),
]


def _cluster(objs: list[dict]) -> str:
    return CLUSTER + "".join("\n---\n" + yaml.safe_dump(o) for o in objs)


def pinned(objs: list[dict], check: str) -> list[tuple[str, str | None, str, str | None]]:
    return sorted(((f.kind, f.namespace, f.name, f.field) for f in audit(_cluster(objs)).findings if f.check == check),
                  key=repr)


@pytest.mark.parametrize("check,kind,positive,expected,negative", CASES, ids=[f"{c[0]} {c[1]}" for c in CASES])
def test_each_rule_check_judges_each_kind(check, kind, positive, expected, negative):
    found = pinned(positive, check)
    assert found == sorted(expected, key=repr)  # exact findings, each once
    assert pinned(negative, check) == []


def test_every_rule_check_has_cases_for_several_kinds():
    """The table covers each rule check in every kind whose shape can trigger it."""
    kinds: dict[str, set[str]] = {}
    for check, kind, _pos, expected, _neg in CASES:
        if expected:
            kinds.setdefault(check, set()).add(kind.split(" ")[0] if kind.startswith("Calico") else kind)
    assert {k for k, v in kinds.items() if len(v) >= 2} >= {
        "NP-PERM-001", "NP-PERM-002", "NP-PERM-003", "NP-PERM-004", "NP-PERM-005", "NP-PERM-006", "NP-PERM-007",
        "NP-HYG-001", "NP-HYG-002", "NP-HYG-003", "NP-HYG-004", "NP-HYG-006", "NP-HYG-009"}


def test_findings_name_the_field_and_speak_the_kinds_language():
    report = audit(_cluster([cnp("prod", "c", {"endpointSelector": DB, "ingress": [{"fromEntities": ["cluster"], "toPorts": ports(6379)}]}),
                             calico("prod", "k", {"selector": "app == 'api'", "types": ["Egress"], "egress": [
                                 {"action": "Allow", "destination": {"nets": ["0.0.0.0/0"]}}]})]))
    by = {(f.check, f.kind): f.message for f in report.findings}
    assert by[("NP-PERM-003", "CiliumNetworkPolicy")] == ("spec.ingress[0].fromEntities[0] (entity cluster) matches every pod "
                                                          "of every namespace")
    assert by[("NP-PERM-004", "Calico NetworkPolicy")] == ("spec.egress[0].destination (nets 0.0.0.0/0) admits every address on all ports")
    assert by[("NP-PERM-007", "Calico NetworkPolicy")] == "spec.egress[0].destination (nets 0.0.0.0/0) contains 169.254.169.254 (cloud metadata)"


def test_a_pass_is_judged_by_where_it_hands_traffic():
    """An admin Pass into a namespace that isolates opens nothing; into one that does not, it allows."""
    passing = anp("a", {"subject": {"namespaces": PROD}, "ingress": [{"action": "Pass", "from": [{"namespaces": {}}]}]})
    isolated = np("prod", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    (hit,) = [f for f in audit(_cluster([passing])).findings if f.check == "NP-PERM-003"]
    assert hit.field == "spec.ingress[0].from[0]" and "(Pass: the tiers after admin leave 4 of 4 pod group(s) it selects open" in hit.message
    assert not [f for f in audit(_cluster([passing, isolated])).findings if f.check == "NP-PERM-003"]


def test_sensitive_ports_open_to_whole_namespaces_in_any_kind():
    cases = {
        "CiliumNetworkPolicy": cnp("prod", "c", {"endpointSelector": DB, "ingress": [
            {"fromEndpoints": [{"matchLabels": {"io.kubernetes.pod.namespace": "staging"}}], "toPorts": ports(5432)}]}),
        "Calico NetworkPolicy": calico("prod", "k", {"selector": "app == 'db'", "ingress": [
            {"action": "Allow", "protocol": "TCP", "source": {"namespaceSelector": "env == 'staging'"}, "destination": {"ports": [5432]}}]}),
        "AdminNetworkPolicy": anp("a", {"subject": {"pods": {"namespaceSelector": PROD, "podSelector": DB}}, "ingress": [
            {"action": "Allow", "from": [{"namespaces": STAGING}], "ports": anp_ports(5432)}]}),
    }
    fields = {"CiliumNetworkPolicy": "CiliumNetworkPolicy/prod/c spec.ingress[0].fromEndpoints[0]",
              "Calico NetworkPolicy": "Calico NetworkPolicy/prod/k spec.ingress[0].source",
              "AdminNetworkPolicy": "AdminNetworkPolicy/a spec.ingress[0].from[0]"}
    isolate = np("prod", "iso", {"podSelector": DB, "policyTypes": ["Ingress"]})
    for kind, policy in cases.items():
        hits = [f for f in audit(_cluster([policy, isolate])).findings if f.check == "NP-PERM-008"]
        assert [(f.kind, f.namespace, f.name) for f in hits] == [("Workload", "prod", "db")], kind
        assert hits[0].message == f"port 5432: {fields[kind]} admits all pods of namespace staging", kind
    narrow = calico("prod", "k", {"selector": "app == 'db'", "ingress": [
        {"action": "Allow", "protocol": "TCP", "source": {"namespaceSelector": "env == 'staging'", "selector": "app == 'web'"},
         "destination": {"ports": [5432]}}]})
    assert not [f for f in audit(_cluster([narrow, isolate])).findings if f.check == "NP-PERM-008"]
