"""Every Cilium and Calico field takes any value type without a crash: each field of each policy of
the field truth tables is replaced by every kind of wrong value, and the kinds compile it to a
policy or to errors, each naming a field in a bounded line. Then mutated policies go through a
whole scan."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from audit.cli import app
from audit.engine.kinds import kind_of
from audit.inventory import Inventory, PolicyObject, SourceRef
from audit.sources.manifests import load_manifests
from tests.test_fuzz import FUZZ, check_run, mutate, paths
from tests.test_kind_fields import CALICO, CALICO_INVALID, CILIUM, CILIUM_INVALID, CLUSTER

VALUES = [None, True, -1180591620717411303, 1.5, "", "\x1b]0;x\x07", [], {}, [1, "a", None], {"a": [1]}, "x" * 5000]


def _seeds() -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for case in CILIUM + CALICO:
        for obj in case[1]:
            found.setdefault(json.dumps(obj, sort_keys=True), obj)
    for case in CILIUM_INVALID + CALICO_INVALID:
        found.setdefault(json.dumps(case[1], sort_keys=True), case[1])
    return [o for o in found.values() if o["apiVersion"].split("/")[0] in ("cilium.io", "projectcalico.org", "crd.projectcalico.org")]


SEEDS = _seeds()
INVENTORY = load_manifests(["-"], __import__("io").StringIO(CLUSTER))


def _object(doc: dict[str, Any]) -> PolicyObject:
    meta = doc["metadata"]
    more = tuple((k, v) for k, v in sorted(doc.items()) if k not in ("apiVersion", "kind", "metadata", "spec"))
    return PolicyObject(doc["kind"], doc["apiVersion"], meta.get("namespace"), meta["name"], doc.get("spec"), (), SourceRef(), more)


def test_every_field_of_every_seed_takes_any_value_type():
    compiled = 0
    for seed in SEEDS:
        kind = kind_of(seed["apiVersion"], seed["kind"])
        assert kind is not None
        for path in paths(seed):
            if not path or path[0] not in ("spec", "specs"):
                continue
            for value in VALUES:
                doc = mutate(seed, path, "replace", value)
                obj = _object(doc)
                result = kind.compile([obj], INVENTORY)  # never raises
                kind.subject(obj)
                for _obj, errors in result.invalid:
                    assert errors and all(len(str(e)) < 1000 for e in errors), (path, value)
                compiled += 1
    assert compiled > 5_000


@FUZZ
@given(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=4), st.data())
def test_mutated_cilium_and_calico_policies_never_crash_a_scan(tmp_path_factory, policies, data):
    docs: list[Any] = [copy.deepcopy(p) for p in policies]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(docs) - 1))
        path = data.draw(st.sampled_from(paths(docs[i])))
        docs[i] = mutate(docs[i], path, data.draw(st.sampled_from(["replace", "delete", "grow"])), data.draw(st.sampled_from(VALUES)))
    folder = Path(tmp_path_factory.mktemp("fuzz"))
    (folder / "cluster.yaml").write_text(CLUSTER)
    (folder / "policies.yaml").write_text(yaml.safe_dump_all(docs, allow_unicode=True))
    for args in (["scan", str(folder), "-f", "json", "--now", "2026-11-26T00:00:00Z"], ["reach", "prod/web", "prod/api", str(folder)]):
        check_run(CliRunner().invoke(app, args))


def test_the_inventory_is_what_the_seeds_expect():
    assert isinstance(INVENTORY, Inventory) and {s.name for s in INVENTORY.services} == {"db-svc", "ext-svc"}
    assert len(SEEDS) > 60
