"""Compliance frameworks, mapped to check ids from the framework side.

Adding a framework touches only this module: checks do not name the controls they serve.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Control:
    framework: str
    id: str
    title: str
    checks: tuple[str, ...]

    @property
    def ref(self) -> str:
        return f"{self.framework} {self.id}"


_NAMESPACE_POLICIES = ("NP-COV-001", "NP-COV-002", "NP-COV-003")
_COVERAGE = ("NP-COV-001", "NP-COV-002", "NP-COV-003", "NP-COV-004", "NP-COV-005")
_INGRESS = ("NP-COV-002", "NP-COV-004", "NP-PERM-001", "NP-PERM-002", "NP-PERM-003", "NP-PERM-004", "NP-PERM-005", "NP-PERM-006", "NP-PERM-008")
_EGRESS = ("NP-COV-003", "NP-COV-005", "NP-PERM-001", "NP-PERM-004", "NP-PERM-005", "NP-PERM-007", "NP-EXP-001")
_SEGMENTATION = _COVERAGE + ("NP-PERM-001", "NP-PERM-002", "NP-PERM-003", "NP-PERM-006", "NP-PERM-008", "NP-EXP-002", "NP-EXP-003", "NP-CNI-001", "NP-CNI-004", "NP-HYG-005", "NP-HYG-007")

CONTROLS: tuple[Control, ...] = (
    Control("CIS Kubernetes Benchmark", "5.3.1", "Ensure that the CNI in use supports Network Policies", ("NP-CNI-001", "NP-CNI-002", "NP-CNI-003")),
    Control("CIS Kubernetes Benchmark", "5.3.2", "Ensure that all Namespaces have Network Policies defined", _NAMESPACE_POLICIES),
    Control("CIS EKS Benchmark", "4.3.1", "Ensure CNI plugin supports network policies", ("NP-CNI-001", "NP-CNI-002", "NP-CNI-003")),
    Control("CIS EKS Benchmark", "4.3.2", "Ensure that all Namespaces have Network Policies defined", _NAMESPACE_POLICIES),
    Control("CIS GKE Benchmark", "4.3.1", "Ensure that the CNI in use supports Network Policies", ("NP-CNI-001", "NP-CNI-002", "NP-CNI-003")),
    Control("CIS GKE Benchmark", "4.3.2", "Ensure that all Namespaces have Network Policies defined", _NAMESPACE_POLICIES),
    Control("CIS AKS Benchmark", "4.4.1", "Ensure latest CNI version is used / supports Network Policies", ("NP-CNI-001", "NP-CNI-002", "NP-CNI-003")),
    Control("CIS AKS Benchmark", "4.4.2", "Ensure that all Namespaces have Network Policies defined", _NAMESPACE_POLICIES),
    Control("NSA/CISA Kubernetes Hardening Guidance", "Network separation and hardening", "Use network policies to isolate resources; default-deny", _SEGMENTATION + ("NP-COV-006",)),
    Control("PCI DSS v4.0", "1.3.1", "Inbound traffic to the CDE is restricted to that which is necessary", _INGRESS),
    Control("PCI DSS v4.0", "1.3.2", "Outbound traffic from the CDE is restricted to that which is necessary", _EGRESS),
    Control("PCI DSS v4.0", "11.4.5", "Segmentation controls are verified as effective", ("NP-CNI-001", "NP-CNI-003", "NP-CNI-004", "NP-CNI-005", "NP-HYG-005", "NP-HYG-001", "NP-HYG-006", "NP-HYG-007", "NP-HYG-008")),
    Control("SOC 2", "CC6.1", "Logical access security over protected information assets", _SEGMENTATION),
    Control("SOC 2", "CC6.6", "Logical access security measures against threats from outside system boundaries", ("NP-PERM-004", "NP-PERM-007", "NP-PERM-001")),
    Control("ISO/IEC 27001:2022", "A.8.22", "Segregation of networks", _SEGMENTATION),
    Control("NIST SP 800-53", "SC-7", "Boundary protection", _SEGMENTATION + ("NP-PERM-004", "NP-PERM-007")),
    Control("NIST SP 800-53", "AC-4", "Information flow enforcement", _INGRESS + _EGRESS),
)


def references(check_id: str) -> tuple[str, ...]:
    """The controls a check serves, as "Framework id" strings."""
    return tuple(c.ref for c in CONTROLS if check_id in c.checks)
