"""Schema-directed JSON decoding: pods with only the fields the audit reads, the rest skipped in C.

Pods are nearly all of a cluster's bytes, and nearly all of a pod is what the audit never reads
(managedFields, the last-applied annotation, env, volumes, probes, status conditions and
container statuses). msgspec decodes a pod into `msgspec.Struct` types that declare only what
`InventoryBuilder` reads; undeclared fields are skipped while parsing, never built as Python
objects, and the builder records a typed pod without the per-field checks a dict needs.

The types are not tracked by the cyclic garbage collector (``gc=False``): a decoded document is a tree,
so no pod can be part of a cycle, and 150,000 pods are made and freed faster untracked.

Each field has exactly the type and range the builder accepts (a port 1-65535, a protocol of
TCP, UDP or SCTP, string labels), so a typed pod needs no further checks. A document that does
not fit (a port out of range, labels that are not strings, `ports: {}`) raises
`msgspec.ValidationError`, and the caller decodes it again the general way: the builder then
judges it and names the field as it always did. The fast path never changes an answer or a message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

import msgspec


class PodPort(msgspec.Struct, frozen=True, gc=False):
    containerPort: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    name: str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class PodContainer(msgspec.Struct, gc=False):
    ports: list[PodPort] | None = None


class PodSpec(msgspec.Struct, gc=False):
    containers: list[PodContainer] | None = None
    initContainers: list[PodContainer] | None = None
    hostNetwork: bool | None = None
    serviceAccountName: str | None = None
    serviceAccount: str | None = None


class OwnerReference(msgspec.Struct, gc=False):
    # Any, as the builder reads them: a malformed reference is not an owner, never an error.
    kind: Any = None
    name: Any = None
    controller: Any = None


class PodMeta(msgspec.Struct, gc=False):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    namespace: str | None = None
    labels: dict[str, str] | None = None
    ownerReferences: list[OwnerReference] | None = None


class PodIP(msgspec.Struct, gc=False):
    ip: str | None = None


class PodStatus(msgspec.Struct, gc=False):
    phase: Any = None
    podIP: str | None = None
    podIPs: list[PodIP] | None = None


class Pod(msgspec.Struct, gc=False):
    """What `InventoryBuilder` reads of a v1 Pod, each field with the type the builder accepts
    (audit.sources.objects); a pod outside them is decoded whole and judged by the builder."""

    metadata: PodMeta
    spec: PodSpec | None = None
    status: PodStatus | None = None


class _PodItem(msgspec.Struct, gc=False):
    """A List item read as a pod in the same pass as its kind and apiVersion (UNSET: absent)."""

    metadata: PodMeta
    spec: PodSpec | None = None
    status: PodStatus | None = None
    kind: Any = msgspec.UNSET
    apiVersion: Any = msgspec.UNSET


class _PodItems(msgspec.Struct, gc=False):
    items: list[_PodItem]


class PodPage(msgspec.Struct, gc=False):
    """A page of `GET /api/v1/pods`: the List's own fields, its items as typed pods."""

    items: list[Pod]
    kind: Any = None
    apiVersion: Any = None
    metadata: dict[str, Any] = {}


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
_pod_items = msgspec.json.Decoder(_PodItems)

Unfit = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)
"""What the fast path raises when a document does not fit it (msgspec refuses nesting past ~1,000,
orjson past 1,024): decode it the general way."""


def decode_pod_page(body: bytes) -> PodPage:
    """A pods List page with typed items; raises `Unfit` when it does not have that shape."""
    return _page.decode(body)


def decode_list(body: bytes) -> dict[str, Any] | None:
    """A ``List``/``*List`` document with its pods typed (`Pod`) and every other item whole; None when
    the document is not a List of objects (decode it the general way); raises `Unfit`."""
    envelope = decode_envelope(body)
    kind = list_kind(envelope)
    if kind is None:
        return None
    return with_items(envelope, [decode_item(raw, kind == "PodList") for raw in envelope["items"]])


def list_kind(envelope: dict[str, Any]) -> str | None:
    """The kind of a ``List``/``*List`` envelope that has items; None for any other document."""
    kind = envelope.get("kind")
    return kind if isinstance(kind, str) and kind.endswith("List") and envelope.get("items") is not None else None


def with_items(envelope: dict[str, Any], items: list[Any]) -> dict[str, Any]:
    """The List as `decode_list` gives it: the envelope's fields with ``items`` decoded."""
    whole = {k: v for k, v in envelope.items() if k != "items"}
    whole["items"] = items
    return whole


def decode_item(raw: bytes | msgspec.Raw, typed_pods: bool | None) -> Any:
    """One List item: a v1 Pod typed (`Pod`), anything else whole; raises `Unfit`. In a ``PodList``
    (``typed_pods``) an item without kind or apiVersion is a v1 Pod, as the API server lists them;
    with ``typed_pods`` None (the List's kind not read yet) such an item gives None: decide it later."""
    head = _head.decode(raw)
    kind, version = head.get("kind", msgspec.UNSET), head.get("apiVersion", msgspec.UNSET)
    if typed_pods is None and (kind is msgspec.UNSET or version is msgspec.UNSET):
        return None  # an item is never None here: `null` does not fit _Head
    return _pod.decode(raw) if _is_v1_pod(kind, version, bool(typed_pods)) else _any.decode(raw)


def decode_pods(body: bytes | bytearray, typed_pods: bool | None) -> list[Pod] | None:
    """The items of ``{"items": [...]}`` when every one is a v1 Pod that fits `Pod`, in one pass:
    what `decode_item` makes of each; None otherwise (then decode them one by one)."""
    try:
        items = _pod_items.decode(body).items
    except Unfit:
        return None
    if not all(_is_v1_pod(item.kind, item.apiVersion, bool(typed_pods)) for item in items):
        return None  # with typed_pods None, an item without kind or apiVersion is undecided: item by item
    return [Pod(item.metadata, item.spec, item.status) for item in items]


def _is_v1_pod(kind: Any, version: Any, in_podlist: bool) -> bool:
    """Whether an item is a v1 Pod by its kind and apiVersion; an absent one (UNSET) is a PodList's own."""
    if kind is msgspec.UNSET:
        kind = "Pod" if in_podlist else None
    if version is msgspec.UNSET:
        version = "v1" if in_podlist else None
    return bool(kind == "Pod" and version == "v1")


def decode_envelope(body: bytes) -> dict[str, Any]:
    """A List's kind, apiVersion and items (as `msgspec.Raw`); raises `Unfit`."""
    return dict(_envelope.decode(body))


def typed_pod(obj: Any) -> Pod | None:
    """A YAML-loaded v1 Pod (plain Python values) as a typed `Pod`, via ``msgspec.convert``; None
    when it is no Pod or does not fit (then the builder reads the dict and names any problem)."""
    if type(obj) is not dict or obj.get("kind") != "Pod" or obj.get("apiVersion") != "v1":
        return None
    try:
        return msgspec.convert(obj, Pod)
    except msgspec.ValidationError:
        return None
