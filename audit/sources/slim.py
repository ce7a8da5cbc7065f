"""Schema-directed JSON decoding: pods with only the fields the audit reads, the rest skipped in C.

Pods are nearly all of a cluster's bytes, and nearly all of a pod is what the audit never reads
(managedFields, the last-applied annotation, env, volumes, probes, status conditions and
container statuses). msgspec decodes a pod into `typing.TypedDict` shapes that declare only
what `InventoryBuilder` reads; undeclared fields are skipped while parsing, never built as
Python objects. The result is the same plain dict the builder always got, minus what it
ignores, so validation and its messages stay the builder's own.

The shapes declare structure (objects and lists) only where the fat lies; every leaf is `Any`,
so a wrong leaf type still reaches the builder's checks. A document whose structure does not fit
(a container that is not an object, `containers: null`) raises `msgspec.ValidationError`, and the
caller decodes it again the general way: the fast path never changes an answer or a message.
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec


class _Container(TypedDict, total=False):
    ports: Any


class _PodSpec(TypedDict, total=False):
    containers: list[_Container]
    initContainers: list[_Container]
    hostNetwork: Any


class _PodMeta(TypedDict, total=False):
    name: Any
    namespace: Any
    labels: Any
    ownerReferences: Any


class _PodStatus(TypedDict, total=False):
    phase: Any
    podIP: Any
    podIPs: Any


class Pod(TypedDict, total=False):
    """What `InventoryBuilder` reads of a v1 Pod (audit.sources.objects)."""

    kind: Any
    apiVersion: Any
    metadata: _PodMeta
    spec: _PodSpec
    status: _PodStatus


class PodPage(TypedDict, total=False):
    """A page of `GET /api/v1/pods`: the List's own fields, its items as slim pods."""

    kind: Any
    apiVersion: Any
    metadata: Any
    items: list[Pod]


class _Head(TypedDict, total=False):
    kind: Any
    apiVersion: Any


class _Envelope(TypedDict, total=False):
    kind: Any
    apiVersion: Any
    items: list[msgspec.Raw]


_head = msgspec.json.Decoder(_Head)
_pod = msgspec.json.Decoder(Pod)
_any = msgspec.json.Decoder()
_envelope = msgspec.json.Decoder(_Envelope)
_page = msgspec.json.Decoder(PodPage)

Unfit = (msgspec.ValidationError, msgspec.DecodeError)
"""What the fast path raises when a document does not fit it: decode it the general way."""


def decode_pod_page(body: bytes) -> dict[str, Any]:
    """A pods List page with slim items; raises `Unfit` when it does not have that shape."""
    return _page.decode(body)  # type: ignore[return-value]


def decode_list(body: bytes) -> dict[str, Any] | None:
    """A ``List``/``*List`` document with its pods slim and every other item whole; None when
    the document is not a List of objects (decode it the general way); raises `Unfit`."""
    envelope = _envelope.decode(body)
    kind = envelope.get("kind")
    raw_items = envelope.get("items")
    if not isinstance(kind, str) or not kind.endswith("List") or raw_items is None:
        return None
    typed_pods = kind == "PodList"
    items: list[Any] = []
    for raw in raw_items:
        head = _head.decode(raw)
        if head.get("kind", "Pod" if typed_pods else None) == "Pod" and head.get("apiVersion", "v1" if typed_pods else None) == "v1":
            items.append(_pod.decode(raw))
        else:
            items.append(_any.decode(raw))
    whole = {k: v for k, v in envelope.items() if k != "items"}
    whole["items"] = items
    return whole
