"""Default-deny and coverage judged by effect, including the known mistakes of other tools."""

from __future__ import annotations

import pytest

from tests.conftest import analyse, audit, findings
from tests.test_semantics import API, CLUSTER, DENY_IN, DENY_OUT, policies, sel


def coverage(*specs):
    return analyse(policies(*specs)).coverage["prod"]


def test_allow_all_with_empty_selector_is_not_default_deny():
    # Known mistake: counting a namespace as default-deny because a podSelector: {} policy exists.
    cov = coverage(("prod", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}))
    assert cov.ingress.isolated_pods == cov.ingress.pods == 4  # every pod is selected ...
    assert not cov.ingress.default_deny  # ... but nothing is denied
    assert "allows all ingress on all ports" in cov.ingress.reason


def test_allow_all_is_reported_as_allow_all_not_default_deny():
    report = audit(policies(("prod", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]})))
    assert [f.namespace for f in findings(report, "NP-PERM-001")] == ["prod"]
    assert "prod" in [f.namespace for f in findings(report, "NP-COV-002")]
    row = next(r for r in report.namespaces if r.name == "prod")
    assert not row.default_deny_ingress


def test_deny_all_is_default_deny_without_explicit_rules():
    cov = coverage(("prod", DENY_IN))
    assert cov.ingress.default_deny and cov.ingress.baseline == ("prod/p0",)
    assert not cov.egress.default_deny


def test_implied_ingress_type_counts_as_default_deny():
    # Known mistake: requiring explicit policyTypes and so missing the implied ingress deny.
    cov = coverage(("prod", {"podSelector": {}}))
    assert cov.ingress.default_deny


def test_egress_only_rules_without_types_deny_ingress_too():
    cov = coverage(("prod", {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}))
    assert cov.ingress.default_deny and cov.egress.default_deny


def test_rule_with_empty_from_but_ports_keeps_default_deny():
    # Known mistake: calling any rule with an empty from "allow-all" even when ports narrow it.
    cov = coverage(("prod", {"podSelector": {}, "ingress": [{"ports": [{"port": 8080}]}]}))
    assert cov.ingress.default_deny
    report = audit(policies(("prod", {"podSelector": {}, "ingress": [{"ports": [{"port": 8080}]}]})))
    assert not findings(report, "NP-PERM-001")


def test_namespace_wide_allow_from_whole_cluster_undoes_default_deny():
    cov = coverage(("prod", DENY_IN), ("prod", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}))
    assert not cov.ingress.default_deny and [str(r) for r in cov.ingress.opened_by] == ["prod/p1 ingress[0]"]


def test_allow_all_for_one_workload_keeps_namespace_default_deny():
    cov = coverage(("prod", DENY_IN), ("prod", {"podSelector": API, "ingress": [{}]}))
    assert cov.ingress.default_deny


def test_allow_all_for_every_current_pod_undoes_default_deny():
    cov = coverage(("prod", DENY_IN), ("prod", {"podSelector": {"matchExpressions": [{"key": "nothere", "operator": "DoesNotExist"}]}, "ingress": [{}]}))
    assert not cov.ingress.default_deny


def test_workload_policies_covering_every_pod_are_not_default_deny():
    specs = [("prod", {"podSelector": sel(app=a), "policyTypes": ["Ingress"]}) for a in ("web", "api", "db")]
    specs.append(("prod", {"podSelector": {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, "policyTypes": ["Ingress"]}))
    cov = coverage(*specs)
    assert cov.ingress.isolated_pods == cov.ingress.pods == 4
    assert not cov.ingress.default_deny
    assert "new pods" in cov.ingress.reason


def test_selected_for_one_direction_is_not_covered():
    # Known mistake: passing a pod as "covered" when it is selected only for one direction.
    report = audit(policies(("prod", DENY_OUT)))
    ingress = findings(report, "NP-COV-004")
    assert any(f.namespace == "prod" for f in ingress)
    assert not any(f.namespace == "prod" for f in findings(report, "NP-COV-005"))


def test_match_expressions_and_namespaces_count_for_selection():
    # Known mistake: matching pods with matchLabels only.
    cov = coverage(("prod", {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api", "db"]}]}, "policyTypes": ["Ingress"]}))
    assert cov.ingress.isolated_pods == 3
    other = analyse(policies(("prod", DENY_IN))).coverage["staging"]
    assert other.ingress.isolated_pods == 0


def test_host_network_pods_are_reported_not_counted():
    cov = coverage(("prod", DENY_IN))
    assert cov.host_network_pods == 1 and cov.pods == 4
    report = audit(policies(("prod", DENY_IN)))
    (hit,) = [f for f in findings(report, "NP-COV-006") if f.namespace == "prod"]
    assert hit.objects == ("prod/agent[Pod]",)


def test_no_policy_namespace_counts():
    report = audit(CLUSTER)
    assert report.summary.default_deny_ingress == 0
    assert report.summary.pods_isolated_ingress == 0
    assert {f.namespace for f in findings(report, "NP-COV-001")} == {"prod", "staging", "other"}


@pytest.mark.parametrize("direction", ["Ingress", "Egress"])
def test_summary_counts_default_deny_per_direction(direction):
    spec = {"podSelector": {}, "policyTypes": [direction]}
    report = audit(policies(("prod", spec), ("staging", spec)))
    s = report.summary
    got = s.default_deny_ingress if direction == "Ingress" else s.default_deny_egress
    other = s.default_deny_egress if direction == "Ingress" else s.default_deny_ingress
    assert (got, other, s.audited_namespaces) == (2, 0, 3)


def test_score_follows_its_stated_formula():
    from audit.report.model import score_and_grade

    none = {"critical": 0, "high": 0, "medium": 0, "low": 0}
    assert score_and_grade(3, 3, 3, none, True) == (100, "A")
    assert score_and_grade(3, 3, 3, none, False) == (40, "F")  # nothing enforced: coverage counts 0
    assert score_and_grade(2, 1, 0, {**none, "high": 2}, True) == (15 + 20, "F")  # P = 5: 40 x 0.5
    assert score_and_grade(0, 0, 0, none, True) == (40, "F")
