"""One declaration per kind: a kind registered from outside the package is read, evaluated, judged,
counted and granted like the built-in ones, with no other code knowing it."""

from __future__ import annotations

import importlib.util
import io
import textwrap
from collections.abc import Sequence
from pathlib import Path

from audit.engine.analysis import Analysis
from audit.engine.compiled import CompiledPeer, CompiledPolicy, CompiledPort, CompiledRule, CompiledSubject, Layer
from audit.engine.kinds import Compiled, KindDeclaration, Resource, Support, kinds, registered
from audit.engine.selection import PodSelection
from audit.engine.selectors import FieldError, parse_selector
from audit.inventory import Inventory, PolicyObject
from audit.sources.cluster import rbac_cluster_role, resources
from audit.sources.manifests import load_manifests
from tests.conftest import NOW
from tests.test_semantics import CLUSTER

ROOT = Path(__file__).resolve().parent.parent


class ToyKind:
    """A made-up kind: `spec.pods` selects pods of its namespace, `spec.from` (a list of namespace
    selectors) is what they accept on `spec.port`; anything else is denied."""

    declaration = KindDeclaration(
        "Toy", (Resource("ToyPolicy", "toy.example.com", ("v1",), "toypolicies", namespaced=True),),
        enforced_by={"toy-cni": (Support(),)}, summary="pods, from, port")

    def subject(self, obj: PolicyObject) -> PodSelection | None:
        pods, errors = parse_selector((obj.spec or {}).get("pods") if isinstance(obj.spec, dict) else None, "spec.pods")
        return None if errors else PodSelection(namespace=obj.namespace, pods=pods)

    def compile(self, objects: Sequence[PolicyObject], inventory: Inventory) -> Compiled:
        good, bad = [], []
        for obj in objects:
            spec = obj.spec if isinstance(obj.spec, dict) else {}
            pods, errors = parse_selector(spec.get("pods"), "spec.pods")
            if not isinstance(spec.get("port"), int):
                errors.append(FieldError("spec.port", "must be a number"))
            if errors:
                bad.append((obj, tuple(errors)))
                continue
            key = f"ToyPolicy/{obj.namespace}/{obj.name}"
            peers = []
            for j, raw in enumerate(spec.get("from") or []):
                sel, _errs = parse_selector(raw, f"spec.from[{j}]")
                peers.append(CompiledPeer(f"spec.from[{j}]", f"namespaces {sel}", PodSelection(namespaces=sel), selectors=((f"spec.from[{j}]", sel),)))
            rule = CompiledRule("Ingress", "Allow", "spec.from", f"{key} from", "from the listed namespaces", tuple(peers), False,
                                (CompiledPort("spec.port", ("TCP",), spec["port"]),))
            good.append(CompiledPolicy(
                "ToyPolicy", "Toy", obj.namespace, obj.name, key,
                CompiledSubject("spec.pods", f"pods {pods}", PodSelection(namespace=obj.namespace, pods=pods)),
                (rule,), ("Ingress",), (Layer("namespace", (500.0, key), "Toy", (("Ingress", (rule,)), ("Egress", ())), ("Ingress",)),),
                obj.source, obj.annotations))
        return Compiled(tuple(good), tuple(bad))


TOY = """
---
apiVersion: toy.example.com/v1
kind: ToyPolicy
metadata: {name: api-from-everywhere, namespace: prod}
spec: {pods: {matchLabels: {app: api}}, from: [{}], port: 8080}
---
apiVersion: toy.example.com/v1
kind: ToyPolicy
metadata: {name: broken, namespace: prod}
spec: {pods: {matchLabels: {app: api}}, port: eighty}
"""


def test_a_registered_kind_is_read_evaluated_judged_and_counted():
    from audit.pipeline import run_audit

    with registered(ToyKind()):
        inv = load_manifests(["-"], io.StringIO(textwrap.dedent(CLUSTER + TOY)))
        assert [(p.kind, p.name) for p in inv.policies] == [("ToyPolicy", "api-from-everywhere"), ("ToyPolicy", "broken")]
        assert dict(inv.collection.object_counts)["ToyPolicy"] == 2 and "ToyPolicy" not in dict(inv.collection.skipped_kinds)
        a = Analysis(inv)
        (web,) = a.find_workload("staging", "web")
        (api,) = a.find_workload("prod", "api")
        assert a.allowed(web, api, 8080).allowed and not a.allowed(web, api, 9090).allowed  # isolated: only 8080 passes
        assert a.assumed == {"Toy": "the CNI was not identified: these results assume it enforces them"}
        report = run_audit(inv, None, NOW)
        assert report.summary.policies_by_kind == {"ToyPolicy": 1} and report.summary.invalid_policies == 1
        by_check = {(f.check, f.kind, f.name, f.field) for f in report.findings}
        assert ("NP-PERM-003", "ToyPolicy", "api-from-everywhere", "spec.from[0]") in by_check
        assert ("NP-HYG-007", "ToyPolicy", "broken", None) in by_check
        assert {(r.kind, r.name, r.valid) for r in report.policies} == {("ToyPolicy", "api-from-everywhere", True), ("ToyPolicy", "broken", False)}
        assert ("toy.example.com", "toypolicies") in {(r.group, r.name) for r in resources()}
        assert {"apiGroups": ["toy.example.com"], "resources": ["toypolicies"], "verbs": ["get", "list"]} in rbac_cluster_role()["rules"]
    # Gone again: the same manifests now skip it as a kind the audit does not read.
    inv = load_manifests(["-"], io.StringIO(textwrap.dedent(CLUSTER + TOY)))
    assert not inv.policies and dict(inv.collection.skipped_kinds)["ToyPolicy"] == 2
    assert "Toy" not in {k.declaration.name for k in kinds()}


def test_the_readme_kind_matrix_is_written_from_the_declarations():
    spec = importlib.util.spec_from_file_location("make_kind_matrix", ROOT / "tools" / "make_kind_matrix.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert module.updated(text) == text, "run: python tools/make_kind_matrix.py"
    for kind in kinds():
        assert f"| {kind.declaration.name} |" in text
