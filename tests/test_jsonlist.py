"""A large JSON List read in pieces (audit.sources.jsonlist) is what the whole file reads as.

The oracle is `slim.decode_list` of the whole file (itself checked against the general decoder in
test_slim), and for the manifest reader the inventory of the file read whole: the same documents,
written compact, pretty or with `json.dumps`' blanks, read in blocks from 1 byte up, give the same
items, or None (read it whole); cuts guessed inside an item or a string are never taken.
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import InputError
from audit.sources import jsonlist, manifests, slim
from audit.sources.manifests import load_manifests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import generate

TRAP = '},{"apiVersion":"v1","kind":"Pod"}'  # the compact cut, inside a string


def pod(name: str, *, typed: bool = True, owners: int = 1, trap: bool = False) -> dict:
    meta = {"name": name, "namespace": "n", "labels": {"app": name[:3]},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"rs{i}"} for i in range(owners)]}
    if trap:
        meta["annotations"] = {"note": TRAP, "other": '}, {"apiVersion": 1}'}
    body = {"metadata": meta, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 81}]}]},
            "status": {"podIP": "10.0.0.1"}}
    return {"apiVersion": "v1", "kind": "Pod", **body} if typed else body


def dump(document: dict, style: str) -> bytes:
    if style == "compact":
        return json.dumps(document, separators=(",", ":")).encode()
    if style == "pretty":
        return json.dumps(document, indent=4).encode()
    return json.dumps(document).encode()


def streamed(body: bytes, chunk: int) -> dict | None:
    got = jsonlist.read_list(io.BytesIO(body), chunk)
    return None if got is None else got.document


def whole(body: bytes) -> dict | None:
    try:
        return slim.decode_list(body)
    except slim.Unfit:
        return None


def pieces(monkeypatch: pytest.MonkeyPatch, body: bytes, chunk: int) -> list[tuple[int, bool]]:
    """Each piece tried: its size and whether it decoded, as pods at once or item by item (the last:
    the head and the rest)."""
    tried: list[tuple[int, bool]] = []
    envelope, pods = slim.decode_envelope, slim.decode_pods

    def by_item(text: bytes):
        try:
            decoded = envelope(text)
        except slim.Unfit:
            tried.append((len(text), False))
            raise
        tried.append((len(text), True))
        return decoded

    def at_once(text: bytes, typed: bool | None):
        decoded = pods(text, typed)
        if decoded is not None:
            tried.append((len(text), True))
        return decoded

    monkeypatch.setattr(slim, "decode_envelope", by_item)
    monkeypatch.setattr(slim, "decode_pods", at_once)
    assert jsonlist.read_list(io.BytesIO(body), chunk) is not None
    return tried


documents = st.builds(
    lambda kind, kind_first, names, untyped, owners, trap, other: (
        ({"kind": kind} if kind_first and kind else {})
        | {"apiVersion": "v1", "metadata": {"resourceVersion": "7"}}
        | {"items": [pod(n, typed=not (untyped and i % 2), owners=owners, trap=trap and i == 1) for i, n in enumerate(names)]
           + ([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"items": "[1]"}}] if other else [])}
        | ({"kind": kind} if not kind_first and kind else {})),
    st.sampled_from(["List", "PodList", "ConfigMapList", None]), st.booleans(),
    st.lists(st.sampled_from(["web", "api", "db", "cache"]), max_size=6), st.booleans(), st.integers(0, 3), st.booleans(),
    st.booleans())


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from(["compact", "pretty", "spaced"]), st.sampled_from([1, 2, 7, 64, 300, 1 << 20]))
def test_any_list_reads_in_pieces_as_it_reads_whole(document, style, chunk):
    body = dump(document, style)
    got = streamed(body, chunk)
    expected = whole(body)
    if document.get("kind") in (None, "ConfigMapList") or not document["items"]:
        assert got == expected  # None for a document that is no List; the same for one
    else:
        assert got is not None and got == expected
        assert [type(i) for i in got["items"]] == [type(i) for i in expected["items"]]


@settings(max_examples=150, deadline=None)
@given(documents, st.sampled_from(["compact", "pretty"]), st.sampled_from([1, 7, 300, 1 << 20]))
def test_a_reducer_gets_every_typed_pod_and_nothing_else(document, style, chunk):
    body = dump(document, style)
    batches: list[int] = []

    def reduce(pods):
        batches.append(len(pods))
        assert all(type(p) is slim.Pod for p in pods)
        return [("reduced", p) for p in pods]

    got = jsonlist.read_list(io.BytesIO(body), chunk, reduce=reduce)
    expected = whole(body)
    if got is None:
        assert expected is None or document.get("kind") in (None, "ConfigMapList") or not document["items"]
        return
    assert expected is not None
    assert got.document["items"] == [("reduced", i) if type(i) is slim.Pod else i for i in expected["items"]]
    assert sum(batches) == sum(type(i) is slim.Pod for i in expected["items"])


@pytest.mark.parametrize("style", ["compact", "pretty", "spaced"])
def test_a_big_list_is_decoded_a_piece_at_a_time(style, monkeypatch):
    items = [pod(f"p{i}", owners=i % 3, trap=i % 5 == 0) for i in range(200)]
    body = dump({"apiVersion": "v1", "kind": "List", "items": items}, style)
    tried = pieces(monkeypatch, body, 4096)
    decoded = [size for size, ok in tried if ok]
    assert len(decoded) > len(body) // 8192, "the items were decoded in pieces"
    assert max(decoded) < 2 * 4096, "no piece longer than a block and an item"
    assert streamed(body, 4096) == whole(body)
    assert len(streamed(body, 4096)["items"]) == 200


def test_a_wrong_cut_is_tried_refused_and_one_before_it_taken(monkeypatch):
    """An owner reference starts as a pod does (`},{"apiVersion":`): a block ending after one ends
    inside a pod, the cut there cannot decode, and the one before it (between two pods) is taken."""
    body = dump({"kind": "PodList", "apiVersion": "v1", "items": [pod(n, owners=3) for n in "abcdef"]}, "compact")
    inner = body.index(b'},{"apiVersion":"apps/v1"', body.index(b'"name":"c","namespace"'))  # in the third pod
    tried = pieces(monkeypatch, body, inner + 20)
    head = len(b'{"kind":"PodList","apiVersion":"v1","items":[')
    assert tried[0] == (len(b'{"items":[]}') + inner + 1 - head, False), "the last cut held, inside the pod, refused"
    between = body.rindex(b'},{"apiVersion":"v1"', 0, inner)
    assert tried[1] == (len(b'{"items":[]}') + between + 1 - head, True), "the one before it, between two pods, taken"
    assert streamed(body, inner + 20) == whole(body) and len(streamed(body, inner + 20)["items"]) == 6


def test_kubectl_output_is_cut_at_the_items_indentation_only(monkeypatch):
    """kubectl sorts keys: managedFields entries and owner references start with "apiVersion" as
    pods do, one indentation further in. Only cuts at the items' own indentation are tried."""
    fields = [{"apiVersion": "v1", "manager": m, "operation": "Update"} for m in ("kubelet", "kube-controller-manager", "x")]
    items = [pod(f"p{i}", owners=2) for i in range(100)]
    for item in items:
        item["metadata"]["managedFields"] = fields
    body = json.dumps({"apiVersion": "v1", "items": items, "kind": "List"}, indent=4, sort_keys=True).encode()
    assert len(re.findall(rb'\},\s*\{\s*"apiVersion"', body)) >= 99 + 300, "nested objects that start like a pod"
    tried = pieces(monkeypatch, body, 3000)
    assert all(ok for _, ok in tried) and len(tried) > 20, "no cut tried inside a pod"
    assert streamed(body, 3000) == whole(body)


def test_items_whose_blanks_differ_from_the_first_are_still_cut(monkeypatch):
    """Pretty items whose first one is indented unlike the rest: once much is held without a cut at
    its indentation, cuts with any blanks are looked for."""
    body = dump({"kind": "List", "items": [pod(f"p{i}") for i in range(60)]}, "pretty").replace(b'"items": [\n        {', b'"items": [\n  {', 1)
    monkeypatch.setattr(jsonlist, "_LOOSE_FROM", 2000)
    tried = pieces(monkeypatch, body, 1000)
    assert len([ok for _, ok in tried if ok]) > 10 and streamed(body, 1000) == whole(body)


def test_no_cut_lies_in_a_string():
    """In JSON a string's quotes are escaped, so `},{"key":` as text is never a cut; read the same."""
    body = dump({"kind": "List", "items": [pod("a", trap=True), pod("b", trap=True)]}, "compact")
    assert b'},{\\"apiVersion\\"' in body and streamed(body, 3) == whole(body)


def test_items_without_kind_are_pods_in_a_podlist_whose_kind_comes_last():
    items = [pod("a", typed=False), pod("b"), pod("c", typed=False)]
    for kind, typed in (("PodList", True), ("List", False)):
        body = dump({"apiVersion": "v1", "items": items, "kind": kind}, "compact")
        got = streamed(body, 16)
        assert got == whole(body)
        assert [type(i) is slim.Pod for i in got["items"]] == [typed, True, typed]


@pytest.mark.parametrize("body", [
    b'{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}},',  # cut short
    b'{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}]} x',  # text after it
    b'{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}],"items":[]}',  # items twice
    b'{"kind":"List","kind":"PodList","items":[]}',  # kind twice
    b'{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"x":NaN}]}',
    b'{"metadata":{"items":[]},"kind":"List","items":[{"apiVersion":"v1","kind":"Pod"}]}',  # items nested first
    b'{"kind":"ConfigMap","items":[{"apiVersion":"v1","kind":"Pod"}]}',  # not a List
    b'{"kind":"List","items":[1,2]}', b'{"kind":"List"}', b'[]', b'',
    b'\xef\xbb\xbf{"kind":"List","items":[]}', b'{"kind":"List","items":[{"apiVersion":"v1","kind":"\xff"}]}',
    b'{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"ports":[{"containerPort":0}]}]}}]}',
])
@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_what_it_does_not_take_is_read_whole(body, chunk):
    assert streamed(body, chunk) is None


def test_nesting_counts_as_in_the_whole_document():
    """msgspec refuses JSON nested past its limit: a piece nests its items as deep as the file does."""
    for depth in range(990, 1003):
        deep = b'{"apiVersion":"v1","kind":"ConfigMap","data":' + b"[" * depth + b"]" * depth + b"}"
        body = b'{"kind":"List","items":[' + deep + b"," + deep + b"]}"
        assert streamed(body, 64) == whole(body), depth
    assert whole(body) is None, "past the limit: read whole, by the general decoder"


def test_a_list_read_to_its_end_when_no_cut_is_found():
    items = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}} for i in range(50)]
    body = dump({"kind": "List", "items": items}, "compact").replace(b'},{"apiVersion"', b'}\n,\n{"apiVersion"')
    assert streamed(body, 10) == whole(body)
    assert streamed(b'{"kind":"List","items":[{}]}', 5) == whole(b'{"kind":"List","items":[{}]}') == {"kind": "List", "items": [{}]}
    head_far = b'{"metadata":{"x":"' + b"y" * (2 * jsonlist.HEAD_LIMIT) + b'"},"kind":"List","items":[]}'
    assert streamed(head_far, 1 << 16) is None and whole(head_far) == {"kind": "List", "items": []}


def test_the_manifest_reader_reads_large_files_in_pieces(tmp_path, monkeypatch):
    paths = [str(p) for p in generate.write(generate.generate("S", fat=True), tmp_path)]
    expected = load_manifests(paths)
    monkeypatch.setattr(manifests, "STREAM_FROM", 0)
    monkeypatch.setattr(jsonlist, "CHUNK", 1 << 12)
    calls: list[int] = []
    real = jsonlist.read_list
    monkeypatch.setattr(jsonlist, "read_list", lambda stream, chunk=1 << 12, **kw: calls.append(1) or real(stream, chunk, **kw))
    assert load_manifests(paths) == expected  # the objects, the digests and the sizes
    assert len(calls) == len(paths)


def test_a_large_file_read_whole_says_what_it_always_said(tmp_path, monkeypatch):
    path = tmp_path / "bad.json"
    path.write_text('{"kind": "List",\n "items": [}')
    monkeypatch.setattr(manifests, "STREAM_FROM", 0)
    with pytest.raises(InputError, match=r"bad.json: document 1 \(line 2, column \d+\): invalid JSON"):
        load_manifests([str(path)])
    path.write_text('{"kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},'
                    ' "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 0}]}]}}]}')
    [issue] = load_manifests([str(path)]).collection.issues
    assert "items[0] (line 1) Pod p: spec.containers[0].ports[0].containerPort: 0 is out of range" in issue.reason
    deep = '{"kind": "List", "items": [' + "[" * 1100 + "]" * 1100 + "]}"
    path.write_text(deep)
    with pytest.raises(InputError, match=r"bad.json: document 1 \(line 1, column \d+\): invalid JSON"):
        load_manifests([str(path)])


def test_an_unreadable_large_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(manifests, "STREAM_FROM", 0)
    path = tmp_path / "gone.json"
    path.mkdir()
    monkeypatch.setattr(manifests, "expand_paths", lambda paths: [str(path)])
    with pytest.raises(InputError, match=r"gone.json: cannot read"):
        load_manifests([str(path)])


MISSING = object()


@pytest.mark.parametrize("kind", [MISSING, None, "Pod", "Service", 5])
@pytest.mark.parametrize("version", [MISSING, None, "v1", "v2"])
@pytest.mark.parametrize("typed_pods", [True, False, None])
def test_pods_at_once_are_what_item_by_item_makes_of_them(kind, version, typed_pods):
    item = pod("a", typed=False) | ({} if kind is MISSING else {"kind": kind}) | ({} if version is MISSING else {"apiVersion": version})
    piece = json.dumps({"items": [pod("b"), item]}).encode()
    one_by_one = [slim.decode_item(raw, typed_pods) for raw in slim.decode_envelope(piece)["items"]]
    at_once = slim.decode_pods(piece, typed_pods)
    if all(type(i) is slim.Pod for i in one_by_one):
        assert at_once == one_by_one
    else:
        assert at_once is None  # then item by item
    assert slim.decode_pods(b'{"items":[{"kind":"Pod","apiVersion":"v1","metadata":{"name":""}}]}', True) is None
    assert slim.decode_pods(b'{"items":[]}', None) == []


@pytest.mark.parametrize("style", ["compact", "pretty", "spaced"])
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_pieces_stay_small_whatever_the_blocks(style, chunk, monkeypatch):
    """The head found a byte at a time, each piece about a block and an item: the memory bound."""
    items = [pod(f"p{i}", owners=i % 3) for i in range(40)]
    body = dump({"kind": "List", "apiVersion": "v1", "items": items}, style)  # the List's first key is not its items'
    largest = max(len(dump(i, style)) for i in items)
    decoded = [size for size, ok in pieces(monkeypatch, body, chunk) if ok]
    assert len(decoded) >= 40 * 1 // max(1, chunk // largest + 1) // 2, "cut as the file is read"
    assert max(decoded[:-1]) < chunk + 2 * largest + 64, "no piece longer than a block and an item"


def test_items_larger_than_the_window_are_still_cut(monkeypatch):
    monkeypatch.setattr(jsonlist, "_WINDOW", 128)
    items = [pod(f"p{i}") | {"spec": {"containers": [{"name": f"c{j}"} for j in range(40)]}} for i in range(30)]
    body = dump({"kind": "List", "items": items}, "spaced")
    assert len(dump(items[0], "spaced")) > 4 * 128
    decoded = [size for size, ok in pieces(monkeypatch, body, 3000) if ok]
    assert len(decoded) >= 8 and max(decoded[:-1]) < 3000 + 2 * len(dump(items[0], "spaced")) + 64
    assert streamed(body, 3000) == whole(body)


class Head(io.BytesIO):
    """A stream that fails a test if read past its first ``limit`` bytes: what is given up early."""

    def __init__(self, body: bytes, limit: int):
        super().__init__(body)
        self.limit = limit

    def read(self, size: int | None = -1) -> bytes:
        assert self.tell() < self.limit, "read on after the head said no"
        return super().read(size)


@pytest.mark.parametrize("head", [b'{"kind":"ConfigMap","items":[', b'{"kind":5,"items":[', b'{"kind":"List","items":[1,'])
def test_what_the_head_refuses_is_not_read_on(head):
    body = head + b" " * 100_000 + b"]}"
    assert jsonlist.read_list(Head(body, len(head) + 64), 64) is None


def test_an_item_with_a_kind_and_no_apiversion_waits_for_the_lists_kind():
    item = pod("a", typed=False) | {"kind": "Pod"}
    for kind, typed in (("PodList", True), ("List", False)):
        body = dump({"apiVersion": "v1", "items": [pod("b"), item, pod("c")], "kind": kind}, "compact")
        got = streamed(body, 50)  # cut after it: decoded before the List's kind is read
        assert got == whole(body) and [type(i) is slim.Pod for i in got["items"]] == [True, typed, True]


def _varied_pods() -> list[dict]:
    """Pods that exercise every fact the builder keeps: finished, repeated, init and several
    containers, hostNetwork, both service account fields, podIPs or podIP, owners of each shape."""
    def one(name, **over):
        body = pod(name)
        body["metadata"]["ownerReferences"] = over.pop("owners", [{"kind": "ReplicaSet", "name": "web-5d8f", "controller": True}])
        body["metadata"]["labels"] = over.pop("labels", {"app": "web", "pod-template-hash": "5d8f"})
        body["spec"].update(over.pop("spec", {}))
        body["status"] = over.pop("status", {"podIP": "10.0.0.1"})
        return body

    return [
        one("a", status={"phase": "Running", "podIPs": [{"ip": "10.0.0.2"}, {"ip": "fd00::2"}]}),
        one("b", status={"phase": "Succeeded", "podIP": "10.0.0.3"}),
        one("c", status={"phase": "Failed"}),
        one("a"),  # read twice: counted once
        one("d", spec={"initContainers": [{"name": "i", "ports": [{"containerPort": 9000, "protocol": "UDP", "name": "x"}]}],
                       "containers": [{"name": "c1", "ports": [{"containerPort": 80}]}, {"name": "c2"}], "hostNetwork": True,
                       "serviceAccount": "old"}),
        one("e", spec={"serviceAccountName": "new", "serviceAccount": "old"}, owners=[{"kind": "Node", "name": "n1", "controller": True}]),
        one("f", owners=[{"kind": "StatefulSet", "name": "db", "controller": True}, {"kind": "X", "name": "y"}], labels={}),
        one("g", owners=[{"name": "nameless", "controller": True}], labels=None, status={"podIP": None, "podIPs": [{"ip": None}]}),
        one("h", owners=[], spec={"containers": None}),
        one("i", spec={"containers": [{"name": "c1", "ports": [{"containerPort": 80}]},
                                      {"name": "c2", "ports": [{"containerPort": 9090, "name": "metrics"}]}]}),
        one("j", spec={"initContainers": [{"name": "i", "ports": [{"containerPort": 7000}]}]}),  # and its one container
        {k: v for k, v in one("k").items() if k != "spec"},
    ]


@pytest.mark.parametrize("mixed", [False, True])
def test_pods_reduced_in_pieces_are_the_pods_read_whole(tmp_path, monkeypatch, mixed):
    items = _varied_pods()
    if mixed:  # another kind among them: the items go one by one, the pods as facts
        items.insert(2, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "n"},
                         "spec": {"podSelector": {}}})
    path = tmp_path / "pods.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
    expected = load_manifests([str(path)])  # small: read whole
    monkeypatch.setattr(manifests, "STREAM_FROM", 0)
    monkeypatch.setattr(jsonlist, "CHUNK", 256)
    got = load_manifests([str(path)])
    assert got == expected
    assert got.collection.notices == expected.collection.notices and any("has finished (Succeeded)" in n for n in got.collection.notices)
    assert sum(w.pods for w in got.workloads) == 9 and len(got.policies) == int(mixed)


def test_reducing_pods_changes_nothing_the_inventory_shows():
    from audit.inventory import Collection
    from audit.sources.objects import InventoryBuilder

    body = json.dumps({"apiVersion": "v1", "kind": "PodList", "items": _varied_pods()}).encode()
    pods = [i for i in slim.decode_list(body)["items"] if type(i) is slim.Pod]
    builder = InventoryBuilder()
    facts = builder.pod_facts(pods)
    collection = Collection(source="manifests", inputs=(), input_digests=())
    assert len(facts) == len(pods) and builder.build(collection) == InventoryBuilder().build(collection)


@pytest.mark.parametrize("in_pieces", [False, True])
def test_pods_reduced_typed_are_what_the_general_reader_makes_of_them(tmp_path, monkeypatch, in_pieces):
    """The oracle reads the same file without the typed path (each pod a dict, `_add_pod`), so
    `pod_facts` is judged by other code than its own: service accounts, several containers, addresses."""
    from tests.test_slim import general

    path = tmp_path / "pods.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": _varied_pods()}))
    expected = general(monkeypatch, [str(path)])
    if in_pieces:
        monkeypatch.setattr(manifests, "STREAM_FROM", 0)
        monkeypatch.setattr(jsonlist, "CHUNK", 256)
    got = load_manifests([str(path)])
    assert got == expected
    accounts = {n: w.service_account for w in got.workloads for n in w.pod_names}
    ports = {n: sorted(p.port for p in w.ports) for w in got.workloads for n in w.pod_names}
    assert accounts["d"] == "old" and accounts["e"] == "new" and ports["i"] == [80, 9090] and ports["d"] == [80, 9000]
    assert ports["j"] == [80, 81, 7000] and ports["k"] == []
    assert not any(w.host_network for w in got.workloads if "k" in w.pod_names)
    assert "1 pod(s) were read twice and counted once" in got.collection.notices
