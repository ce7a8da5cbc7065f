"""Schema-directed decoding (audit.sources.slim) changes no answer and no message.

The oracle is the general decoder (orjson, every field): the same files read both ways give
equal inventories, for pods as `kubectl get -o json` returns them (managedFields, env, probes,
status) and for every example; a document whose structure does not fit the slim shapes is
decoded the general way, so its error names the same object and field as before.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from audit.errors import InputError
from audit.inventory import Collection, SourceRef
from audit.sources import manifests, slim
from audit.sources.manifests import load_manifests
from audit.sources.objects import InventoryBuilder
from tests.conftest import EXAMPLES

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import generate


def general(monkeypatch: pytest.MonkeyPatch, paths: list[str]):
    """The same files read with the fast path turned off: the oracle."""
    with monkeypatch.context() as m:
        m.setattr(slim, "decode_list", lambda body: None)
        return load_manifests(paths)


def test_fat_pods_decode_to_the_same_inventory(tmp_path, monkeypatch):
    paths = [str(p) for p in generate.write(generate.generate("S", fat=True), tmp_path)]
    pods = json.loads((tmp_path / "pods.json").read_text())["items"]
    fat = [p for p in pods if "managedFields" in p["metadata"] and p["status"].get("containerStatuses")]
    assert len(fat) > 0.9 * len(pods), "the fixture must be fat"
    fast = load_manifests(paths)
    assert fast == general(monkeypatch, paths)
    assert dict(fast.collection.object_counts)["Pod"] == len(pods) and any(w.ips for w in fast.workloads)


def test_slim_pods_keep_every_field_the_builder_reads_and_drop_the_rest():
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"}, "managedFields": [{"x": 1}],
                        "ownerReferences": [{"kind": "ReplicaSet", "name": "r", "controller": True}], "annotations": {"k": "v"}},
           "spec": {"hostNetwork": False, "volumes": [{}],
                    "containers": [{"name": "c", "env": [{"name": "SECRET", "value": "s"}], "ports": [{"containerPort": 80, "name": "h"}]}],
                    "initContainers": [{"name": "i", "ports": [{"containerPort": 9}]}]},
           "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}], "conditions": [{"type": "Ready"}]}}
    [got] = slim.decode_list(json.dumps({"kind": "List", "items": [pod]}).encode())["items"]
    assert got == {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"},
                                "ownerReferences": [{"kind": "ReplicaSet", "name": "r", "controller": True}]},
                   "spec": {"hostNetwork": False, "containers": [{"ports": [{"containerPort": 80, "name": "h"}]}],
                            "initContainers": [{"ports": [{"containerPort": 9}]}]},
                   "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]}}
    # The builder reads the slim pod exactly as it reads the whole one.
    whole, thin = InventoryBuilder(), InventoryBuilder()
    whole.add(pod, SourceRef(), "x")
    thin.add(got, SourceRef(), "x")
    assert whole.build(Collection(source="manifests")).workloads == thin.build(Collection(source="manifests")).workloads


def test_a_typed_pod_list_without_item_kinds_is_read_slim():
    body = json.dumps({"kind": "PodList", "apiVersion": "v1", "items": [{"metadata": {"name": "p", "managedFields": [1]}}]}).encode()
    assert slim.decode_list(body)["items"] == [{"metadata": {"name": "p"}}]


@pytest.mark.parametrize("example", ["lab-before", "lab-solution", "war-story", "mixed-cluster", "flannel"])
def test_examples_as_json_lists_read_the_same_both_ways(example, tmp_path, monkeypatch):
    docs = [d for p in sorted((EXAMPLES / example).glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    path = tmp_path / "list.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    assert load_manifests([str(path)]) == general(monkeypatch, [str(path)])


@pytest.mark.parametrize("containers", ['"x"', "null", '[1]', '[{"ports": 5}]', '[{"ports": [{"containerPort": "eighty"}]}]'])
def test_a_pod_that_does_not_fit_gives_the_general_decoders_message(containers, tmp_path, monkeypatch):
    path = tmp_path / "pods.json"
    path.write_text('{"kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},'
                    f' "spec": {{"containers": {containers}}}}}]}}')

    def outcome(read):
        try:
            inv = read([str(path)])
        except InputError as exc:
            return ("error", str(exc))
        return ("read", inv.collection.issues, inv.workloads)

    assert outcome(load_manifests) == outcome(lambda p: general(monkeypatch, p))


def test_invalid_json_still_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"kind": "List",\n "items": [}')
    with pytest.raises(InputError, match=r"bad.json: document 1 \(line 2, column \d+\): invalid JSON"):
        load_manifests([str(path)])


def test_the_manifest_reader_uses_the_fast_path(monkeypatch, tmp_path):
    """Guard: the JSON reader goes through slim.decode_list (else the tests above compare a path with itself)."""
    calls = []
    monkeypatch.setattr(slim, "decode_list", lambda body: calls.append(len(body)))
    path = tmp_path / "l.json"
    path.write_text('{"kind": "List", "items": []}')
    load_manifests([str(path)])
    assert calls and manifests.slim is slim
