"""Manifest source: YAML and JSON files, folders and stdin, as CI renders them."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml

from audit.errors import InputError
from audit.gcpause import gc_paused
from audit.inventory import Collection, Inventory, SourceRef
from audit.sources import jsonlist, slim
from audit.sources.objects import InventoryBuilder, PodFacts
from audit.yaml_loader import MAX_EXPANDED_NODES, KubeLoader, alias_bomb, excerpt

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STREAM_FROM = 32 << 20
"""JSON files this large are read in pieces (`audit.sources.jsonlist`), not held whole."""

def expand_paths(paths: Sequence[str]) -> list[str]:
    """Files in the order given; folders recursively, sorted; ``-`` is stdin."""
    files: list[str] = []
    for raw in paths:
        if raw == "-":
            files.append("-")
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES)
            if not found:
                raise InputError(f"{raw}: no .yaml, .yml or .json files in this folder")
            files.extend(str(p) for p in found)
        elif path.is_file():
            files.append(str(path))
        else:
            raise InputError(f"{raw}: no such file or folder")
    return files


def _yaml_documents(text: str, name: str) -> Iterator[tuple[int, int, Any, list[int]]]:
    """Yield (document number, line, object, line of each List item) from a YAML stream."""
    loader = KubeLoader(text)
    number = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            number += 1
            if node is None:
                continue
            if alias_bomb(node):
                raise InputError(f"{name}: document {number} (line {node.start_mark.line + 1}): YAML aliases expand to more than "
                                 f"{MAX_EXPANDED_NODES:,} nodes: refused")
            try:
                data = loader.construct_document(node)
            except (ValueError, TypeError, OverflowError) as exc:
                raise InputError(f"{name}: document {number}: invalid value: {excerpt(str(exc))}") from None
            yield number, node.start_mark.line + 1, data, _item_lines(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        current = number if isinstance(exc, yaml.constructor.ConstructorError) else number + 1
        raise InputError(f"{name}: document {current}{where}: invalid YAML: {excerpt(problem)}") from None
    finally:
        loader.dispose()


def _item_lines(node: yaml.Node) -> list[int]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "items" and isinstance(value, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value.value]
    return []


def _json_documents(text: str | bytes, name: str) -> Iterator[tuple[int, int, Any, list[int]]]:
    try:  # a List (kubectl get -o json): pods decoded slim (audit.sources.slim), the rest whole
        slim_list = slim.decode_list(text.encode() if isinstance(text, str) else text)
    except slim.Unfit:
        slim_list = None  # not that shape, or not valid JSON: the general decoder says which
    if slim_list is not None:
        yield 1, 1, slim_list, []
        return
    try:
        data = orjson.loads(text)
    except json.JSONDecodeError as exc:  # orjson's error is a json.JSONDecodeError
        raise InputError(f"{name}: document 1 (line {exc.lineno}, column {exc.colno}): invalid JSON: {exc.msg}") from None
    yield 1, 1, data, []


def _read(name: str, stdin: TextIO | None) -> str | bytes:
    if name == "-":
        return (stdin or sys.stdin).read()
    try:
        if name.endswith(".json"):
            return Path(name).read_bytes()  # orjson parses bytes; decoding first would only cost time
        return Path(name).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from None


def load_manifests(paths: Sequence[str], stdin: TextIO | None = None) -> Inventory:
    """Read manifests into an Inventory; malformed input raises InputError naming file and document."""
    builder = InventoryBuilder()
    files = expand_paths(paths)
    digests = []
    with gc_paused():
        for name in files:
            digests.append(_load_file(builder, name, stdin))
    return builder.build(Collection(source="manifests", inputs=tuple("<stdin>" if f == "-" else f for f in files),
                                    input_digests=tuple(digests)))


def _load_file(builder: InventoryBuilder, name: str, stdin: TextIO | None) -> tuple[str, str, int]:
    """Add every object of one file (or stdin) to the builder; the file's (name, SHA-256, size)."""
    display = "<stdin>" if name == "-" else name
    streamed = _read_in_pieces(name, builder.pod_facts) if name.endswith(".json") else None
    if streamed is not None:
        _add_documents(builder, display, iter([(1, 1, streamed.document, [])]), is_json=True)
        return display, streamed.sha256, streamed.size
    text = _read(name, stdin)
    raw = text.encode("utf-8") if isinstance(text, str) else text
    digest = (display, hashlib.sha256(raw).hexdigest(), len(raw))
    is_json = name.endswith(".json") or (isinstance(text, str) and name == "-" and text.lstrip().startswith("{"))
    docs = _json_documents(text, display) if is_json else _yaml_documents(text if isinstance(text, str) else text.decode(), display)
    _add_documents(builder, display, docs, is_json)
    return digest


def _read_in_pieces(name: str, reduce: Callable[[list[slim.Pod]], list[Any]]) -> jsonlist.Streamed | None:
    """A large JSON List read piece by piece, its pods reduced by ``reduce`` as they are decoded;
    None for a small file or one to read whole."""
    try:
        with open(name, "rb") as stream:
            if os.fstat(stream.fileno()).st_size < STREAM_FROM:
                return None
            return jsonlist.read_list(stream, reduce=reduce)
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from None


def _add_documents(builder: InventoryBuilder, display: str, docs: Iterator[tuple[int, int, Any, list[int]]],
                   is_json: bool) -> None:
    for number, line, data, item_lines in docs:
        if data is None:
            continue
        where = f"{display}: document {number} (line {line})"
        if not _is_object(data):
            # A values file, a package.json, a tool's output: not for the API server, so not for us.
            builder.notices.append(f"{where}: not a Kubernetes object (no apiVersion and kind); skipped")
            continue
        items = _list_items(data, where)
        if items is None:
            builder.add(data if is_json else slim.typed_pod(data) or data, SourceRef(display, number, line), where)
            continue
        item_kind, item_version = _item_type(data)
        ref = SourceRef(display, number, line)  # shared by the items that start on the document's line (JSON read in pieces)
        if not item_lines and all(type(item) is PodFacts for item in items):
            builder.add_pod_facts(items, ref)  # a JSON pod list read in pieces: every item reduced, on the document's line
            continue
        for i, item in enumerate(items):
            item_line = item_lines[i] if i < len(item_lines) else line
            if item_kind and type(item) is dict and ("kind" not in item or "apiVersion" not in item):
                # As the API server lists them (`kubectl get --raw`, client dumps): the List names the type.
                item = {"kind": item_kind, "apiVersion": item_version, **item}
            if not is_json:  # JSON Lists arrive typed already (decode_list); YAML is converted here
                item = slim.typed_pod(item) or item
            builder.add(item, ref if item_line == line else SourceRef(display, number, item_line), f"{where} items[{i}] (line {item_line})")


def _is_object(data: Any) -> bool:
    """Whether a document is meant as a Kubernetes object: a mapping with apiVersion or kind."""
    return isinstance(data, Mapping) and ("kind" in data or "apiVersion" in data)


def _item_type(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(kind, apiVersion) of a typed List's items: a PodList holds v1 Pods, a DeploymentList apps/v1
    Deployments; a plain List says nothing about its items."""
    kind, version = data.get("kind"), data.get("apiVersion")
    if not isinstance(kind, str) or kind == "List" or not kind.endswith("List"):
        return None, None
    return kind[: -len("List")], version if isinstance(version, str) and version else "v1"


def _list_items(data: Any, where: str) -> list[Any] | None:
    """The items of a ``List``/``*List`` wrapper as kubectl writes it, or None for one object."""
    if not isinstance(data, Mapping):
        return None
    kind = data.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in data:
        items = data.get("items") or []
        if not isinstance(items, list):
            raise InputError(f"{where}: items: must be a list")
        return items
    return None
