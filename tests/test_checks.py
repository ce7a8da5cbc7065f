"""Every check fires on its positive case and stays silent on its negative case."""

from __future__ import annotations

import pytest
import yaml

from audit.checks.catalogue import all_checks
from tests import test_dnsnames as dnsnames
from tests.conftest import audit, findings
from tests.test_semantics import API, CLUSTER, DENY_IN, DENY_OUT, policies, sel

DNS_ALLOW = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
    "to": [{"namespaceSelector": sel(**{"kubernetes.io/metadata.name": "kube-system"}), "podSelector": sel(**{"k8s-app": "kube-dns"})}],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
FULL = [(ns, DENY_ALL) for ns in ("prod", "staging", "other")] + [(ns, DNS_ALLOW) for ns in ("prod", "staging", "other")]


def ds(name: str, image: str, containers_extra: str = "") -> str:
    return f"""
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}, namespace: kube-system}}
spec:
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: main
          image: {image}{containers_extra}
"""


ANP_OK = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "deny-metadata"},
          "spec": {"priority": 10, "subject": {"namespaces": {}}, "egress": [{"action": "Deny", "to": [{"networks": ["169.254.169.254/32"]}]}]}}
ANP_BAD = {**ANP_OK, "spec": {**ANP_OK["spec"], "priority": -1}}
CALICO = ds("calico-node", "docker.io/calico/node:v3.29.0", "\n          env: [{name: DATASTORE_TYPE, value: kubernetes}]")
FLANNEL = ds("kube-flannel-ds", "docker.io/flannel/flannel:v0.25.1")
KINDNET = ds("kindnet", "docker.io/kindest/kindnetd:v20240813-c6f155d6")
CILIUM = ds("cilium", "quay.io/cilium/cilium:v1.16.0") + """
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cilium-config, namespace: kube-system}
data: {enable-policy: default}
"""
CILIUM_LEFTOVER = """
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: old-deny, namespace: prod}
spec: {endpointSelector: {}, ingress: [{}]}
"""

# check id -> (positive input, negative input, namespace or object the positive names)
CASES: dict[str, tuple[str, str, str | None]] = {
    "NP-COV-001": (policies(*[s for s in FULL if s[0] != "prod"]), policies(*FULL), "prod"),
    "NP-COV-002": (policies(("prod", DENY_OUT)), policies(*FULL), "prod"),
    "NP-COV-003": (policies(("prod", DENY_IN)), policies(*FULL), "prod"),
    "NP-COV-004": (policies(("prod", {"podSelector": API, "policyTypes": ["Ingress"]})), policies(*FULL), "prod"),
    "NP-COV-005": (policies(("prod", DENY_IN)), policies(*FULL), "prod"),
    "NP-COV-006": (policies(*FULL), policies(*FULL).replace("hostNetwork: true, ", ""), "prod"),
    "NP-PERM-001": (policies(("prod", {"podSelector": API, "ingress": [{}]})),
                    policies(("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 8080}]}]})), "prod"),
    "NP-PERM-002": (policies(("prod", {"podSelector": {"matchLabels": {}}, "ingress": [{"from": [{"podSelector": sel(app="web")}]}]})),
                    policies(("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": sel(app="web")}]}]}), ("prod", DNS_ALLOW)), "prod"),
    "NP-PERM-003": (policies(("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080}]}]})),
                    policies(("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging")}], "ports": [{"port": 8080}]}]})), "prod"),
    "NP-PERM-004": (policies(("prod", {"podSelector": API, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}]})),
                    policies(("prod", {"podSelector": API, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}], "ports": [{"port": 443}]}]})), "prod"),
    "NP-PERM-005": (policies(("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": sel(app="web")}]}]})),
                    policies(("prod", {"podSelector": API, "ingress": [{"from": [{"podSelector": sel(app="web")}], "ports": [{"port": 8080}]}]})), "prod"),
    "NP-PERM-006": (policies(("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging")}, {"podSelector": sel(app="web")}], "ports": [{"port": 8080}]}]})),
                    policies(("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging"), "podSelector": sel(app="web")}], "ports": [{"port": 8080}]}]})), "prod"),
    "NP-PERM-007": (policies(("prod", {"podSelector": API, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}]}]})),
                    policies(("prod", {"podSelector": API, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "169.254.0.0/16"]}}]}]})), "prod"),
    "NP-PERM-008": (policies(("prod", {"podSelector": sel(app="db"), "ingress": [{"from": [{"namespaceSelector": sel(env="staging")}], "ports": [{"port": 5432}]}]})),
                    policies(("prod", {"podSelector": sel(app="db"), "ingress": [{"from": [{"namespaceSelector": sel(env="staging"), "podSelector": sel(app="web")}], "ports": [{"port": 5432}]}]})), "prod"),
    "NP-HYG-001": (policies(("prod", {"podSelector": sel(app="wbe"), "policyTypes": ["Ingress"]})),
                   policies(("prod", {"podSelector": sel(app="web"), "policyTypes": ["Ingress"]})), "prod"),
    "NP-HYG-002": (policies(("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="prdo")}], "ports": [{"port": 8080}]}]})),
                   policies(("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="prod")}], "ports": [{"port": 8080}]}]})), "prod"),
    "NP-HYG-003": (policies(("prod", {"podSelector": {"matchLabels": {"app": None}}, "policyTypes": ["Ingress"]})),
                   policies(("prod", {"podSelector": API, "policyTypes": ["Ingress"]})), "prod"),
    "NP-HYG-004": (policies(("prod", {"podSelector": API, "ingress": [{"ports": [{"port": "htpp"}]}]})),
                   policies(("prod", {"podSelector": API, "ingress": [{"ports": [{"port": "http"}]}]})), "prod"),
    "NP-HYG-005": (policies(("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 8080, "endPort": 80}]}]})),
                   policies(("prod", {"podSelector": API, "ingress": [{"ports": [{"port": 80, "endPort": 8080}]}]})), "prod"),
    "NP-HYG-006": (policies(("prod", {"podSelector": API, "policyTypes": ["Ingress"], "egress": [{"ports": [{"port": 443}]}]})),
                   policies(("prod", {"podSelector": API, "policyTypes": ["Ingress", "Egress"], "egress": [{"ports": [{"port": 443}]}]})), "prod"),
    "NP-HYG-007": (CLUSTER + "\n---\n" + yaml.safe_dump(ANP_BAD), CLUSTER + "\n---\n" + yaml.safe_dump(ANP_OK), None),
    "NP-HYG-008": (CLUSTER + "\n---\n" + yaml.safe_dump(ANP_OK) + "\n---\n" + yaml.safe_dump({**ANP_OK, "metadata": {"name": "twin"}}),
                   CLUSTER + "\n---\n" + yaml.safe_dump(ANP_OK), None),
    "NP-EXP-001": (policies(("prod", DENY_IN)), policies(*FULL), "prod"),
    "NP-EXP-003": (policies(("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080}]}]})),
                   policies(("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": sel(env="staging")}]}]})), "prod"),
    "NP-EXP-002": (policies(("prod", {"podSelector": sel(app="db"), "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 5432}]}]})),
                   policies(("prod", {"podSelector": sel(app="db"), "ingress": [{"from": [{"namespaceSelector": sel(env="prod")}], "ports": [{"port": 5432}]}]})), "prod"),
    "NP-HYG-009": (policies(*FULL) + "\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: l7, namespace: prod}\n"
                   "spec: {endpointSelector: {}, egress: [{toFQDNs: [{matchName: api.stripe.com}], toPorts: [{ports: [{port: '443'}]}]}]}\n",
                   policies(*FULL) + "\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: l4, namespace: prod}\n"
                   "spec: {endpointSelector: {}, egress: [{toCIDR: [10.0.0.0/8], toPorts: [{ports: [{port: '443'}]}]}]}\n", "prod"),
    "NP-DNS-001": (policies(("prod", DENY_OUT)), policies(("prod", DENY_OUT), ("prod", DNS_ALLOW)), "prod"),
    "NP-DNS-002": (policies(("prod", DENY_OUT), ("prod", {**DNS_ALLOW, "egress": [{**DNS_ALLOW["egress"][0], "ports": [{"port": 53, "protocol": "UDP"}]}]})),
                   policies(("prod", DENY_OUT), ("prod", DNS_ALLOW)), "prod"),
    "NP-DNS-003": (dnsnames.base(dnsnames.egress(dnsnames.dns_rule(None), dnsnames.STRIPE)),
                   dnsnames.base(dnsnames.egress(dnsnames.dns_rule(["*"]), dnsnames.STRIPE)), "shop"),
    "NP-CNI-001": (policies(*FULL) + FLANNEL, policies(*FULL) + FLANNEL + CALICO, None),
    "NP-CNI-002": (policies(*FULL), policies(*FULL) + CALICO, None),
    "NP-CNI-003": (policies(*FULL) + KINDNET, policies(*FULL) + CALICO + KINDNET, None),
    # A Cilium policy on a Calico cluster is a leftover; on a Cilium cluster it is a control.
    "NP-CNI-004": (policies(*FULL) + CALICO + CILIUM_LEFTOVER, policies(*FULL) + CILIUM + CILIUM_LEFTOVER, None),
    # Unknown CNI: the Cilium policy's enforcement is assumed, and said so; with Cilium it is not assumed.
    "NP-CNI-005": (policies(*FULL) + CILIUM_LEFTOVER, policies(*FULL) + CILIUM + CILIUM_LEFTOVER, None),
    "NP-CNI-006": (policies(*FULL) + CILIUM.replace("enable-policy: default", "enable-policy: always"), policies(*FULL) + CILIUM, None),
}

# check id -> every finding its positive case gives, exactly: (namespace, kind, object, field); the count is pinned too.
PINNED: dict[str, list[tuple[str | None, str, str, str | None]]] = {
    "NP-CNI-001": [(None, 'Cluster', 'cni', None)],
    "NP-CNI-002": [(None, 'Cluster', 'cni', None)],
    "NP-CNI-003": [(None, 'Cluster', 'cni', None)],
    "NP-CNI-004": [(None, 'Cilium', 'Cilium', None)],
    "NP-CNI-005": [(None, 'Cilium', 'Cilium', None)],
    "NP-CNI-006": [(None, 'Cluster', 'cni', None)],
    "NP-COV-001": [('prod', 'Namespace', 'prod', None)],
    "NP-COV-002": [('other', 'Namespace', 'other', None), ('prod', 'Namespace', 'prod', None), ('staging', 'Namespace', 'staging', None)],
    "NP-COV-003": [('other', 'Namespace', 'other', None), ('prod', 'Namespace', 'prod', None), ('staging', 'Namespace', 'staging', None)],
    "NP-COV-004": [('other', 'Namespace', 'other', None), ('prod', 'Namespace', 'prod', None), ('staging', 'Namespace', 'staging', None)],
    "NP-COV-005": [('other', 'Namespace', 'other', None), ('prod', 'Namespace', 'prod', None), ('staging', 'Namespace', 'staging', None)],
    "NP-COV-006": [('prod', 'Namespace', 'prod', None)],
    "NP-DNS-001": [('prod', 'Namespace', 'prod', None)],
    "NP-DNS-002": [('prod', 'Namespace', 'prod', None)],
    "NP-DNS-003": [('shop', 'CiliumNetworkPolicy', 'checkout', None)],
    "NP-EXP-001": [('other', 'Namespace', 'other', None), ('prod', 'Namespace', 'prod', None), ('staging', 'Namespace', 'staging', None)],
    "NP-EXP-002": [('prod', 'Workload', 'db', None)],
    "NP-EXP-003": [('prod', 'Workload', 'api', None)],
    "NP-HYG-001": [('prod', 'NetworkPolicy', 'p0', 'spec.podSelector')],
    "NP-HYG-002": [('prod', 'NetworkPolicy', 'p0', 'spec.ingress[0].from[0]')],
    "NP-HYG-003": [('prod', 'NetworkPolicy', 'p0', 'spec.podSelector')],
    "NP-HYG-004": [('prod', 'NetworkPolicy', 'p0', 'spec.ingress[0].ports[0]')],
    "NP-HYG-005": [('prod', 'NetworkPolicy', 'p0', None)],
    "NP-HYG-006": [('prod', 'NetworkPolicy', 'p0', 'spec.egress')],
    "NP-HYG-007": [(None, 'AdminNetworkPolicy', 'deny-metadata', None)],
    "NP-HYG-008": [(None, 'AdminNetworkPolicy', 'deny-metadata, twin', None)],
    "NP-HYG-009": [('prod', 'CiliumNetworkPolicy', 'l7', None)],
    "NP-PERM-001": [('prod', 'NetworkPolicy', 'p0', 'spec.ingress[0]')],
    "NP-PERM-002": [('prod', 'NetworkPolicy', 'p0', 'spec.podSelector')],
    "NP-PERM-003": [('prod', 'NetworkPolicy', 'p0', 'spec.ingress[0].from[0]')],
    "NP-PERM-004": [('prod', 'NetworkPolicy', 'p0', 'spec.ingress[0].from[0]')],
    "NP-PERM-005": [('prod', 'NetworkPolicy', 'p0', 'spec.ingress[0]')],
    "NP-PERM-006": [('prod', 'NetworkPolicy', 'p0', 'spec.ingress[0]')],
    "NP-PERM-007": [('prod', 'NetworkPolicy', 'p0', 'spec.egress[0].to[0]')],
    "NP-PERM-008": [('prod', 'Workload', 'db', None)],
}

CONFIG_CASES = {
    "NP-CFG-001": ({"waivers": [{"check": "NP-COV-001", "reason": "legacy", "expires": "2025-12-31"}]},
                   {"waivers": [{"check": "NP-COV-001", "reason": "legacy", "expires": "2026-12-31"}]}),
}


def test_every_check_has_a_positive_and_negative_case():
    from tests.test_flows import FLOW_CASES

    assert {c.id for c in all_checks()} == set(CASES) | set(CONFIG_CASES) | set(FLOW_CASES)


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_check_positive(check_id):
    positive, _negative, namespace = CASES[check_id]
    hits = findings(audit(positive), check_id)
    assert hits, f"{check_id} did not fire"
    assert sorted((f.namespace, f.kind, f.name, f.field) for f in hits) == PINNED[check_id]
    assert namespace is None or namespace in {f.namespace for f in hits}


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_check_negative(check_id):
    _positive, negative, namespace = CASES[check_id]
    hits = findings(audit(negative), check_id)
    assert not [f for f in hits if namespace is None or f.namespace == namespace], [f.message for f in hits]


@pytest.mark.parametrize("check_id", sorted(CONFIG_CASES))
def test_config_check(check_id):
    positive, negative = CONFIG_CASES[check_id]
    assert findings(audit(CLUSTER, positive), check_id)
    assert not findings(audit(CLUSTER, negative), check_id)


def test_metadata_is_complete_and_ids_stable():
    for check in all_checks():
        assert check.title and check.rationale and check.remediation
        assert check.id.startswith("NP-")
    # Ids are a public contract: renaming one breaks waivers and dashboards.
    assert {c.id for c in all_checks()} >= {"NP-COV-001", "NP-COV-002", "NP-COV-003", "NP-PERM-001", "NP-CNI-001", "NP-DNS-001"}


def test_flannel_with_policies_is_the_first_finding():
    report = audit(policies(*FULL) + FLANNEL)
    first = report.findings[0]
    assert (first.check, first.severity) == ("NP-CNI-001", "critical")
    assert "policies are not enforced" in first.message


KUBE_DNS = """
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system}
spec:
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec: {containers: [{name: c, image: coredns, ports: [{containerPort: 53, protocol: UDP, name: dns}, {containerPort: 53, name: dns-tcp}]}]}
"""
"""The cluster DNS pods (CoreDNS keeps the kube-dns labels), in their namespace."""


def test_dns_blocked_by_dns_pods_own_ingress_policy():
    lock = """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lock, namespace: kube-system}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
    report = audit(policies(("prod", DENY_OUT), ("prod", DNS_ALLOW)) + KUBE_DNS + lock)
    (hit,) = [f for f in findings(report, "NP-DNS-001") if f.namespace == "prod"]
    assert "ingress of the destination" in hit.message and "kube-system/lock" in hit.message


def test_invalid_policy_names_the_field_and_takes_no_effect():
    report = audit(policies(("prod", {"podSelector": API, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]})))
    (hit,) = findings(report, "NP-HYG-005")
    assert "spec.ingress[0].from[0]" in hit.message and "ipBlock and another peer" in hit.message
    assert report.summary.invalid_policies == 1
    row = next(r for r in report.namespaces if r.name == "prod")
    assert row.isolated_ingress == 0


def test_excluded_namespaces_produce_no_findings_and_are_listed():
    report = audit(CLUSTER, {"excludeNamespaces": ["other", "stag*"]})
    assert {f.namespace for f in report.findings if f.namespace} == {"prod"}
    assert set(report.summary.excluded_namespaces) == {"other", "staging"}


def test_broad_selector_annotation_waives_with_reason():
    text = policies(("prod", {"podSelector": {}, "ingress": [{"from": [{"podSelector": sel(app="web")}]}]})).replace(
        "name: p0\n", "name: p0\n  annotations:\n    netpol-audit.io/broad-selector-reason: every pod serves the web tier\n")
    report = audit(text)
    assert not findings(report, "NP-PERM-002")
    (waived,) = findings(report, "NP-PERM-002", status="waived")
    assert "every pod serves the web tier" in waived.waiver


def test_waiver_applies_until_expiry_and_severity_override():
    cfg = {"waivers": [{"check": "NP-COV-00*", "namespace": "staging", "reason": "migration", "expires": "2026-06-30"}],
           "severityOverrides": {"NP-COV-001": "critical"}}
    report = audit(CLUSTER, cfg)
    assert not [f for f in report.findings if f.namespace == "staging" and f.status == "fail" and f.check.startswith("NP-COV-00")]
    assert [f.severity for f in findings(report, "NP-COV-001")] == ["critical", "critical"]
    expired = audit(CLUSTER, {"waivers": [{"check": "NP-COV-001", "namespace": "staging", "reason": "old", "expires": "2025-01-01"}]})
    assert "staging" in {f.namespace for f in findings(expired, "NP-COV-001")}


def test_cni_from_node_annotations_when_daemonsets_are_not_visible():
    node = "\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n1, annotations: {flannel.alpha.coreos.com/backend-type: vxlan}}\n"
    report = audit(policies(*FULL) + node)
    assert report.cni.verdict == "not-enforced"
    assert findings(report, "NP-CNI-001") and "node annotations" in report.cni.components[0].daemonset


def test_reachable_from_everywhere_is_judged_by_reachability():
    open_to_all = ("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080}]}]})
    (hit,) = findings(audit(policies(open_to_all)), "NP-EXP-003")
    assert hit.namespace == "prod" and "all 2 other namespaces" in hit.message and "TCP 8080" in hit.message
    # One namespace whose egress is denied is enough: the workload is no longer reachable from *every* namespace.
    assert not findings(audit(policies(open_to_all, ("other", DENY_OUT))), "NP-EXP-003")
    # Not isolated at all: a coverage finding, not this one.
    assert not findings(audit(policies(("prod", DENY_OUT))), "NP-EXP-003")
    # An ingress rule for all peers is the same exposure.
    assert findings(audit(policies(("prod", {"podSelector": API, "ingress": [{}]}))), "NP-EXP-003")


def test_isolated_workload_reachable_from_everywhere_through_listed_peers():
    """NP-EXP-003 when the ingress rule's peers can be listed (namespaces named, not all of them):
    the namespaces the peers span are counted before any source is tried, at the edge where they
    cover exactly every other namespace, the workload's own counted or not."""

    def named(*namespaces: str) -> tuple[str, dict]:
        return ("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(namespaces)}]}}], "ports": [{"port": 8080}]}]})

    for spanned in (("prod", "staging", "other"), ("staging", "other"), ("other", "staging")):
        (hit,) = findings(audit(policies(named(*spanned))), "NP-EXP-003")
        assert (hit.namespace, hit.name) == ("prod", "api") and "all 2 other namespaces" in hit.message, spanned
    for spanned in (("prod", "staging"), ("staging",), ("prod", "other")):
        assert not findings(audit(policies(named(*spanned))), "NP-EXP-003"), spanned


def test_dns_pods_that_refuse_one_namespace_without_being_isolated():
    """An AdminNetworkPolicy that denies the DNS pods' ingress from one namespace does not isolate
    them (everyone else still gets in), yet that namespace cannot resolve: its pods' egress allow
    is not the whole answer, the DNS side is judged too."""
    anp = """
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: no-dns-for-prod}
spec:
  priority: 5
  subject: {pods: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}}
  ingress:
  - action: Deny
    from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: prod}}}]
"""
    specs = [(ns, DENY_OUT) for ns in ("prod", "staging")] + [(ns, DNS_ALLOW) for ns in ("prod", "staging")]
    report = audit(policies(*specs) + KUBE_DNS + CALICO + anp)
    for check in ("NP-DNS-001", "NP-DNS-002"):
        hits = findings(report, check)
        assert [f.namespace for f in hits] == ["prod"], (check, [(f.namespace, f.message) for f in hits])
        assert "ingress" in hits[0].message.lower() or "no-dns-for-prod" in hits[0].message, hits[0].message
    assert not findings(audit(policies(*specs) + KUBE_DNS + CALICO), "NP-DNS-001")


def _to_metadata(pods: dict) -> tuple[str, dict]:
    return ("prod", {"podSelector": pods, "policyTypes": ["Egress"],
                     "egress": [{"to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}], "ports": [{"port": 80}]}]})


def test_metadata_findings_name_the_allowing_rule_and_fix_only_what_is_safe():
    """NP-EXP-001 explains the first reaching pod's egress on port 80 (the rule that allows it), and
    its fix narrows the allowing policies; namespace-wide isolation that takes away only the
    metadata address is offered only where no pod is egress-isolated yet (it would open the
    isolated ones)."""
    everyone = {f.namespace: f for f in findings(audit(policies(_to_metadata({}))), "NP-EXP-001")}
    assert "allowed by prod/p0 egress[0]" in everyone["prod"].message, everyone["prod"].message
    assert "name: p0" in everyone["prod"].fix_yaml and "deny-cloud-metadata" not in everyone["prod"].fix_yaml
    mixed = {f.namespace: f for f in findings(audit(policies(_to_metadata(API))), "NP-EXP-001")}
    assert "name: p0" in mixed["prod"].fix_yaml and "deny-cloud-metadata" not in mixed["prod"].fix_yaml  # api isolated, the rest open
    assert "name: deny-cloud-metadata" in mixed["staging"].fix_yaml and "name: p0" not in mixed["staging"].fix_yaml


def test_cross_environment_fix_only_where_no_pod_is_isolated():
    """NP-EXP-002's generated isolation (the sensitive ports taken away from other environments) is
    offered for a namespace with no ingress-isolated pod, never beside isolated ones."""
    (open_,) = findings(audit(policies()), "NP-EXP-002")
    assert (open_.namespace, open_.name) == ("prod", "db") and "name: deny-sensitive-ports-from-other-environments" in open_.fix_yaml
    isolated = ("prod", {"podSelector": sel(app="db"), "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 5432}]}]})
    (hit,) = findings(audit(policies(isolated)), "NP-EXP-002")
    assert (hit.namespace, hit.name) == ("prod", "db") and hit.fix_yaml is None


def scaled_to_zero(namespace: str) -> str:
    """A Deployment of ``namespace`` scaled to zero replicas: a workload and a pod class, no pod."""
    return f"""
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: idle, namespace: {namespace}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: idle}}}}
  template:
    metadata: {{labels: {{app: idle}}}}
    spec: {{containers: [{{name: c, image: i}}]}}
"""


def test_reachable_from_everywhere_counts_namespaces_with_running_pods():
    """A namespace whose only workload runs no pod (a Deployment scaled to zero) is not one that
    the workload must be reachable from: it neither counts nor refuses."""
    open_to_all = ("prod", {"podSelector": API, "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080}]}]})
    (hit,) = findings(audit(policies(open_to_all) + scaled_to_zero("idle")), "NP-EXP-003")
    assert "all 2 other namespaces" in hit.message, hit.message
