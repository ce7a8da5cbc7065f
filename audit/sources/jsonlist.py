"""A large JSON List read in pieces: its items decoded as the file is read, never the file whole.

``kubectl get pods -A -o json`` of a big cluster is a gigabyte, nearly all of it what the audit skips
(`audit.sources.slim`). Read whole, the bytes sit beside everything decoded from them; read here, one
piece of the ``items`` array at a time is in memory. The array is cut where an item ends and the next
begins, found by a pattern: ``}`` then ``,`` then ``{"<the first item's first key>":``. The pattern is
a guess and never trusted: a piece is used only when ``{"items":[<piece>]}`` decodes, and a cut inside
an item cannot (the item's prefix leaves a bracket open; in valid JSON the pattern never lies in a
string, whose quotes are escaped), so a wrong guess only makes the piece longer. The items are decoded
as `slim.decode_list` decodes them: a piece of v1 Pods in one pass (`slim.decode_pods`), any other
piece item by item (`slim.decode_item`).

Anything else gives None and the caller reads the file whole the usual way, which judges it and words
any error as it always did: no top-level ``"items": [`` near the start, a key twice at the top level,
an item the slim types do not fit, JSON that is not valid. So a document is what `slim.decode_list`
makes of the whole file, or None.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, NamedTuple

from audit.sources import slim

CHUNK = 512 << 10
"""Bytes read at a time. A piece of this size is a few thousand lean pods, decoded and reduced while
they are still in the CPU's cache: the L benchmark's pods load in 2.4 s against 2.7 s with 4 MiB
pieces (and 2.7 s decoding every piece before reducing any)."""
HEAD_LIMIT = 1 << 20
"""How far into the file ``"items": [`` (and the first item's first key) must be."""
_WINDOW = 1 << 16
"""Where the last cut is looked for first: the end of what is held (a piece is a chunk, items are KBs)."""
_LOOSE_FROM = 1 << 18
"""Held bytes past which a cut with other blanks than the first item's is looked for too."""
_TRIES = 8
"""Cuts tried, from the last held back, before reading on (an owner reference starts like a pod)."""
_ITEMS = re.compile(rb'"items"\s*:\s*\[')
_FIRST_KEY = re.compile(rb'(\s*)\{\s*"([^"\\]*)"\s*:')
_NEVER = re.compile(rb"(?!)")


class Streamed(NamedTuple):
    """A List read in pieces: what `slim.decode_list` makes of it (its pods reduced, when asked),
    with the file's SHA-256 and size."""

    document: dict[str, Any]
    sha256: str
    size: int


class _GiveUp(Exception):
    """The file is not one this reader takes: read it whole."""


def read_list(stream: BinaryIO, chunk: int = CHUNK, reduce: Callable[[list[slim.Pod]], list[Any]] | None = None) -> Streamed | None:
    """Read a JSON ``List`` from ``stream`` piece by piece; None when it should be read whole.
    ``reduce``: what each piece's typed pods become as soon as they are decoded (what the reader of
    the items keeps of them; it must change nothing else, as the file may still be read whole)."""
    digest = hashlib.sha256()
    size = 0
    pieces = _Pieces(reduce or list)
    try:
        while block := stream.read(chunk):
            digest.update(block)
            size += len(block)
            pieces.feed(block)
        document = pieces.finish()
    except (_GiveUp, *slim.Unfit):
        return None
    return Streamed(document, digest.hexdigest(), size)


class _Pieces:
    """The state of one read: the List's head, the bytes not decoded yet, the items decoded so far."""

    def __init__(self, reduce: Callable[[list[slim.Pod]], list[Any]]) -> None:
        self.reduce = reduce
        self.held = bytearray()  # from the start of an item not decoded yet (or of the file)
        self.head: bytes | None = None  # the document up to and with the `[` of its items
        self.typed_pods: bool | None = None  # the List is a PodList: None until its kind is read
        self.cut = self.loose = _NEVER
        self.compact = b""  # the cut without blanks
        self.no_items = False
        self.scan_from = 0  # where cuts are looked for from: none before it (or only refused ones)
        self.retry_at = 0  # after failed cuts, try again once this much is held: O(file) in all
        self.items: list[Any] = []
        self.undecided: list[tuple[int, bytes]] = []  # items without kind or apiVersion, kind unknown

    def feed(self, block: bytes) -> None:
        self.held += block
        if self.head is None and not self._read_head():
            return
        if self.no_items or (self.cut is _NEVER and not self._read_first_key()):
            return
        self._cut()

    def _read_head(self) -> bool:
        found = _ITEMS.search(self.held)
        if found is None:
            if len(self.held) > HEAD_LIMIT:
                raise _GiveUp
            return False
        head = bytes(self.held[: found.end()])
        top = _top_level(head + b"]}")  # valid only when that `"items": [` is the top level's
        if "kind" in top:  # else it comes after the items
            kind = slim.list_kind(top)
            if kind is None:
                raise _GiveUp
            self.typed_pods = kind == "PodList"
        self.head = head
        del self.held[: found.end()]
        return True

    def _read_first_key(self) -> bool:
        first = _FIRST_KEY.match(self.held)
        if first is not None:
            blanks, key = first.group(1), re.escape(first.group(2))
            # Pretty-printed items sit at one indentation, deeper objects further in: an item's
            # blanks (after `[`, with a line break) set the cut apart from a nested list's (kubectl
            # sorts keys, so managedFields entries start with "apiVersion" too). Compact: a literal.
            self.loose = re.compile(rb'\}\s*,\s*(\{)\s*"' + key + rb'"\s*:')
            self.cut = re.compile(rb"\}\s*," + re.escape(blanks) + rb'(\{)\s*"' + key + rb'"\s*:') if b"\n" in blanks else self.loose
            self.compact = b'},{"' + first.group(2) + b'":' if not blanks else b""
            return True
        opening = bytes(self.held.lstrip()[:1])
        if opening == b"]":
            self.no_items = True  # what is held is the rest of the List, read at the end
        elif opening not in (b"", b"{") or len(self.held) > HEAD_LIMIT:
            raise _GiveUp  # items that are not objects, or an object without a key
        return False

    def _cut(self) -> None:
        """Decode the held items up to the last cut that proves right; keep the rest."""
        held = self.held
        if len(held) < self.retry_at:
            return
        until = len(held)
        for _ in range(_TRIES):
            last = self._last_cut(until)
            if last is None:
                self.scan_from = max(self.scan_from, len(held) - 4096)  # a cut spans a few bytes of blanks
                return
            end = last.start() + 1
            # Nested as deep as in the whole document: msgspec refuses nesting past ~1,000.
            piece = b"".join((b'{"items":[', memoryview(held)[:end], b"]}"))
            pods = slim.decode_pods(piece, self.typed_pods)  # a piece of pods: one pass
            if pods is not None:
                self.items += self.reduce(pods)
            else:
                try:
                    raws = slim.decode_envelope(piece)["items"]
                except slim.Unfit:
                    until = end - 1  # a cut inside an item: look before it
                    continue
                self._decode(raws)
            del held[: last.start(1)]
            self.scan_from = self.retry_at = 0
            return
        self.retry_at = 2 * len(held)  # no cut proved right: read on, and try again once twice as much is held

    def _last_cut(self, until: int) -> re.Match[bytes] | None:
        """The last cut that ends before ``until``: the literal, else at the items' indentation, else any."""
        held = self.held
        if self.compact:
            at = held.rfind(self.compact, self.scan_from, until)
            if at >= 0:
                return self.cut.match(held, at)
        # Cuts with other blanks only once much is held without one at the items' indentation: else
        # a large pretty item would have its nested objects tried.
        for pattern in (self.cut, self.loose) if len(held) > _LOOSE_FROM and self.cut is not self.loose else (self.cut,):
            start = max(self.scan_from, until - _WINDOW)
            last = _last(pattern.finditer(held, start, until))
            if last is None and start > self.scan_from:
                last = _last(pattern.finditer(held, self.scan_from, until))
            if last is not None:
                return last
        return None

    def _decode(self, raws: list[Any]) -> None:
        for raw in raws:
            item = self._item(raw)
            if item is None:
                self.undecided.append((len(self.items), bytes(raw)))
            self.items.append(item)

    def _item(self, raw: bytes | Any) -> Any:
        item = slim.decode_item(raw, self.typed_pods)
        return self.reduce([item])[0] if type(item) is slim.Pod else item

    def finish(self) -> dict[str, Any]:
        """The whole List: the head and what is held (the last items and the rest) decoded together."""
        if self.head is None:
            raise _GiveUp
        last = self.head + bytes(self.held)
        _top_level(last)  # a key twice at the top level, or JSON that is not valid: read it whole
        envelope = slim.decode_envelope(last)
        kind = slim.list_kind(envelope)
        if kind is None:
            raise _GiveUp
        self.typed_pods = kind == "PodList"
        for index, raw in self.undecided:
            self.items[index] = self._item(raw)
        self._decode(envelope["items"])
        return slim.with_items(envelope, self.items)


def _last(found: Iterator[re.Match[bytes]]) -> re.Match[bytes] | None:
    last = None
    for last in found:  # noqa: B007 - the last one is the point
        pass
    return last


def _top_level(text: bytes) -> dict[str, Any]:
    """The top-level object of a small JSON text; `_GiveUp` when it is not one or repeats a key."""
    objects: list[list[tuple[str, Any]]] = []

    def pairs(found: list[tuple[str, Any]]) -> dict[str, Any]:
        objects.append(found)
        return dict(found)

    try:
        value = json.loads(text.decode("utf-8"), object_pairs_hook=pairs)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _GiveUp from None
    if not isinstance(value, dict):
        raise _GiveUp
    top = objects[-1]  # the hook sees the top level last
    if len({key for key, _ in top}) != len(top):
        raise _GiveUp
    return value
