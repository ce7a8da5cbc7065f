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
from audit.sources import manifests, slim
from audit.sources.manifests import load_manifests
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


FULL_POD = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n", "labels": {"a": "b", "pod-template-hash": "h1"}, "managedFields": [{"x": 1}],
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "web-h1", "controller": True}], "annotations": {"k": "v"}},
            "spec": {"hostNetwork": False, "volumes": [{}],
                     "containers": [{"name": "c", "env": [{"name": "SECRET", "value": "s"}], "ports": [{"containerPort": 80, "name": "h"}]}],
                     "initContainers": [{"name": "i", "ports": [{"containerPort": 9, "protocol": "UDP"}]}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "conditions": [{"type": "Ready"}]}}


def test_a_typed_pod_keeps_every_field_the_builder_reads():
    [pod] = slim.decode_list(json.dumps({"kind": "List", "items": [FULL_POD]}).encode())["items"]
    assert type(pod) is slim.Pod
    assert (pod.metadata.name, pod.metadata.namespace, pod.metadata.labels) == ("p", "n", {"a": "b", "pod-template-hash": "h1"})
    assert [(r.kind, r.name, r.controller) for r in pod.metadata.ownerReferences] == [("ReplicaSet", "web-h1", True)]
    assert [p.containerPort for c in pod.spec.containers + pod.spec.initContainers for p in c.ports] == [80, 9]
    assert (pod.status.phase, pod.status.podIP, [i.ip for i in pod.status.podIPs]) == ("Running", "10.0.0.1", ["10.0.0.1", "fd00::1"])
    assert not hasattr(pod.metadata, "managedFields") and not hasattr(pod.spec, "volumes")


def test_a_typed_pod_list_without_item_kinds_is_read_typed():
    body = json.dumps({"kind": "PodList", "apiVersion": "v1", "items": [{"metadata": {"name": "p", "managedFields": [1]}}]}).encode()
    [pod] = slim.decode_list(body)["items"]
    assert type(pod) is slim.Pod and pod.metadata.name == "p"


def outcome(read, path: Path) -> tuple:
    """What a reader makes of one file: its error line, or everything the inventory records."""
    try:
        inv = read([str(path)])
    except InputError as exc:
        return ("error", str(exc))
    c = inv.collection
    return ("read", inv.workloads, inv.namespaces, c.issues, c.notices, c.object_counts)


def variant(path: str, value: object) -> dict:
    """FULL_POD with one field set (``path`` dotted, list indexes as numbers); DELETE removes it."""
    pod = json.loads(json.dumps(FULL_POD))
    *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = pod
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return pod


DELETE = object()
VARIANTS = [
    # Read the fast way, and must give the builder's answer.
    ("status", DELETE), ("spec", DELETE), ("spec.containers.0.ports", None), ("spec.hostNetwork", True), ("spec.hostNetwork", None),
    ("status.phase", "Succeeded"), ("status.phase", "Failed"), ("status.podIPs", None), ("status.podIPs.0.ip", ""),
    ("metadata.namespace", None), ("metadata.namespace", ""), ("metadata.labels", None), ("metadata.labels", {}),
    ("metadata.ownerReferences.0.controller", "true"), ("metadata.ownerReferences.0.kind", "Node"),
    ("metadata.ownerReferences.0.kind", None), ("metadata.ownerReferences.0.name", "other"), ("metadata.ownerReferences", None),
    ("spec.containers.0.ports.0.name", None), ("spec.containers.0.ports.0.protocol", "SCTP"), ("spec.containers", None),
]
FAST = len(VARIANTS)
VARIANTS += [
    # Do not fit the types: decoded whole, the builder names the field (or reads it as it always did).
    ("spec.containers", "x"), ("spec.containers", [1]), ("spec.containers.0.ports", 5),
    ("spec.containers.0.ports", {}), ("spec.containers.0.ports.0.containerPort", "eighty"),
    ("spec.containers.0.ports.0.containerPort", 0), ("spec.containers.0.ports.0.containerPort", 70000),
    ("spec.containers.0.ports.0.containerPort", DELETE), ("spec.containers.0.ports.0.protocol", "tcp"),
    ("spec.containers.0.ports.0.protocol", None), ("spec.containers.0.ports.0.name", 5), ("spec.hostNetwork", "false"),
    ("metadata.labels", {"a": 1}), ("metadata.labels", ["a"]), ("metadata.name", ""), ("metadata.name", 5),
    ("metadata.namespace", 5), ("metadata.ownerReferences", "x"), ("metadata.ownerReferences", ["x"]),
    ("status", "x"), ("status.podIPs", [{"ip": 5}]), ("status.podIPs", "x"), ("status.podIP", 5), ("spec", []),
]


@pytest.mark.parametrize(("path", "value"), VARIANTS, ids=[f"{p}={'DELETE' if v is DELETE else v!r}" for p, v in VARIANTS])
def test_every_pod_reads_as_the_general_decoder_reads_it(path, value, tmp_path, monkeypatch):
    pods = [variant(path, value), FULL_POD | {"metadata": FULL_POD["metadata"] | {"name": "q"}}]
    path_ = tmp_path / "pods.json"
    path_.write_text(json.dumps({"kind": "List", "items": pods + pods[:1]}))  # the first pod twice: counted once

    assert outcome(load_manifests, path_) == outcome(lambda p: general(monkeypatch, p), path_)
    try:
        typed = type(slim.decode_list(path_.read_bytes())["items"][0]) is slim.Pod
    except slim.Unfit:
        typed = False
    assert typed == (VARIANTS.index((path, value)) < FAST), "the variant took the other path than its group says"


@pytest.mark.parametrize("example", ["lab-before", "lab-solution", "war-story", "mixed-cluster", "flannel"])
def test_examples_as_json_lists_read_the_same_both_ways(example, tmp_path, monkeypatch):
    docs = [d for p in sorted((EXAMPLES / example).glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    path = tmp_path / "list.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    assert load_manifests([str(path)]) == general(monkeypatch, [str(path)])


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


@pytest.mark.parametrize("example", ["lab-before", "lab-solution", "war-story", "mixed-cluster", "flannel"])
def test_yaml_pods_converted_to_typed_records_read_the_same(example, monkeypatch):
    paths = [str(EXAMPLES / example)]
    fast = load_manifests(paths)
    with monkeypatch.context() as m:
        m.setattr(slim, "typed_pod", lambda obj: None)
        assert fast == load_manifests(paths)
    docs = [d for p in sorted((EXAMPLES / example).glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    pods = [d for d in docs if d.get("kind") == "Pod"]
    assert all(type(slim.typed_pod(p)) is slim.Pod for p in pods) or not pods


@pytest.mark.parametrize(("path", "value"), VARIANTS, ids=[f"{p}={'DELETE' if v is DELETE else v!r}" for p, v in VARIANTS])
def test_every_yaml_pod_reads_as_the_dict_reader_reads_it(path, value, tmp_path, monkeypatch):
    pods = [variant(path, value), FULL_POD | {"metadata": FULL_POD["metadata"] | {"name": "q"}}]
    file = tmp_path / "pods.yaml"
    file.write_text(yaml.safe_dump_all(pods + pods[:1]))

    def dicts(paths):
        with monkeypatch.context() as m:
            m.setattr(slim, "typed_pod", lambda obj: None)
            return load_manifests(paths)

    assert outcome(load_manifests, file) == outcome(dicts, file)
