"""Kubernetes label selectors: parsing with the API server's validation, matching, indexing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


MESSAGE_LIMIT = 400
"""Characters of a validation message kept: a hostile value (a 5 MB label) never becomes a 5 MB line."""


def show(value: Any) -> str:
    """A value as an error message quotes it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, slots=True)
class FieldError:
    """A validation error naming the field as the API server would (message and field capped)."""

    field: str
    message: str

    def __post_init__(self) -> None:
        for name in ("field", "message"):
            text = getattr(self, name)
            if len(text) > MESSAGE_LIMIT:
                object.__setattr__(self, name, text[:MESSAGE_LIMIT] + f"... ({len(text)} characters)")

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def label_key_error(key: Any) -> str | None:
    """Why ``key`` is not a valid label key (a qualified name), or None."""
    if not isinstance(key, str):
        return f"label key {key!r} must be a string"
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return f"label key {key!r}: prefix part must be non-empty"
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix)):
        return f"label key {key!r}: prefix must be a DNS-1123 subdomain"
    if not name or len(name) > 63 or not _NAME_RE.fullmatch(name):
        return (
            f"label key {key!r}: name part must be 63 characters or less, beginning and ending "
            "with an alphanumeric character, with '-', '_' or '.' between"
        )
    return None


def label_value_error(value: Any) -> str | None:
    """Why ``value`` is not a valid label value, or None (the empty value is valid)."""
    if not isinstance(value, str):
        return f"label value {value!r} must be a string"
    if value == "":
        return None
    if len(value) > 63 or not _NAME_RE.fullmatch(value):
        return (
            f"label value {value!r} must be 63 characters or less, beginning and ending with "
            "an alphanumeric character, with '-', '_' or '.' between"
        )
    return None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement; matchLabels entries become ``In`` with a single value."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op == "In":
            return self.key in labels and labels[self.key] in self.values
        if op == "NotIn":
            # NotIn matches objects that lack the key, as the API does.
            return self.key not in labels or labels[self.key] not in self.values
        if op == "Exists":
            return self.key in labels
        return self.key not in labels

    def __str__(self) -> str:
        if self.operator == "In" and len(self.values) == 1:
            return f"{self.key}={self.values[0]}"
        if self.operator == "In":
            return f"{self.key} in ({','.join(self.values)})"
        if self.operator == "NotIn":
            return f"{self.key} notin ({','.join(self.values)})"
        if self.operator == "Exists":
            return self.key
        return f"!{self.key}"


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled label selector: requirements ANDed together. No requirement selects all."""

    requirements: tuple[Requirement, ...] = ()
    _hash: int | None = field(default=None, init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        # Selectors key every memo and may hold thousands of values: hashed once.
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(self.requirements))
        return self._hash  # type: ignore[return-value]

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements) if self.requirements else "{}"

    @property
    def empty_values(self) -> tuple[str, ...]:
        """Keys required to equal the empty string: usually an unset template variable."""
        return tuple(r.key for r in self.requirements if r.operator == "In" and "" in r.values)


EVERYTHING = Selector()


def parse_selector(raw: Any, path: str) -> tuple[Selector, list[FieldError]]:
    """Compile a LabelSelector, collecting every error the API server would report.

    ``None`` and ``{}`` both give the empty selector (it selects everything). A null
    matchLabels value is read as the empty string, as the API's JSON decoding does.
    """
    errors: list[FieldError] = []
    if raw is None:
        return EVERYTHING, errors
    key = _memo_key(raw)
    if key is not None and key in _VALID:
        return _VALID[key], errors
    selector, errors = _parse_selector(raw, path)
    if key is not None and not errors:
        _VALID[key] = selector
    return selector, errors


# Clusters repeat a few selectors in thousands of policies: valid ones are parsed once.
_VALID: dict[tuple[tuple[str, str], ...], Selector] = {}


def _memo_key(raw: Any) -> tuple[tuple[str, str], ...] | None:
    """A hashable key for the common matchLabels-only selector; None for anything else.

    The key is the whole input: a selector's validity and meaning depend on its labels alone,
    so a cached answer never depends on what was parsed before. Anything but a map of strings
    (a falsy ``false``, ``[]``, ``0`` or ``""`` included) gets no key and is validated afresh.
    """
    if type(raw) is not dict or set(raw) - {"matchLabels"}:
        return None
    labels = raw.get("matchLabels", {})
    if labels is None:
        labels = {}  # null is absent, as the API's decoding reads it
    if type(labels) is not dict or not all(type(k) is str and type(v) is str for k, v in labels.items()):
        return None
    return tuple(sorted(labels.items()))


def _parse_selector(raw: Any, path: str) -> tuple[Selector, list[FieldError]]:
    errors: list[FieldError] = []
    if not isinstance(raw, dict):
        return EVERYTHING, [FieldError(path, "must be a label selector object")]
    unknown = sorted(set(raw) - {"matchLabels", "matchExpressions"}, key=str)
    for key in unknown:
        errors.append(FieldError(f"{path}.{key}", "unknown field in a label selector"))
    reqs: list[Requirement] = []
    match_labels = raw.get("matchLabels")
    if match_labels is not None and not isinstance(match_labels, dict):
        errors.append(FieldError(f"{path}.matchLabels", "must be a map of strings"))
    elif match_labels:
        for key, value in match_labels.items():
            value = "" if value is None else value
            problem = label_key_error(key) or label_value_error(value)
            if problem:
                errors.append(FieldError(f"{path}.matchLabels", problem))
                continue
            reqs.append(Requirement(key, "In", (value,)))
    exprs = raw.get("matchExpressions")
    if exprs is not None and not isinstance(exprs, list):
        errors.append(FieldError(f"{path}.matchExpressions", "must be a list"))
    elif exprs:
        for i, expr in enumerate(exprs):
            req, errs = _parse_expression(expr, f"{path}.matchExpressions[{i}]")
            errors.extend(errs)
            if req is not None:
                reqs.append(req)
    return Selector(tuple(sorted(set(reqs), key=lambda r: (r.key, r.operator, r.values)))), errors


def _parse_expression(expr: Any, path: str) -> tuple[Requirement | None, list[FieldError]]:
    if not isinstance(expr, dict):
        return None, [FieldError(path, "must be an object with key, operator and values")]
    errors: list[FieldError] = []
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values")
    if key is None:
        errors.append(FieldError(f"{path}.key", "required"))
    elif problem := label_key_error(key):
        errors.append(FieldError(f"{path}.key", problem))
    if op not in OPERATORS:
        errors.append(FieldError(f"{path}.operator", f"{op!r} is not a valid selector operator ({', '.join(OPERATORS)})"))
    if values is None:
        values = []
    if not isinstance(values, list):
        errors.append(FieldError(f"{path}.values", "must be a list of strings"))
        values = []
    if op in ("In", "NotIn") and not values:
        errors.append(FieldError(f"{path}.values", f"must be specified when operator is {op}"))
    if op in ("Exists", "DoesNotExist") and values:
        errors.append(FieldError(f"{path}.values", f"may not be specified when operator is {op}"))
    for j, value in enumerate(values):
        if problem := label_value_error(value):
            errors.append(FieldError(f"{path}.values[{j}]", problem))
    if errors or not isinstance(key, str) or not isinstance(op, str):
        return None, errors
    return Requirement(key, op, tuple(sorted(set(values)))), errors


class SelectorIndex:
    """Answers "which of these labelled items does a selector match" without a full scan.

    An inverted index (key -> value -> item ids) narrows In and Exists requirements to
    candidates; NotIn and DoesNotExist subtract. Answers are memoized per selector, since
    real clusters repeat the same few selectors in thousands of policies.
    """

    def __init__(self, items: Sequence[Mapping[str, str]], ids: Sequence[int] | None = None):
        self._ids = list(ids) if ids is not None else list(range(len(items)))
        self._all = frozenset(self._ids)
        by_kv: dict[str, dict[str, set[int]]] = {}
        for item_id, labels in zip(self._ids, items):
            for key, value in labels.items():
                # get before set: setdefault would build an empty dict and set per label (half a million at 150k pods)
                values = by_kv.get(key)
                if values is None:
                    values = by_kv[key] = {}
                members = values.get(value)
                if members is None:
                    values[value] = {item_id}
                else:
                    members.add(item_id)
        self._by_kv = by_kv
        # An item has one value per key: the items with a key are the union of its values' items.
        self._by_key: dict[str, set[int]] = {}
        """Per key, the items that have it (made when an Exists or DoesNotExist asks: few keys are asked)."""
        self._memo: dict[Selector, frozenset[int]] = {}

    @property
    def all(self) -> frozenset[int]:
        return self._all

    def _having(self, key: str) -> set[int]:
        """The items with label ``key``: an item has one value per key, so the union of its values' items."""
        hit = self._by_key.get(key)
        if hit is None:
            hit = self._by_key[key] = set().union(*self._by_kv.get(key, {}).values())
        return hit

    def select(self, selector: Selector) -> frozenset[int]:
        hit = self._memo.get(selector)
        if hit is not None:
            return hit
        # Each In or Exists requirement's items, the smallest first: intersections then walk the
        # smallest set only (`env=prod` holds a third of a cluster, `app=api` a handful).
        found: list[set[int]] = []
        for req in selector.requirements:
            if req.operator == "Exists":
                found.append(self._having(req.key))
            elif req.operator == "In":
                by_value = self._by_kv.get(req.key, {})
                groups = [g for g in (by_value.get(v) for v in req.values) if g]
                found.append(groups[0] if len(groups) == 1 else set().union(*groups))
        found.sort(key=len)
        # The index only holds items of the whole set: the smallest requirement's items are the result so far.
        result: set[int] | frozenset[int] = set(found[0]) if found else self._all
        for items in found[1:]:
            if not result:
                break
            result &= items
        for req in selector.requirements:
            if not result:
                break
            if req.operator in ("In", "Exists"):
                continue
            if req.operator == "DoesNotExist":
                excluded: Iterable[int] = self._having(req.key)
            else:
                by_value = self._by_kv.get(req.key, {})
                excluded = set().union(*(by_value.get(v, ()) for v in req.values))
            result = set(result) - set(excluded)
        frozen = frozenset(result)
        self._memo[selector] = frozen
        return frozen
