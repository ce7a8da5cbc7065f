"""Every policy kind, NetworkPolicy included, behind one protocol (``audit.engine.kinds.base``).

A kind is one module: its declaration (API resources, which dataplanes enforce it) and a
compiler from its raw objects to the compiled model. Adding a kind is one module and one line
in ``_MODULES``; the manifest reader, the live resource list, RBAC, counts and the README's
matrix all read the declarations from here.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

from audit.engine.kinds.base import Compiled, Enforcement, KindDeclaration, PolicyKind, Resource, Support, group_of

__all__ = ["Compiled", "Enforcement", "KindDeclaration", "PolicyKind", "Resource", "Support", "group_of", "kind_of", "kinds", "registered",
           "resource_of", "resources"]

_MODULES = ("networkpolicy", "admin", "clusternetwork", "cilium", "calico")
_extra: list[PolicyKind] = []
_memo: dict[tuple[int, ...], dict[tuple[str, str], tuple[PolicyKind, Resource]]] = {}


def kinds() -> tuple[PolicyKind, ...]:
    """The registered kinds, NetworkPolicy first."""
    found = tuple(importlib.import_module(f"{__name__}.{m}").KIND for m in _MODULES)
    return found + tuple(_extra)


def resources() -> tuple[tuple[PolicyKind, Resource], ...]:
    """Every resource of every kind, in declaration order."""
    return tuple((k, r) for k in kinds() for r in k.declaration.resources)


def resource_of(group: str, kind: str) -> tuple[PolicyKind, Resource] | None:
    """The kind and resource an object of ``kind`` in API group ``group`` belongs to, if any."""
    index = _index()
    return index.get((group, kind))


def _index() -> dict[tuple[str, str], tuple[PolicyKind, Resource]]:
    """(group, kind) -> its kind and resource; built once per set of registered kinds (every object is looked up)."""
    key = tuple(map(id, _extra))
    index = _memo.get(key)
    if index is None:
        _memo.clear()
        index = _memo[key] = {}
        for k, r in resources():
            for group in (r.group, *r.manifest_groups):
                index.setdefault((group, r.kind), (k, r))
    return index


def kind_of(api_version: str, kind: str) -> PolicyKind | None:
    found = resource_of(group_of(api_version), kind)
    return found[0] if found else None


@contextlib.contextmanager
def registered(kind: PolicyKind) -> Iterator[PolicyKind]:
    """Register one more kind while the block runs (a kind outside this package, or a test's)."""
    _extra.append(kind)
    try:
        yield kind
    finally:
        _extra.remove(kind)
