"""Compliance frameworks, mapped to check ids from the framework side, each control with its criteria.

Adding a framework touches only this module: checks do not name the controls they serve. A
control's verdict follows from stated criteria (see `assess`), printed next to it in every report:

- ``manual``: the tool cannot judge it (testing, a vendor's latest version); the verdict is
  *manual* and the report says what evidence the tool does provide.
- ``cni``: about the network plugin itself; judged from the CNI checks.
- ``segmentation``: about what policies isolate. Policies the network does not enforce isolate
  nothing, so the CNI is a precondition: a CNI that does not enforce NetworkPolicy fails the
  control whatever the policies say; an unknown or conditional one makes it *not assessable*.

For every kind but ``manual``: an incomplete scan is *not assessable* (unless a counted check
already fails), a counted check that could not decide (an info finding) is *not assessable*, and
*pass* needs none of the counted checks failing over the audited namespaces.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

ControlKind = Literal["segmentation", "cni", "manual"]
Status = Literal["pass", "fail", "not-assessable", "manual"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "not-assessable", "manual")

_CNI_CHECKS = ("NP-CNI-001", "NP-CNI-002", "NP-CNI-003")


@dataclass(frozen=True)
class Control:
    framework: str
    id: str
    title: str
    checks: tuple[str, ...]
    kind: ControlKind = "segmentation"
    evidence: str = ""  # for a manual control: what the tool provides towards it

    @property
    def ref(self) -> str:
        return f"{self.framework} {self.id}"

    @property
    def criteria(self) -> str:
        """The rule the verdict follows, in words, as the reports print it."""
        if self.kind == "manual":
            return f"Manual: the tool cannot judge this control. It provides: {self.evidence}"
        counted = ", ".join(self.checks)
        rule = f"Pass when none of {counted} fails over the audited namespaces and the scan is complete"
        if self.kind == "segmentation":
            rule += ("; the CNI must enforce NetworkPolicy (not enforcing: fail; unknown or conditional: "
                     "not assessable)")
        return rule + "; a counted check that could not decide makes it not assessable."


@dataclass(frozen=True)
class Assessment:
    status: Status
    reason: str
    evidence: tuple[str, ...]  # the failing (or undecided) checks the verdict rests on


def assess(control: Control, failing: frozenset[str], undecided: frozenset[str], complete: bool, cni: str,
           cni_reason: str = "") -> Assessment:
    """The verdict of ``control``: ``failing`` are the checks with an unwaived finding above info,
    ``undecided`` those with only info findings (the check could not decide), ``cni`` the CNI
    verdict (enforced, conditional, not-enforced, unknown) and ``cni_reason`` what it rests on
    (the settings read), cited in the reason of a segmentation control."""
    cited = f" ({cni_reason})" if cni_reason else ""
    if control.kind == "manual":
        return Assessment("manual", "the tool cannot judge this control; see its evidence", ())
    fails = tuple(sorted(failing & set(control.checks)))
    if control.kind == "segmentation" and cni == "not-enforced":
        # Said even when checks fail too: fixing them alone would not make this control pass.
        also = f"; failing: {', '.join(fails)}" if fails else ""
        return Assessment("fail", f"the CNI does not enforce NetworkPolicy{cited}: no policy isolates anything{also}",
                          tuple(sorted({*fails, "NP-CNI-001"})))
    if fails:
        return Assessment("fail", f"failing: {', '.join(fails)}", fails)
    if not complete:
        return Assessment("not-assessable", "the scan is incomplete", ())
    if control.kind == "segmentation" and cni != "enforced":
        return Assessment("not-assessable", f"whether the CNI enforces NetworkPolicy is {'conditional' if cni == 'conditional' else 'unknown'}{cited}",
                          tuple(sorted(undecided & set(_CNI_CHECKS))))
    open_questions = tuple(sorted(undecided & set(control.checks)))
    if open_questions:
        return Assessment("not-assessable", f"could not decide: {', '.join(open_questions)}", open_questions)
    return Assessment("pass", f"none of {', '.join(control.checks)} fails", ())


_NAMESPACE_POLICIES = ("NP-COV-001", "NP-COV-002", "NP-COV-003")
_COVERAGE = ("NP-COV-001", "NP-COV-002", "NP-COV-003", "NP-COV-004", "NP-COV-005")
_INGRESS = ("NP-COV-002", "NP-COV-004", "NP-PERM-001", "NP-PERM-002", "NP-PERM-003", "NP-PERM-004", "NP-PERM-005", "NP-PERM-006", "NP-PERM-008")
_EGRESS = ("NP-COV-003", "NP-COV-005", "NP-PERM-001", "NP-PERM-004", "NP-PERM-005", "NP-PERM-007", "NP-EXP-001")
_BY_TRAFFIC = ("NP-FLOW-002", "NP-FLOW-003")
_SEGMENTATION = _COVERAGE + ("NP-PERM-001", "NP-PERM-002", "NP-PERM-003", "NP-PERM-006", "NP-PERM-008", "NP-EXP-002", "NP-EXP-003", "NP-CNI-001", "NP-CNI-004", "NP-HYG-005", "NP-HYG-007")

# Framework names carry the version whose numbering the ids follow.
CIS_K8S = "CIS Kubernetes Benchmark v1.9.0"
CIS_EKS = "CIS Amazon EKS Benchmark v1.5.0"
CIS_GKE = "CIS Google Kubernetes Engine (GKE) Benchmark v1.5.0"
CIS_AKS = "CIS Azure Kubernetes Service (AKS) Benchmark v1.4.0"
NSA = "NSA/CISA Kubernetes Hardening Guidance v1.2"
PCI = "PCI DSS v4.0.1"
SOC2 = "SOC 2 (2017 Trust Services Criteria, rev. 2022)"
ISO = "ISO/IEC 27001:2022"
NIST = "NIST SP 800-53 Rev. 5"

CONTROLS: tuple[Control, ...] = (
    Control(CIS_K8S, "5.3.1", "Ensure that the CNI in use supports Network Policies", _CNI_CHECKS, "cni"),
    Control(CIS_K8S, "5.3.2", "Ensure that all Namespaces have Network Policies defined", _NAMESPACE_POLICIES),
    Control(CIS_EKS, "4.3.1", "Ensure CNI plugin supports network policies", _CNI_CHECKS, "cni"),
    Control(CIS_EKS, "4.3.2", "Ensure that all Namespaces have Network Policies defined", _NAMESPACE_POLICIES),
    Control(CIS_GKE, "4.3.1", "Ensure that the CNI in use supports Network Policies", _CNI_CHECKS, "cni"),
    Control(CIS_GKE, "4.3.2", "Ensure that all Namespaces have Network Policies defined", _NAMESPACE_POLICIES),
    Control(CIS_AKS, "4.4.1", "Ensure latest CNI version is used", _CNI_CHECKS, "manual",
            evidence="the CNI components found, their images and whether they enforce NetworkPolicy (CNI section); "
                     "which version is the latest is not known to it"),
    Control(CIS_AKS, "4.4.2", "Ensure that all Namespaces have Network Policies defined", _NAMESPACE_POLICIES),
    Control(NSA, "Network separation and hardening", "Use network policies to isolate resources; default-deny", _SEGMENTATION + ("NP-COV-006",)),
    # "That which is necessary" is what traffic shows: with --flows, unused allow rules and unsegmented traffic count too.
    Control(PCI, "1.3.1", "Inbound traffic to the CDE is restricted to that which is necessary", _INGRESS + _BY_TRAFFIC),
    Control(PCI, "1.3.2", "Outbound traffic from the CDE is restricted to that which is necessary", _EGRESS + _BY_TRAFFIC),
    Control(PCI, "11.4.5", "Segmentation controls are verified as effective", ("NP-CNI-001", "NP-CNI-003", "NP-CNI-004", "NP-CNI-005",
                                                                              "NP-HYG-005", "NP-HYG-001", "NP-HYG-006", "NP-HYG-007", "NP-HYG-008"),
            "manual", evidence="the connections the policies allow (connectivity section, `netpol-audit connectivity`) and "
                               "`verify` against expected paths; penetration testing of the segmentation is not done by it"),
    Control(SOC2, "CC6.1", "Logical access security over protected information assets", _SEGMENTATION),
    Control(SOC2, "CC6.6", "Logical access security measures against threats from outside system boundaries", ("NP-PERM-004", "NP-PERM-007", "NP-PERM-001")),
    Control(ISO, "A.8.22", "Segregation of networks", _SEGMENTATION),
    Control(NIST, "SC-7", "Boundary protection", _SEGMENTATION + ("NP-PERM-004", "NP-PERM-007")),
    Control(NIST, "AC-4", "Information flow enforcement", _INGRESS + _EGRESS + _BY_TRAFFIC),
)


@functools.cache
def references(check_id: str) -> tuple[str, ...]:
    """The controls a check serves, as "Framework id" strings (asked per finding: answered once per check)."""
    return tuple(c.ref for c in CONTROLS if check_id in c.checks)
