"""YAML as kubectl and the API server read it, with the bounds an untrusted input needs."""

from __future__ import annotations

from typing import Any

import yaml

MAX_EXPANDED_NODES = 1_000_000
"""A document whose aliases expand it past this many nodes, and past ALIAS_GROWTH times its own
size, is refused (a YAML "billion laughs"); a large document without aliases is fine."""
ALIAS_GROWTH = 10
EXCERPT = 160
"""Characters of input quoted at most in an error message."""


class KubeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML read as kubectl and the API server read it: dates stay strings (`2024-13-45` is
    text, not an invalid date), keys become JSON's strings (`1: a` is the key "1", as
    sigs.k8s.io/yaml converts it), a key given twice is an error (strict decoding), and
    constructor failures (`!!float "abc"`) are errors of the document, not of the tool."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, f"a mapping key must be a scalar, got {type(key).__name__}",
                                                        key_node.start_mark) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {excerpt(key)!s}", key_node.start_mark)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        if all(type(k) is str for k in mapping):
            return mapping
        converted = {_json_key(k): v for k, v in mapping.items()}
        if len(converted) != len(mapping):
            raise yaml.constructor.ConstructorError(None, None, "two keys become the same JSON key", node.start_mark)
        return converted


def _json_key(key: Any) -> str:
    """A mapping key as YAML-to-JSON conversion writes it (sigs.k8s.io/yaml)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, (int, float, str)):
        return str(key)
    raise yaml.constructor.ConstructorError(None, None, f"a mapping key must be a scalar, got {type(key).__name__}", None)


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


KubeLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
KubeLoader.add_constructor("tag:yaml.org,2002:map", KubeLoader.construct_mapping)


def excerpt(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= EXCERPT else text[:EXCERPT] + f"... ({len(text)} characters)"


def alias_bomb(node: yaml.Node) -> bool:
    """Whether aliases blow the document up: expanded past MAX_EXPANDED_NODES and ALIAS_GROWTH times its size."""
    sizes: dict[int, int] = {}
    expanded = _expanded_size(node, MAX_EXPANDED_NODES * ALIAS_GROWTH, sizes)
    return expanded > MAX_EXPANDED_NODES and expanded > ALIAS_GROWTH * len(sizes)


def _expanded_size(node: yaml.Node, limit: int, sizes: dict[int, int]) -> int:
    """How many nodes a document holds with every alias expanded (stops counting past ``limit``);
    ``sizes`` ends up holding one entry per distinct node."""

    def size(n: yaml.Node) -> int:
        hit = sizes.get(id(n))
        if hit is not None:
            return hit
        sizes[id(n)] = limit + 1  # a cycle (recursive alias) counts as too large
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in n.value)
        else:
            total = 1
        sizes[id(n)] = total = min(total, limit + 1)
        return total

    try:
        return size(node)
    except RecursionError:  # nesting deeper than the interpreter allows: refuse it too
        return limit + 1
