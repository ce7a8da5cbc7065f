"""Cilium and Calico, field by field: a truth table that gives each field's effect by hand from the
projects' own documentation and source (CRDs, sanitizers, defaults, label conversion), allowed and
denied cases for each, and the validation each CRD or agent applies.
"""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from tests.conftest import analyse, audit, findings

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod, team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: staging, labels: {env: staging}}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: api-sa, namespace: prod, labels: {role: backend}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web-sa, namespace: staging, labels: {role: frontend}}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: prod, labels: {app: api, pod-template-hash: abc, app.kubernetes.io/name: api}}
spec:
  serviceAccountName: api-sa
  containers: [{name: c, image: i, ports: [{containerPort: 8080, name: http}, {containerPort: 9090, name: metrics}]}]
status: {podIP: 10.0.1.5}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 5432, name: pg}]}]}
status: {podIP: 10.0.1.6}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {containers: [{name: c, image: i}]}
status: {podIP: 10.0.1.7}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: staging, labels: {app: web, pcns.env: prod}}
spec: {serviceAccountName: web-sa, containers: [{name: c, image: i}]}
status: {podIP: 10.0.2.7}
---
apiVersion: v1
kind: Pod
metadata: {name: v6, namespace: staging, labels: {app: v6}}
spec: {containers: [{name: c, image: i}]}
status: {podIPs: [{ip: "fd00::5"}]}
---
apiVersion: v1
kind: Service
metadata: {name: db-svc, namespace: prod, labels: {tier: data}}
spec: {selector: {app: db}, ports: [{port: 5432, targetPort: pg}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext-svc, namespace: prod}
spec: {ports: [{port: 443}]}
"""


def cnp(spec: dict | None, name: str = "c", ns: str = "prod", specs: list | None = None) -> dict:
    doc: dict = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": ns}}
    if spec is not None:
        doc["spec"] = spec
    if specs is not None:
        doc["specs"] = specs
    return doc


def ccnp(spec: dict, name: str = "cc") -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def knp(spec: dict, name: str = "k", ns: str = "prod", version: str = "projectcalico.org/v3") -> dict:
    return {"apiVersion": version, "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def gnp(spec: dict, name: str = "g", version: str = "projectcalico.org/v3") -> dict:
    return {"apiVersion": version, "kind": "GlobalNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def tier(name: str, order: float, action: str = "Deny") -> dict:
    return {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": name}, "spec": {"order": order, "defaultAction": action}}


def np(spec: dict, name: str = "n", ns: str = "prod") -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def text(*objs: dict) -> str:
    return CLUSTER + "".join("\n---\n" + yaml.safe_dump(o) for o in objs)


def allowed(objs: list[dict], src: str, dst: str, port: int, protocol: str = "TCP") -> bool:
    a = analyse(text(*objs))

    def end(ref: str):
        if "/" not in ref:
            return ipaddress.ip_address(ref)
        (cid,) = a.find_workload(*ref.split("/"))
        return cid

    return a.allowed(end(src), end(dst), port, protocol).allowed


API = {"matchLabels": {"app": "api"}}
DB = {"matchLabels": {"app": "db"}}
WEB = {"matchLabels": {"app": "web"}}
STAGING_NS = {"matchLabels": {"io.kubernetes.pod.namespace": "staging"}}
TCP8080 = [{"ports": [{"port": "8080", "protocol": "TCP"}]}]

CILIUM = [
    # spec and specs side by side at the top level: both apply (cnp_types.go Parse)
    ("spec and specs both apply", [cnp({"endpointSelector": API, "ingress": [{}]}, specs=[{"endpointSelector": DB, "ingress": [{}]}])],
     "prod/web", "prod/db", 5432, "TCP", False),
    ("spec and specs both apply (spec)", [cnp({"endpointSelector": API, "ingress": [{}]}, specs=[{"endpointSelector": DB, "ingress": [{}]}])],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("specs alone", [cnp(None, specs=[{"endpointSelector": DB, "ingress": [{"fromEndpoints": [WEB]}]}])], "prod/web", "prod/db", 5432, "TCP", True),
    ("specs alone isolates", [cnp(None, specs=[{"endpointSelector": DB, "ingress": [{"fromEndpoints": [WEB]}]}])], "prod/api", "prod/db", 5432, "TCP", False),
    # label sources (pkg/labels): k8s: and any: match pod labels; reserved: and other sources never a pod
    ("k8s: prefix", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [{"matchLabels": {"k8s:app": "web"}}]}]})],
     "prod/web", "prod/api", 8080, "TCP", True),
    ("any: prefix", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [{"matchLabels": {"any:app": "web"}}]}]})],
     "prod/web", "prod/api", 8080, "TCP", True),
    ("reserved: key names no pod", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [{"matchLabels": {"reserved:host": ""}}]}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("container: source names no pod", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [{"matchLabels": {"container:app": "web"}}]}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    # identity labels (pkg/labelsfilter): pod-template-hash is dropped, app.kubernetes.io kept
    ("a filtered label never matches", [cnp({"endpointSelector": DB, "ingress": [{"fromEndpoints": [{"matchLabels": {"pod-template-hash": "abc"}}]}]})],
     "prod/api", "prod/db", 5432, "TCP", False),
    ("app.kubernetes.io labels are kept", [cnp({"endpointSelector": DB, "ingress": [{"fromEndpoints": [
        {"matchLabels": {"app.kubernetes.io/name": "api"}}]}]})], "prod/api", "prod/db", 5432, "TCP", True),
    # derived labels (pkg/k8s/utils SanitizePodLabels): service account, namespace labels
    ("service account label", [cnp({"endpointSelector": DB, "ingress": [{"fromEndpoints": [
        {"matchLabels": {"io.cilium.k8s.policy.serviceaccount": "web-sa", "io.kubernetes.pod.namespace": "staging"}}]}]})],
     "staging/web", "prod/db", 5432, "TCP", True),
    ("service account label: another account", [cnp({"endpointSelector": DB, "ingress": [{"fromEndpoints": [
        {"matchLabels": {"io.cilium.k8s.policy.serviceaccount": "api-sa"}}]}]})], "prod/web", "prod/db", 5432, "TCP", False),
    ("a namespace-labels key reaches other namespaces in a CNP", [cnp({"endpointSelector": DB, "ingress": [{"fromEndpoints": [
        {"matchLabels": {"io.cilium.k8s.namespace.labels.env": "staging"}}]}]})], "staging/web", "prod/db", 5432, "TCP", True),
    ("without a namespace key a CNP peer stays home", [cnp({"endpointSelector": DB, "ingress": [{"fromEndpoints": [WEB]}]})],
     "staging/web", "prod/db", 5432, "TCP", False),
    ("a namespace key in any expression turns the injection off", [cnp({"endpointSelector": DB, "ingress": [{"fromEndpoints": [
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["x"]}]}]}]})],
     "staging/web", "prod/db", 5432, "TCP", True),
    ("a clusterwide {} peer is every pod", [ccnp({"endpointSelector": DB, "ingress": [{"fromEndpoints": [{}]}]})],
     "staging/web", "prod/db", 5432, "TCP", True),
    # entities (api/entity.go, the CRD's enum)
    ("entity world: an outside address", [cnp({"endpointSelector": API, "ingress": [{"fromEntities": ["world"]}]})],
     "203.0.113.9", "prod/api", 8080, "TCP", True),
    ("entity world: never a pod", [cnp({"endpointSelector": API, "ingress": [{"fromEntities": ["world"]}]})],
     "staging/web", "prod/api", 8080, "TCP", False),
    ("entity cluster: every pod", [cnp({"endpointSelector": API, "ingress": [{"fromEntities": ["cluster"]}]})],
     "staging/web", "prod/api", 8080, "TCP", True),
    ("entity cluster: no outside address", [cnp({"endpointSelector": API, "ingress": [{"fromEntities": ["cluster"]}]})],
     "203.0.113.9", "prod/api", 8080, "TCP", False),
    ("entity all", [cnp({"endpointSelector": API, "ingress": [{"fromEntities": ["all"]}]})], "203.0.113.9", "prod/api", 8080, "TCP", True),
    ("entity host: no pod", [cnp({"endpointSelector": API, "ingress": [{"fromEntities": ["host"]}]})], "prod/web", "prod/api", 8080, "TCP", False),
    # CIDR rules never match pods, even with the pod's address in them
    ("fromCIDR admits the address", [cnp({"endpointSelector": API, "ingress": [{"fromCIDR": ["10.0.2.0/24"]}]})], "10.0.2.99", "prod/api", 8080, "TCP", True),
    ("fromCIDR never a pod", [cnp({"endpointSelector": API, "ingress": [{"fromCIDR": ["10.0.2.0/24"]}]})], "staging/web", "prod/api", 8080, "TCP", False),
    ("fromCIDRSet except", [cnp({"endpointSelector": API, "ingress": [{"fromCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}]}]})],
     "10.9.1.1", "prod/api", 8080, "TCP", False),
    # empty rules and lists (pkg/policy/utils mergeEndpointSelectors, pkg/policy/rule.go)
    ("an empty peer list names no one, even with ports", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [], "toPorts": TCP8080}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("{} allows nothing and enforces", [cnp({"endpointSelector": API, "ingress": [{}]})], "prod/web", "prod/api", 8080, "TCP", False),
    ("toPorts alone: every peer on that port", [cnp({"endpointSelector": API, "ingress": [{"toPorts": TCP8080}]})], "203.0.113.9", "prod/api", 8080, "TCP", True),
    ("toPorts alone: only that port", [cnp({"endpointSelector": API, "ingress": [{"toPorts": TCP8080}]})], "prod/web", "prod/api", 9090, "TCP", False),
    ("toPorts [{}] allows nothing", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB], "toPorts": [{}]}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("port 0 ANY: every TCP port", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB], "toPorts": [{"ports": [{"port": "0"}]}]}]})],
     "prod/web", "prod/api", 9090, "TCP", True),
    ("port 0 TCP: no UDP", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB], "toPorts": [{"ports": [{"port": "0", "protocol": "TCP"}]}]}]})],
     "prod/web", "prod/api", 53, "UDP", False),
    ("endPort below port is the port alone", [cnp({"endpointSelector": API, "ingress": [{"toPorts": [{"ports": [{"port": "8080", "endPort": 80, "protocol": "TCP"}]}]}]})],
     "prod/web", "prod/api", 8080, "TCP", True),
    ("a named port resolves against the subject", [cnp({"endpointSelector": API, "ingress": [{"toPorts": [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]}]})],
     "prod/web", "prod/api", 9090, "TCP", True),
    ("icmps open no TCP port", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB], "icmps": [{"fields": [{"type": 8}]}]}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("HTTP rules: allowed at L4", [cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB], "toPorts": [
        {"ports": [{"port": "8080", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}]}]})], "prod/web", "prod/api", 8080, "TCP", True),
    # deny rules and enableDefaultDeny
    ("ingressDeny beats a NetworkPolicy allow", [np({"podSelector": {}, "ingress": [{}]}),
                                                 cnp({"endpointSelector": API, "ingressDeny": [{"fromEndpoints": [WEB]}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("egressDeny toServices is never resolved: it denies nothing", [cnp({"endpointSelector": WEB, "egress": [{"toEntities": ["all"]}],
                                                                       "egressDeny": [{"toServices": [{"k8sService": {"serviceName": "db-svc", "namespace": "prod"}}]}]})],
     "prod/web", "prod/db", 5432, "TCP", True),
    ("enableDefaultDeny false: only the denies restrict", [cnp({"endpointSelector": API, "enableDefaultDeny": {"ingress": False},
                                                               "ingress": [{"fromEndpoints": [DB]}]})], "prod/web", "prod/api", 8080, "TCP", True),
    # toServices resolved to the Service's pods (pkg/policy/k8s/service.go)
    ("toServices: the Service's pods", [cnp({"endpointSelector": WEB, "egress": [{"toServices": [{"k8sService": {"serviceName": "db-svc", "namespace": "prod"}}]}]})],
     "prod/web", "prod/db", 5432, "TCP", True),
    ("toServices: only them", [cnp({"endpointSelector": WEB, "egress": [{"toServices": [{"k8sService": {"serviceName": "db-svc", "namespace": "prod"}}]}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("toServices by the Service's labels", [cnp({"endpointSelector": WEB, "egress": [{"toServices": [
        {"k8sServiceSelector": {"selector": {"matchLabels": {"tier": "data"}}}}]}]})], "prod/web", "prod/db", 5432, "TCP", True),
    ("toServices without a selector matches nothing here", [cnp({"endpointSelector": WEB, "egress": [{"toServices": [
        {"k8sService": {"serviceName": "ext-svc", "namespace": "prod"}}]}]})], "prod/web", "203.0.113.9", 443, "TCP", False),
    ("toFQDNs match nothing here", [cnp({"endpointSelector": WEB, "egress": [{"toFQDNs": [{"matchName": "api.stripe.com"}]}]})],
     "prod/web", "203.0.113.9", 443, "TCP", False),
    ("toGroups: the agent ignores the object", [cnp({"endpointSelector": API, "ingress": [{"fromGroups": [{"aws": {"securityGroupsIds": ["sg-1"]}}]}]})],
     "prod/web", "prod/api", 8080, "TCP", True),
]


@pytest.mark.parametrize("objs,src,dst,port,protocol,expected", [c[1:] for c in CILIUM], ids=[c[0] for c in CILIUM])
def test_cilium_field_truth_table(objs, src, dst, port, protocol, expected):
    assert allowed(objs, src, dst, port, protocol) is expected


CILIUM_INVALID = [
    ("neither spec nor specs", cnp(None), "spec: neither spec nor specs"),
    ("spec.specs is not a field", cnp({"specs": [{"endpointSelector": {}, "ingress": [{}]}]}), "spec.specs: unknown field"),
    ("world-ipv4 is not in the CRD's enum", cnp({"endpointSelector": API, "ingress": [{"fromEntities": ["world-ipv4"]}]}),
     "spec.ingress[0].fromEntities[0]: 'world-ipv4': supported values"),
    ("fromRequires was removed", cnp({"endpointSelector": API, "ingress": [{"fromRequires": [{"matchLabels": {"env": "prod"}}]}]}),
     "spec.ingress[0].fromRequires: must have at most 0 items"),
    ("one L3 kind per rule", cnp({"endpointSelector": API, "ingress": [{"fromEndpoints": [WEB], "fromCIDR": ["10.0.0.0/8"]}]}),
     "spec.ingress[0]: combining fromEndpoints and fromCIDR is not supported"),
    ("icmps with toPorts", cnp({"endpointSelector": API, "ingress": [{"icmps": [{"fields": [{"type": 8}]}], "toPorts": TCP8080}]}),
     "spec.ingress[0].icmps: icmps and toPorts cannot be in the same rule"),
    ("a port must be given", cnp({"endpointSelector": API, "ingress": [{"toPorts": [{"ports": [{"protocol": "TCP"}]}]}]}),
     "spec.ingress[0].toPorts[0].ports[0].port: port must be specified"),
    ("L7 needs TCP", cnp({"endpointSelector": API, "ingress": [{"toPorts": [{"ports": [{"port": "80"}], "rules": {"http": [{}]}}]}]}),
     "spec.ingress[0].toPorts[0].ports: L7 rules can only apply to TCP"),
    ("DNS rules only on egress", cnp({"endpointSelector": API, "ingress": [{"toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}],
                                                                                        "rules": {"dns": [{"matchName": "x"}]}}]}]}),
     "spec.ingress[0].toPorts[0].rules.dns: DNS rules are not allowed on ingress"),
    ("deny rules have no L7", cnp({"endpointSelector": API, "ingressDeny": [{"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                                                                          "rules": {"http": [{}]}}]}]}),
     "spec.ingressDeny[0].toPorts[0].rules: unknown field"),
    ("an empty section alone", cnp({"endpointSelector": API, "ingress": []}), "spec: rule must have at least one of"),
    ("a namespaced policy cannot select nodes", cnp({"nodeSelector": {}, "ingress": [{}]}), "spec.nodeSelector: only a CiliumClusterwideNetworkPolicy"),
    ("ports are strings in the CRD", cnp({"endpointSelector": API, "ingress": [{"toPorts": [{"ports": [{"port": 80}]}]}]}),
     "spec.ingress[0].toPorts[0].ports[0].port: 80 must be a string"),
]


@pytest.mark.parametrize("policy,message", [c[1:] for c in CILIUM_INVALID], ids=[c[0] for c in CILIUM_INVALID])
def test_cilium_validation_names_the_field(policy, message):
    (hit,) = findings(audit(text(policy)), "NP-HYG-007")
    assert message in hit.message


CALICO = [
    # types default (api/pkg/defaults defaultPolicyTypesField)
    ("egress rules only: ingress is not governed", [knp({"selector": "app == 'api'", "egress": [{"action": "Allow"}]})],
     "prod/web", "prod/api", 8080, "TCP", True),
    ("egress rules only: egress is", [knp({"selector": "app == 'api'", "egress": [{"action": "Allow", "destination": {"selector": "app == 'db'"}}]})],
     "prod/api", "prod/web", 80, "TCP", False),
    ("no rules: ingress", [knp({"selector": "app == 'api'"})], "prod/web", "prod/api", 8080, "TCP", False),
    ("a crd.projectcalico.org/v1 object without types: both (Felix)", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow"}]},
                                                                           version="crd.projectcalico.org/v1")], "prod/api", "prod/web", 80, "TCP", False),
    # labels Calico gives pods and namespaces (conversion.go)
    ("projectcalico.org/name in a namespaceSelector", [knp({"selector": "app == 'db'", "ingress": [
        {"action": "Allow", "source": {"namespaceSelector": "projectcalico.org/name == 'staging'"}}]})], "staging/web", "prod/db", 5432, "TCP", True),
    ("the documented default-deny selects by projectcalico.org/name", [gnp({
        "namespaceSelector": "has(projectcalico.org/name) && projectcalico.org/name not in {'kube-system'}", "types": ["Ingress"]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("pcns. keys in a selector", [gnp({"selector": "app == 'db'", "ingress": [{"action": "Allow", "source": {"selector": "pcns.env == 'staging'"}}]})],
     "staging/web", "prod/db", 5432, "TCP", True),
    ("a pod's own pcns. label is stripped", [gnp({"selector": "app == 'db'", "ingress": [{"action": "Allow", "source": {"selector": "pcns.env == 'prod'"}}]})],
     "staging/web", "prod/db", 5432, "TCP", False),
    # service accounts
    ("serviceAccounts names", [knp({"selector": "app == 'db'", "ingress": [{"action": "Allow", "source": {"serviceAccounts": {"names": ["api-sa"]}}}]})],
     "prod/api", "prod/db", 5432, "TCP", True),
    ("serviceAccounts names: another account", [knp({"selector": "app == 'db'", "ingress": [{"action": "Allow", "source": {"serviceAccounts": {"names": ["api-sa"]}}}]})],
     "prod/web", "prod/db", 5432, "TCP", False),
    ("serviceAccounts selector reads the account's labels", [gnp({"selector": "app == 'db'", "ingress": [
        {"action": "Allow", "source": {"serviceAccounts": {"selector": "role == 'frontend'"}}}]})], "staging/web", "prod/db", 5432, "TCP", True),
    ("serviceAccountSelector on the policy", [knp({"selector": "all()", "serviceAccountSelector": "role == 'backend'", "ingress": [
        {"action": "Deny"}]})], "prod/web", "prod/api", 8080, "TCP", False),
    ("serviceAccountSelector leaves other pods alone", [knp({"selector": "all()", "serviceAccountSelector": "role == 'backend'", "ingress": [
        {"action": "Deny"}]})], "prod/web", "prod/db", 5432, "TCP", True),
    # services (rules.go, felix serviceindex): a destination Service's pods and target ports
    ("destination service", [knp({"selector": "app == 'web'", "types": ["Egress"], "egress": [
        {"action": "Allow", "destination": {"services": {"name": "db-svc", "namespace": "prod"}}}]})], "prod/web", "prod/db", 5432, "TCP", True),
    ("destination service: only its ports", [knp({"selector": "app == 'web'", "types": ["Egress"], "egress": [
        {"action": "Allow", "destination": {"services": {"name": "db-svc", "namespace": "prod"}}}]})], "prod/web", "prod/db", 5433, "TCP", False),
    ("destination service: only its pods", [knp({"selector": "app == 'web'", "types": ["Egress"], "egress": [
        {"action": "Allow", "destination": {"services": {"name": "db-svc", "namespace": "prod"}}}]})], "prod/web", "prod/api", 8080, "TCP", False),
    ("source service", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "source": {"services": {"name": "db-svc", "namespace": "prod"}}}]})],
     "prod/db", "prod/api", 8080, "TCP", True),
    # notSelector: namespaced in a NetworkPolicy, anything else in a GlobalNetworkPolicy
    ("notSelector in a namespaced policy: the rest of its namespace", [knp({"selector": "app == 'db'", "ingress": [
        {"action": "Allow", "source": {"notSelector": "app == 'web'"}}]})], "prod/api", "prod/db", 5432, "TCP", True),
    ("notSelector in a namespaced policy: not other namespaces", [knp({"selector": "app == 'db'", "ingress": [
        {"action": "Allow", "source": {"notSelector": "app == 'web'"}}]})], "staging/v6", "prod/db", 5432, "TCP", False),
    ("notSelector: not the pods it names", [knp({"selector": "app == 'db'", "ingress": [
        {"action": "Allow", "source": {"notSelector": "app == 'web'"}}]})], "prod/web", "prod/db", 5432, "TCP", False),
    ("global notSelector alone: outside addresses too", [gnp({"selector": "app == 'db'", "ingress": [
        {"action": "Allow", "source": {"notSelector": "app == 'web'"}}]})], "203.0.113.9", "prod/db", 5432, "TCP", True),
    ("global notSelector alone: every pod but those it names", [gnp({"selector": "app == 'db'", "ingress": [
        {"action": "Allow", "source": {"notSelector": "app == 'web'"}}]})], "prod/api", "prod/db", 5432, "TCP", True),
    ("global notSelector alone: not the pods it names, in any namespace", [gnp({"selector": "app == 'db'", "ingress": [
        {"action": "Allow", "source": {"notSelector": "app == 'web'"}}]})], "staging/web", "prod/db", 5432, "TCP", False),
    # nets, notNets, ports, notPorts, protocol, notProtocol, ipVersion
    ("nets with a selector: a pod must match both (address outside)", [knp({"selector": "app == 'api'", "ingress": [
        {"action": "Allow", "source": {"nets": ["10.0.2.0/24"], "selector": "app == 'web'", "namespaceSelector": "all()"}}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("nets with a selector: a pod must match both (both match)", [knp({"selector": "app == 'api'", "ingress": [
        {"action": "Allow", "source": {"nets": ["10.0.2.0/24"], "selector": "app == 'web'", "namespaceSelector": "all()"}}]})],
     "staging/web", "prod/api", 8080, "TCP", True),
    ("notNets alone: pods whose address it names are left out", [gnp({"selector": "app == 'api'", "ingress": [
        {"action": "Allow", "source": {"notNets": ["10.0.2.0/24"]}}]})], "staging/web", "prod/api", 8080, "TCP", False),
    ("notNets alone: pods outside it are not", [gnp({"selector": "app == 'api'", "ingress": [
        {"action": "Allow", "source": {"notNets": ["10.0.2.0/24"]}}]})], "prod/web", "prod/api", 8080, "TCP", True),
    ("notNets excludes", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "source": {"nets": ["10.0.0.0/8"], "notNets": ["10.9.0.0/16"]}}]})],
     "10.9.1.1", "prod/api", 8080, "TCP", False),
    ("nets match pods by address", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "source": {"nets": ["10.0.2.0/24"]}}]})],
     "staging/web", "prod/api", 8080, "TCP", True),
    ("notPorts excludes a port", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"notPorts": [9090]}}]})],
     "prod/web", "prod/api", 9090, "TCP", False),
    ("notPorts leaves the others", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"notPorts": [9090]}}]})],
     "prod/web", "prod/api", 8080, "TCP", True),
    ("notProtocol UDP: TCP passes", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "notProtocol": "UDP"}]})],
     "prod/web", "prod/api", 8080, "TCP", True),
    ("notProtocol UDP: UDP does not", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "notProtocol": "UDP"}]})],
     "prod/web", "prod/api", 53, "UDP", False),
    ("protocol ICMP opens no TCP port", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "protocol": "ICMP"}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("ipVersion 6: IPv4 peers do not match", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "ipVersion": 6}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("ipVersion 6: IPv6 peers do", [gnp({"selector": "app == 'db'", "ingress": [{"action": "Allow", "ipVersion": 6}]})],
     "staging/v6", "prod/db", 5432, "TCP", True),
    ("IPv4 nets never match IPv6", [gnp({"selector": "app == 'v6'", "types": ["Egress"], "egress": [{"action": "Allow", "destination": {"notNets": ["10.0.0.0/8"]}}]})],
     "staging/v6", "2001:db8::1", 443, "TCP", False),
    ("HTTP matches: allowed at L4 (Felix alone)", [knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "http": {"methods": ["GET"]}}]})],
     "prod/web", "prod/api", 8080, "TCP", True),
    ("doNotTrack applies to hosts only", [gnp({"selector": "all()", "doNotTrack": True, "applyOnForward": True, "ingress": [{"action": "Deny"}]})],
     "prod/web", "prod/api", 8080, "TCP", True),
    # tiers (felix/rules/endpoints.go)
    ("a tier before the default tier decides first", [tier("security", 100), gnp({"tier": "security", "selector": "app == 'api'", "ingress": [
        {"action": "Deny", "source": {"selector": "app == 'web'"}}, {"action": "Pass"}]}), np({"podSelector": {}, "ingress": [{}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("Pass goes on to the default tier", [tier("security", 100), gnp({"tier": "security", "selector": "app == 'api'", "ingress": [
        {"action": "Pass"}]}), np({"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}]}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
    ("the end of a tier denies", [tier("security", 100), gnp({"tier": "security", "selector": "app == 'api'", "ingress": [
        {"action": "Allow", "source": {"selector": "app == 'db'"}}]})], "prod/web", "prod/api", 8080, "TCP", False),
    ("a Pass tier's end passes on", [tier("security", 100, "Pass"), gnp({"tier": "security", "selector": "app == 'api'", "ingress": [
        {"action": "Allow", "source": {"selector": "app == 'db'"}}]})], "prod/web", "prod/api", 8080, "TCP", True),
    ("Log decides nothing, but its policy closes the tier", [knp({"selector": "app == 'api'", "ingress": [{"action": "Log"}]})],
     "prod/web", "prod/api", 8080, "TCP", False),
]


@pytest.mark.parametrize("objs,src,dst,port,protocol,expected", [c[1:] for c in CALICO], ids=[c[0] for c in CALICO])
def test_calico_field_truth_table(objs, src, dst, port, protocol, expected):
    assert allowed(objs, src, dst, port, protocol) is expected


CALICO_INVALID = [
    ("numeric ports need a port protocol", knp({"selector": "all()", "ingress": [{"action": "Allow", "destination": {"ports": [80]}}]}),
     "spec.ingress[0].destination.ports[0]: rules with numeric ports or port ranges must set protocol"),
    ("a catch-all notNets", knp({"selector": "all()", "ingress": [{"action": "Allow", "source": {"notNets": ["0.0.0.0/0"]}}]}),
     "spec.ingress[0].source.notNets: a catch-all CIDR"),
    ("a selector over two lines", knp({"selector": "app == 'a'\n"}), "spec.selector: invalid selector"),
    ("icmp needs an ICMP protocol", knp({"selector": "all()", "ingress": [{"action": "Allow", "icmp": {"type": 8}}]}),
     "spec.ingress[0].icmp: icmp needs protocol ICMP"),
    ("both IP families in one rule", knp({"selector": "all()", "ingress": [{"action": "Allow", "source": {"nets": ["10.0.0.0/8", "fd00::/8"]}}]}),
     "spec.ingress[0]: rule contains both IPv4 and IPv6 CIDRs"),
    ("HTTP only on Allow", knp({"selector": "all()", "ingress": [{"action": "Deny", "http": {"methods": ["GET"]}}]}),
     "spec.ingress[0].http: HTTP matches are allowed only on Allow rules"),
    ("a Service with selectors", knp({"selector": "all()", "ingress": [{"action": "Allow", "source": {"services": {"name": "db-svc", "namespace": "prod"},
                                                                                                      "selector": "app == 'x'"}}]}),
     "spec.ingress[0].source.services: cannot be combined"),
    ("unknown rule fields", knp({"selector": "all()", "ingress": [{"action": "Allow", "sources": {}}]}), "spec.ingress[0].sources: unknown field"),
    ("global() only as a whole namespaceSelector", knp({"selector": "global()"}), "spec.selector: global() is allowed only"),
    ("preDNAT needs applyOnForward", gnp({"selector": "all()", "preDNAT": True, "ingress": [{"action": "Deny"}]}),
     "spec.applyOnForward: must be true"),
    ("namespaceSelector is a GlobalNetworkPolicy field", knp({"selector": "all()", "namespaceSelector": "all()"}),
     "spec.namespaceSelector: unknown field"),
]


@pytest.mark.parametrize("policy,message", [c[1:] for c in CALICO_INVALID], ids=[c[0] for c in CALICO_INVALID])
def test_calico_validation_names_the_field(policy, message):
    (hit,) = findings(audit(text(policy)), "NP-HYG-007")
    assert message in hit.message


def test_what_cannot_be_evaluated_is_named():
    report = audit(text(
        cnp({"endpointSelector": WEB, "egress": [{"toFQDNs": [{"matchName": "api.stripe.com"}], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}]}),
        knp({"selector": "app == 'api'", "ingress": [{"action": "Allow", "http": {"methods": ["GET"]}}]}),
        gnp({"selector": "all()", "doNotTrack": True, "applyOnForward": True, "ingress": [{"action": "Deny"}]})))
    notes = {(f.kind, f.name): f.message for f in findings(report, "NP-HYG-009")}
    assert notes[("CiliumNetworkPolicy", "c")] == ("spec.egress[0].toFQDNs[0]: toFQDNs: DNS name api.stripe.com (reach answers for the "
                                                   "name itself) matches nothing here (not in the inventory)")
    assert notes[("Calico NetworkPolicy", "k")].startswith("HTTP rules restrict spec.ingress[0] (enforced only with Calico's Application Layer Policy")
    assert notes[("Calico GlobalNetworkPolicy", "g")] == "doNotTrack or preDNAT: applies to host endpoints only, never to pods (Felix)"


def test_reach_names_a_rejected_policy_that_would_select_the_pod():
    from typer.testing import CliRunner

    from audit.cli import app

    broken = cnp({"endpointSelector": API, "ingress": [{"fromCIDR": ["10.0.0.0/33"]}]}, name="broken")
    other = cnp({"endpointSelector": DB, "ingress": [{"fromCIDR": ["10.0.0.0/33"]}]}, name="elsewhere")
    result = CliRunner().invoke(app, ["reach", "prod/web", "prod/api", "--port", "8080", "-"], input=text(broken, other))
    assert result.exit_code == 0, result.output
    assert ("note: CiliumNetworkPolicy prod/broken is invalid (spec.ingress[0].fromCIDR[0]: '10.0.0.0/33' is not a valid CIDR) "
            "and was left out") in result.output
    assert "elsewhere" not in result.output  # it selects prod/db, not either end
