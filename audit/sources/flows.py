"""Observed flows, streamed from files: Hubble's JSON lines and a plain CSV or JSON form.

Hubble (`hubble observe -o json` or `-o jsonpb`): one JSON object a line, the flow itself or
wrapped as ``{"flow": {...}}``, with Cilium's field names (``pod_name``, ``is_reply``,
``traffic_direction``, ``l4.TCP.destination_port``) or their lowerCamelCase forms. Only L3/L4
flows are read (``Type`` L3_L4, or an ``l4`` section when ``Type`` is absent); replies
(``is_reply``) are the other half of a connection already seen, and are skipped; other lines
(L7, lost events, node status) are counted as skipped. A DROPPED verdict is kept, flagged.

Plain form, for any other source (VPC and Calico flow logs, conntrack dumps): CSV with a header,
a JSON array, or JSON lines, with ``src``, ``dst``, ``port``, ``protocol`` and optional
``count``, ``first``, ``last``; ``src``/``dst`` as ``ns/pod``, ``ns/workload`` or an IP address.

Nothing here knows the cluster: mapping flows to pod classes is the engine's (audit.engine.flows).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import gzip
import io
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from audit.errors import InputError
from audit.observed import Flow, FlowEnd, FlowGroups, FlowInput, ReadStats
from audit.sources import flowsql
from audit.sources.flowsql import Window

FLOW_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet", ".jsonl.gz", ".jsonl.zst", ".ndjson.gz", ".ndjson.zst", ".json.gz", ".json.zst")
"""What a flow file's name ends with (a folder of rotated exports is read whole)."""


# Hubble's `-o json` lines as typed records: only the fields read, the rest (ethernet, event
# type, trace points, summaries) skipped while parsing. A line that does not fit (jsonpb's
# lowerCamelCase names, a field of another type) is decoded whole and read the general way.
class _HWorkload(msgspec.Struct):
    name: Any = None


class _HEnd(msgspec.Struct):
    namespace: str | None = None
    pod_name: str | None = None
    podName: Any = None  # a jsonpb name beside proto names: the general reader decides which counts
    labels: list[str] | None = None
    workloads: list[_HWorkload] | None = None


class _HPorts(msgspec.Struct):
    destination_port: int | None = None


class _HIP(msgspec.Struct):
    source: str | None = None
    destination: str | None = None


class _HFlow(msgspec.Struct):
    Type: str | None = None
    l4: dict[str, _HPorts] | None = None
    is_reply: bool | None = None
    isReply: Any = None  # jsonpb names, as podName
    ip: Any = None
    verdict: str | None = None
    time: str | None = None
    IP: _HIP | None = None
    source: _HEnd | None = None
    destination: _HEnd | None = None


class _HLine(msgspec.Struct):
    flow: _HFlow | None = None


_typed_line = msgspec.json.Decoder(_HLine)
_BOM = b"\xef\xbb\xbf"
PROTOCOLS = {"TCP", "UDP", "SCTP"}
_decode = msgspec.json.Decoder()


def is_flow_file(path: str) -> bool:
    """Whether a command-line path is a flow capture rather than manifests: by suffix (.csv,
    .jsonl, .ndjson), or for .json/.log/.txt files by the first line (a Hubble flow or a
    plain flow with src and dst)."""
    p = Path(path)
    if p.is_dir():
        return bool(flow_files(path)) and not any(p.rglob("*.yaml")) and not any(p.rglob("*.yml"))
    if not p.is_file():
        return False
    suffix = p.suffix.lower()
    if suffix in FLOW_SUFFIXES or p.name.lower().endswith(FLOW_SUFFIXES):
        return True
    if suffix not in (".json", ".log", ".txt"):
        return False
    with p.open("rb") as fh:
        head = fh.read(65536).removeprefix(_BOM)
    first = head.lstrip()[:1]
    if first == b"[":
        try:
            items = _decode.decode(p.read_bytes().removeprefix(_BOM))
        except msgspec.DecodeError:
            return False
        return bool(items) and isinstance(items[0], dict) and "src" in items[0] and "dst" in items[0]
    line = head.split(b"\n", 1)[0]
    try:
        obj = _decode.decode(line)
    except msgspec.DecodeError:
        return False
    return isinstance(obj, dict) and ("flow" in obj or ("source" in obj and "destination" in obj and "kind" not in obj)
                                      or ("src" in obj and "dst" in obj))


def flow_files(path: str) -> list[str]:
    """A folder's flow files (rotated exports), sorted; a file as itself."""
    p = Path(path)
    if not p.is_dir():
        return [path]
    return sorted(str(f) for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(FLOW_SUFFIXES + (".json", ".log")))


def read_flows(paths: list[str], stats: ReadStats, window: Window = Window()) -> Iterator[Flow]:
    """Every flow of every file (a folder: its files), in order; what DuckDB grouped comes as
    grouped flows (see ``read_groups`` for the groups themselves)."""
    for item in read_groups(paths, stats, window):
        if isinstance(item, Flow):
            yield item
        else:
            yield from item.flows()


def read_groups(paths: list[str], stats: ReadStats, window: Window = Window()) -> Iterator[Flow | FlowGroups]:
    """Every file's flows (a folder: its files), in order. Hubble JSON lines (plain, .gz, .zst)
    stay grouped in DuckDB (``audit.sources.flowsql``), for the engine to place each distinct end
    once and have the groups totalled per placed pair; Parquet is grouped there too. Anything
    DuckDB cannot read cleanly is read line by line here, which names what is wrong."""
    for path in (f for p in paths for f in flow_files(p)):
        stats.files.append(path)
        lower = path.lower()
        if lower.endswith(".parquet"):
            for row in flowsql.grouped(path, stats):
                flow = _plain_flow(row, f"{path}: rows of {row['src']} -> {row['dst']}")
                if window.holds(flow.last):
                    yield flow
            continue
        if not lower.endswith(".csv") and (lower.endswith(".zst") or not _is_array(path)):
            grouped = flowsql.hubble(path, stats, window)
            if grouped is not None:
                yield grouped
                continue
        yield from (f for f in _read_lines(path, stats) if window.holds(f.last))


def _open(path: str) -> Any:
    try:
        if path.lower().endswith(".gz"):
            return gzip.open(path, "rb")
        if path.lower().endswith(".zst"):
            raise InputError(f"{path}: a zstd file the flow engine could not read (it is read line by line only when plain or gzip)")
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def _is_array(path: str) -> bool:
    with _open(path) as fh:
        try:
            head = fh.read(4096).lstrip()
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: cannot read: {exc}") from None
    return bool(head[:1] == b"[")


def _read_lines(path: str, stats: ReadStats) -> Iterator[Flow]:
    """One file line by line (the general reader: every shape, every error named)."""
    ends: dict[tuple[Any, ...], FlowEnd] = {}
    with _open(path) as fh:
        if path.lower().endswith(".csv"):
            yield from _csv_flows(path, io.TextIOWrapper(fh, encoding="utf-8-sig", newline=""), stats)  # past a byte order mark
            return
        start = len(_BOM) if fh.read(len(_BOM)) == _BOM else 0  # read past a UTF-8 byte order mark, as DuckDB does
        fh.seek(start)
        head = fh.read(1)
        while head in (b" ", b"\n", b"\r", b"\t"):
            head = fh.read(1)
        if head == b"[":
            yield from _json_array_flows(path, head + fh.read(), stats, ends)
            return
        fh.seek(start)
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            stats.lines += 1
            fits, typed = _typed_flow(raw, path, number, stats, ends)
            if fits:
                if typed is not None:
                    yield typed
                continue
            try:
                obj = _decode.decode(raw)
            except msgspec.DecodeError as exc:
                raise InputError(f"{path}: line {number}: not a JSON object ({exc})") from None
            flow = _flow_of(obj, f"{path}: line {number}", stats, ends)
            if flow is not None:
                yield flow


_UNFIT: tuple[bool, Flow | None] = (False, None)


def _typed_flow(raw: bytes, path: str, number: int, stats: ReadStats, ends: dict[tuple[Any, ...], FlowEnd]) -> tuple[bool, Flow | None]:
    """A Hubble line read through the typed records: (True, the flow), (True, None) for a reply
    (counted), or (False, None) when the line is not of that shape: read it the general way."""
    try:
        line = _typed_line.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _UNFIT
    flow = line.flow
    if flow is None or flow.Type != "L3_L4" or flow.l4 is None or len(flow.l4) != 1 or flow.source is None or flow.destination is None:
        return _UNFIT  # skipped lines, replies without Type, jsonpb names: the general reader counts and names them
    if flow.isReply is not None or flow.ip is not None or flow.source.podName is not None or flow.destination.podName is not None:
        return _UNFIT  # proto and jsonpb names in one line
    if flow.is_reply:
        stats.replies += 1
        return True, None
    ((protocol, ports),) = flow.l4.items()
    port = ports.destination_port
    if protocol not in PROTOCOLS or type(port) is not int or not 0 < port < 65536:
        return _UNFIT
    ip = flow.IP or _HIP()
    where = f"{path}: line {number}"
    time = _timestamp(flow.time, f"{where}: flow.time")
    return True, Flow(_typed_end(flow.source, ip.source, ends), _typed_end(flow.destination, ip.destination, ends), port, protocol, 1,
                      time, time, flow.verdict == "DROPPED")


def _typed_end(end: _HEnd, ip: str | None, ends: dict[tuple[Any, ...], FlowEnd]) -> FlowEnd:
    workload = end.workloads[0].name if end.workloads else None
    key = (end.namespace, end.pod_name, ip, workload, tuple(end.labels) if end.labels else ())
    hit = ends.get(key)
    return hit if hit is not None else _new_end(end.namespace, end.pod_name, ip, workload, end.labels or (), key, ends)


def _json_array_flows(path: str, body: bytes, stats: ReadStats, ends: dict[tuple[Any, ...], FlowEnd]) -> Iterator[Flow]:
    try:
        items = _decode.decode(body)
    except msgspec.DecodeError as exc:
        raise InputError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(items, list):
        raise InputError(f"{path}: a JSON flow file is an array of flows or one flow a line")
    for i, obj in enumerate(items):
        stats.lines += 1
        flow = _flow_of(obj, f"{path}: item {i}", stats, ends)
        if flow is not None:
            yield flow


def _flow_of(obj: Any, where: str, stats: ReadStats, ends: dict[tuple[Any, ...], FlowEnd] | None = None) -> Flow | None:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: a flow is a JSON object, got {type(obj).__name__}")
    if "src" in obj or "dst" in obj:
        return _plain_flow(obj, where)
    if "flow" not in obj and not any(k in obj for k in ("l4", "source", "destination", "IP", "Type")):
        stats.skip(f"not a flow ({next(iter(obj), 'empty')})")  # lost events, node status, agent events
        return None
    return _hubble_flow(obj.get("flow", obj) if isinstance(obj.get("flow", obj), dict) else {}, where, stats, {} if ends is None else ends)


def _get(obj: Any, snake: str, camel: str | None = None) -> Any:
    """A field by Cilium's proto name or its lowerCamelCase JSON name (jsonpb)."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(snake)
    if value is None and camel:
        value = obj.get(camel)
    return value


def _hubble_flow(flow: dict[str, Any], where: str, stats: ReadStats, ends: dict[tuple[Any, ...], FlowEnd]) -> Flow | None:
    get = flow.get  # Cilium's proto names first, lowerCamelCase (jsonpb) second: a million lines pass here
    kind = get("Type") or get("type")
    l4 = get("l4")
    if not flow or not (kind == "L3_L4" or (kind is None and isinstance(l4, dict))):
        stats.skip(str(kind or ("no flow" if not flow else "no l4")))
        return None
    reply = get("is_reply")
    if reply is None:
        reply = get("isReply")
    if reply is True or reply == {"value": True}:
        stats.replies += 1
        return None
    if not isinstance(l4, dict) or not l4:
        stats.skip("no l4")
        return None
    protocol, layer = next(iter(l4.items()))
    if protocol not in PROTOCOLS:
        stats.skip(f"protocol {protocol}")  # ICMP has no port for a NetworkPolicy to name
        return None
    port = _get(layer, "destination_port", "destinationPort")
    if type(port) is not int or not 0 < port < 65536:
        raise InputError(f"{where}: flow.l4.{protocol}.destination_port: must be a port number (1-65535), got {port!r}")
    ip = get("IP") or get("ip") or {}
    ip_get = ip.get if isinstance(ip, dict) else {}.get
    src = _hubble_end(get("source"), ip_get("source"), where, "source", ends)
    dst = _hubble_end(get("destination"), ip_get("destination"), where, "destination", ends)
    time = _timestamp(get("time"), f"{where}: flow.time")
    return Flow(src, dst, port, protocol, 1, time, time, get("verdict") == "DROPPED")


def _hubble_end(end: Any, ip: Any, where: str, field_name: str, cache: dict[tuple[Any, ...], FlowEnd]) -> FlowEnd:
    if end is not None and not isinstance(end, dict):
        raise InputError(f"{where}: flow.{field_name}: must be an object")
    get = (end or {}).get
    raw_labels = get("labels") or ()
    workloads = get("workloads")
    workload = workloads[0].get("name") if isinstance(workloads, list) and workloads and isinstance(workloads[0], dict) else None
    namespace, name = get("namespace"), get("pod_name") or get("podName")
    try:  # a capture names the same pods again and again: one FlowEnd each, shared
        key: tuple[Any, ...] | None = (namespace, name, ip, workload, tuple(raw_labels) if isinstance(raw_labels, list) else raw_labels)
        hit = cache.get(key)  # type: ignore[arg-type]
    except TypeError:  # an unhashable value somewhere: judged below, uncached
        key, hit = None, None
    if hit is not None:
        return hit
    for value, what in ((namespace, "namespace"), (name, "pod_name"), (ip, "IP")):
        if value is not None and not isinstance(value, str):
            raise InputError(f"{where}: flow.{field_name}.{what}: must be a string, got {value!r}")
    return _new_end(namespace, name, ip, workload, raw_labels if isinstance(raw_labels, list) else (), key, cache)


def _new_end(namespace: str | None, name: str | None, ip: str | None, workload: Any, raw_labels: Any,
             key: tuple[Any, ...] | None, ends: dict[tuple[Any, ...], FlowEnd]) -> FlowEnd:
    """A capture end from its checked fields (labels as Cilium writes them: ``k8s:key=value``, the
    source prefix and Kubernetes' and Cilium's own labels dropped), kept under ``key`` for reuse."""
    found = FlowEnd(namespace or None, name or None, ip or None, flowsql.kubernetes_labels(raw_labels), workload if isinstance(workload, str) else None)
    if key is not None:
        if len(ends) > 200_000:  # bounded: a capture of many distinct outside addresses
            ends.clear()
        ends[key] = found
    return found


_RFC3339_UTC = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z")


def _timestamp(value: Any, where: str) -> str | None:
    """An RFC 3339 time as UTC ISO 8601 with microseconds (fixed width, so times compare as text;
    Hubble writes nanoseconds, Python keeps microseconds)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):  # a protobuf Timestamp as {seconds, nanos}
        seconds = value.get("seconds")
        if not isinstance(seconds, (int, str)) or not str(seconds).lstrip("-").isdigit():
            raise InputError(f"{where}: not a time")
        return _utc(dt.datetime.fromtimestamp(int(seconds), dt.UTC))
    if not isinstance(value, str):
        raise InputError(f"{where}: not a time: {value!r}")
    fast = _RFC3339_UTC.fullmatch(value)
    if fast is not None and _valid_day(fast[1]) and fast[2] < "24:00:00" and fast[2][3:5] < "60" and fast[2][6:8] < "61":
        return f"{fast[1]}T{fast[2]}.{(fast[3] or '')[:6].ljust(6, '0')}Z"  # Hubble's own form: no datetime needed
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # at most microseconds for fromisoformat
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{where}: not an RFC 3339 time: {value!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return _utc(stamp)


def _utc(stamp: dt.datetime) -> str:
    return stamp.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@functools.lru_cache(maxsize=4096)
def _valid_day(day: str) -> bool:
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        return False
    return True


def _plain_end(value: Any, where: str) -> FlowEnd:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: must be ns/pod, ns/workload or an IP address, got {value!r}")
    text = value.strip()
    try:
        return FlowEnd(ip=str(ipaddress.ip_address(text)))
    except ValueError:
        pass
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise InputError(f"{where}: {text!r} is neither ns/name nor an IP address")
    return FlowEnd(namespace, name)


def _plain_flow(obj: dict[str, Any], where: str) -> Flow:
    src = _plain_end(obj.get("src"), f"{where}: src")
    dst = _plain_end(obj.get("dst"), f"{where}: dst")
    port = obj.get("port")
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port)
    if type(port) is not int or not 0 < port < 65536:
        raise InputError(f"{where}: port: must be a port number (1-65535), got {port!r}")
    protocol = str(obj.get("protocol") or "TCP").upper()
    if protocol not in PROTOCOLS:
        raise InputError(f"{where}: protocol: {protocol!r} is not TCP, UDP or SCTP")
    count = obj.get("count", 1)
    if isinstance(count, str) and count.strip().isdigit():
        count = int(count)
    if count in (None, ""):
        count = 1
    if type(count) is not int or count < 1:
        raise InputError(f"{where}: count: must be a positive integer, got {count!r}")
    first = _timestamp(obj.get("first"), f"{where}: first")
    last = _timestamp(obj.get("last"), f"{where}: last") or first
    return Flow(src, dst, port, protocol, count, first or last, last, str(obj.get("verdict", "")).upper() == "DROPPED")


def _csv_flows(path: str, text: io.TextIOWrapper, stats: ReadStats) -> Iterator[Flow]:
    try:
        reader = csv.DictReader(text)
        missing = {"src", "dst", "port"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: line 1: the header lacks {', '.join(sorted(missing))} (columns: src, dst, port, protocol, count, first, last)")
        for row in reader:
            stats.lines += 1
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            yield _plain_flow(row, f"{path}: line {reader.line_num}")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: invalid CSV: {exc}") from None


def flow_input(paths: list[str], window: Window = Window()) -> FlowInput:
    """The files as the pipeline reads them: each time it asks, streamed from the start."""
    for path in paths:
        if not Path(path).exists():
            raise InputError(f"{path}: no such flow file or folder")
        if Path(path).is_dir() and not flow_files(path):
            raise InputError(f"{path}: no flow files in this folder (.jsonl, .ndjson, .json, .csv, .parquet, .gz, .zst)")
    return FlowInput(tuple(paths), lambda stats: read_groups(list(paths), stats, window))
