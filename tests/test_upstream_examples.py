"""The example policies Cilium and Calico publish, read as their own agents read them (issue 23).

Every example is accepted, or rejected naming the field the project's own CRD or validator rejects;
the verdicts checked are the ones the pages state, on small clusters of pods named here."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.config import Config
from audit.pipeline import analyse
from audit.sources.manifests import load_manifests
from tests.conftest import ROOT, inventory

UPSTREAM = ROOT / "tests" / "upstream"
CILIUM = sorted((UPSTREAM / "cilium").rglob("*.yaml"))
CALICO = sorted((UPSTREAM / "calico").glob("*.yaml"))

REJECTED = {
    # Cilium 1.20's CRD: `auth` became `authentication`; fromRequires/toRequires were removed in 1.19.
    "cilium/policies/auth/auth.yaml": "spec.egress[0].auth: unknown field",
    "cilium/policies/l3/requires/requires.yaml": "specs[0].ingress[0].fromRequires",
    # Calico's validator: numeric ports need the protocol TCP, UDP or SCTP (the page's example omits it).
    "calico/22-gnp-labels-foo-and-bar.yaml": "spec.ingress[0].destination.ports[0]: rules with numeric ports",
}


def problems(path: Path) -> list[str]:
    inv = load_manifests([str(path)])
    analysis = analyse(inv, Config())
    return [i.reason for i in inv.collection.invalid_objects] + ["; ".join(str(e) for e in i.errors) for i in analysis.invalid]


def test_the_examples_are_all_here():
    assert len(CILIUM) == 58 and len(CALICO) == 22


@pytest.mark.parametrize("path", CILIUM + CALICO, ids=lambda p: str(p.relative_to(UPSTREAM)))
def test_each_example_is_read_as_its_agent_reads_it(path):
    found = problems(path)
    expected = REJECTED.get(str(path.relative_to(UPSTREAM)))
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0], found


PODS = """
apiVersion: v1
kind: Namespace
metadata: {name: NS, labels: {shape: circle}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {shape: square}}
"""


def pod(ns: str, name: str, labels: dict[str, str], account: str = "default") -> str:
    text = ", ".join(f"{k}: {v}" for k, v in labels.items())
    return (f"\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{text}}}}}\n"
            f"spec: {{serviceAccountName: {account}, containers: [{{name: c, image: x, ports: [{{containerPort: 6379}}, {{containerPort: 80}}]}}]}}\n")


def verdict(example: str, ns: str, pods: str, src: str, dst: str, port: int) -> bool:
    text = (UPSTREAM / example).read_text()
    a = analyse(inventory(PODS.replace("NS", ns) + pods + "\n---\n" + text), Config())
    ((s,), (d,)) = (a.find_workload(*src.split("/")), a.find_workload(*dst.split("/")))
    return a.allowed(s, d, port).allowed


def test_cilium_l3_simple_lets_frontend_reach_backend_only():
    """examples/policies/l3/simple: endpoints with role=frontend may reach role=backend; nothing else may."""
    pods = pod("default", "be", {"role": "backend"}) + pod("default", "fe", {"role": "frontend"}) + pod("default", "x", {"role": "other"})
    example = "cilium/policies/l3/simple/l3.yaml"
    assert verdict(example, "default", pods, "default/fe", "default/be", 80)
    assert not verdict(example, "default", pods, "default/x", "default/be", 80)


def test_calico_default_deny_isolates_every_pod_of_its_namespace_both_ways():
    """Calico docs, "Create a default deny network policy": every workload in engineering, ingress and egress."""
    pods = pod("engineering", "a", {"app": "a"}) + pod("engineering", "b", {"app": "b"})
    assert not verdict("calico/01-np-default-deny-namespace.yaml", "engineering", pods, "engineering/a", "engineering/b", 80)


def test_calico_namespace_selector_admits_blue_pods_of_circle_namespaces_on_6379():
    """Calico docs, "Control traffic to/from endpoints in a namespace": ingress to color=red in production
    from color=blue pods in namespaces labelled shape=circle, TCP 6379."""
    pods = (pod("production", "red", {"color": "red"}) + pod("production", "blue", {"color": "blue"})
            + pod("other", "blue2", {"color": "blue"}))
    example = "calico/05-np-namespaceselector-ingress.yaml"
    assert verdict(example, "production", pods, "production/blue", "production/red", 6379)
    assert not verdict(example, "production", pods, "production/blue", "production/red", 80)
    assert not verdict(example, "production", pods, "other/blue2", "production/red", 6379)  # shape=square


def test_calico_service_account_names_admit_only_those_accounts():
    """Calico docs, "Limit ingress traffic for workloads by service account name": ingress to app=db
    from workloads whose service account is api-service or user-auth-service."""
    ns = "prod-engineering"
    pods = (pod(ns, "db", {"app": "db"}) + pod(ns, "api", {"app": "api"}, "api-service")
            + pod(ns, "web", {"app": "web"}, "web-service"))
    example = "calico/07-np-serviceaccount-names.yaml"
    port = 6379
    assert verdict(example, ns, pods, f"{ns}/api", f"{ns}/db", port)
    assert not verdict(example, ns, pods, f"{ns}/web", f"{ns}/db", port)
