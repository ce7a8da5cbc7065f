"""Flows grouped by DuckDB equal the line-by-line reader's, aggregated: on every fixture, every shape
Hubble writes (wrapped or bare, proto or lowerCamelCase names, replies, L7 and lost events, ICMP,
DROPPED, times with nanoseconds or offsets), gzip and zstd files, folders of rotated exports, the
grouped form in Parquet, and --since/--until; anything odd goes to the line reader, which names it."""

from __future__ import annotations

import gzip
import ipaddress
import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.errors import InputError
from audit.observed import Flow, ReadStats
from audit.sources import flowsql
from audit.sources.flows import _read_lines, flow_input, read_flows, read_groups
from tests.conftest import EXAMPLES

runner = CliRunner()
LAB = EXAMPLES / "lab-flows"


def aggregate(flows) -> dict:
    """Flows per (source, destination, port, protocol, dropped): count, first, last (the engine's grouping)."""
    out: dict = {}
    for f in flows:
        key = (f.src, f.dst, f.port, f.protocol, f.dropped)
        count, first, last = out.get(key, (0, None, None))
        out[key] = (count + f.count, min(x for x in (first, f.first) if x) if (first or f.first) else None,
                    max(x for x in (last, f.last) if x) if (last or f.last) else None)
    return out


def both(path: Path) -> tuple[tuple[dict, ReadStats], tuple[dict, ReadStats]]:
    fast_stats, slow_stats = ReadStats(), ReadStats()
    fast = aggregate(read_flows([str(path)], fast_stats))
    slow = aggregate(_read_lines(str(path), slow_stats))
    return (fast, fast_stats), (slow, slow_stats)


def same(path: Path) -> dict:
    (fast, fs), (slow, ss) = both(path)
    assert fast == slow
    assert (fs.lines, fs.replies, fs.skipped) == (ss.lines, ss.replies, ss.skipped)
    return fast


def end(ns: str | None, pod: str | None, camel: bool = False, workload: str | None = None) -> dict:
    if ns is None:
        return {"identity": 2, "labels": ["reserved:world"]}
    out: dict = {"namespace": ns, ("podName" if camel else "pod_name"): pod,
                 "labels": [f"k8s:app={pod}", f"k8s:io.kubernetes.pod.namespace={ns}", "k8s:io.cilium.k8s.policy.cluster=default"]}
    if workload:
        out["workloads"] = [{"name": workload, "kind": "Deployment"}]
    return out


def line(rng: random.Random, i: int) -> str:
    camel = rng.random() < 0.3
    kinds = rng.random()
    pods = [("a", "p1"), ("a", "p2"), ("b", "q1"), ("b", "q2"), (None, None)]
    (sns, spod), (dns, dpod) = rng.choice(pods), rng.choice(pods[:4])
    ips = {"p1": "10.0.0.1", "p2": "10.0.0.2", "q1": "10.0.1.1", "q2": "10.0.1.2"}
    proto = rng.choice(["TCP", "TCP", "UDP", "SCTP"])
    flow: dict = {
        "time": rng.choice([f"2026-11-30T10:00:{i % 60:02d}.{i:09d}Z", f"2026-11-30T12:{i % 60:02d}:00+02:00", "2026-11-30T10:00:00Z"]),
        "verdict": "DROPPED" if rng.random() < 0.1 else "FORWARDED",
        ("ip" if camel else "IP"): {"source": ips[spod] if spod else f"203.0.113.{i % 7}", "destination": ips[dpod]},
        "l4": {proto: {("destinationPort" if camel else "destination_port"): rng.choice([80, 443, 53, 5432])}},
        "source": end(sns, spod, camel, "w" if rng.random() < 0.3 else None), "destination": end(dns, dpod, camel),
        ("type" if camel else "Type"): "L3_L4",
    }
    if kinds < 0.1:
        flow[("isReply" if camel else "is_reply")] = True
    elif kinds < 0.15:
        flow["is_reply"] = {"value": True}
    elif kinds < 0.2:
        flow["Type"] = "L7"
    elif kinds < 0.23:
        return json.dumps({"lost_events": {"num_events_lost": 3}})
    elif kinds < 0.26:
        flow["l4"] = {"ICMPv4": {"type": 8}}
    elif kinds < 0.3:
        flow.pop("time")
    # Hubble writes compact lines that open with the flow object (the engine's short path); others are spaced or bare.
    return json.dumps({"flow": flow} if rng.random() < 0.7 else flow, separators=(",", ":") if rng.random() < 0.5 else None)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    rng = random.Random(5)
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(line(rng, i) for i in range(3000)) + "\n\n")
    return path


def test_the_lab_capture_groups_to_the_same_flows():
    grouped = same(LAB / "hubble.jsonl")
    assert sum(c for c, _f, _l in grouped.values()) == 16


def test_every_hubble_shape_groups_to_the_same_flows(mixed):
    grouped = same(mixed)
    assert len(grouped) < 1000 < sum(c for c, _f, _l in grouped.values())  # fewer groups than flows


def test_the_engine_did_the_grouping(mixed):
    stats = ReadStats()
    grouped = flowsql.hubble(str(mixed), stats)
    assert grouped is not None  # not handed to the line reader
    rows = list(grouped.flows())
    assert len(rows) < 1000 < sum(f.count for f in rows)


_L4 = '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}}'
_POD = '{"namespace":"a","pod_name":"p1","labels":["k8s:app=p1"]}'
_IPS = '"IP":{"source":"10.0.0.1","destination":"10.0.0.2"}'
# Lines that open with the flow object take the engine's short path, which neither writes out the
# flow, its source or destination, nor reads their types unless no field of theirs was found.
SHORT_PATH = [
    '{"flow":{}}', '{"flow":{ }}', '{"flow":{"foo":1}}', '{"flow":{"Type":"L7"}}', '{"flow":{"node_name":"n"},"time":"x"}',
    '{"flow":{' + _L4 + ',"source":{},"destination":{}}}',
    '{"flow":{' + _L4 + '}}',
    '{"flow":{' + _L4 + ',"source":{"identity":2,"labels":["reserved:world"]},"destination":' + _POD + '}}',
    '{"flow":{' + _L4 + ',"source":{"workloads":[{"name":"w"}]},"destination":{"podName":"q1"}}}',
    '{"flow":{' + _L4 + ',"source":{"pod_name":null},"destination":{"identity":7}}}',
    '{"flow":{"l4":{"UDP":{"destinationPort":53}},"source":' + _POD + ',"destination":{}}}',
    '{"flow":{"l4":{"SCTP":{"destination_port":9,"destinationPort":10}},"source":' + _POD + '}}',
    '{"flow":{"l4":{"TCP":{"destinationPort":443},"UDP":{"destination_port":53}},"destination":' + _POD + '}}',
    '{"flow":{"l4":{"ICMPv4":{"type":8}},"source":' + _POD + '}}',
    '{"flow":{' + _L4 + ',"source":{"labels":{"k8s:a=b":"x"}},"destination":{"labels":"k8s:a=b"}}}',
    '{"flow":{"Type":"L3_L4","l4":{},' + _IPS + '}}', '{"flow":{"Type":"L\\"7\\\\x"}}',
]


@pytest.mark.parametrize("other", ['"x"', "null", "[]", "[1]", "5"])
@pytest.mark.parametrize("side", ["source", "destination"])
def test_an_end_that_is_not_an_object_goes_to_the_line_reader_on_the_short_path(tmp_path, side, other):
    path = tmp_path / "h.jsonl"
    path.write_text('{"flow":{' + _L4 + ',"' + side + '":' + other + '}}\n')
    assert flowsql.hubble(str(path), ReadStats()) is None


def test_the_port_is_the_first_protocols_on_the_short_path(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text('{"flow":{"l4":{"UDP":{"source_port":1},"TCP":{"destination_port":22}},"destination":' + _POD + '}}\n')
    assert flowsql.hubble(str(path), ReadStats()) is None
    with pytest.raises(InputError, match=r"line 1: flow\.l4\.UDP\.destination_port: must be a port number"):
        list(read_flows([str(path)], ReadStats()))


def test_every_short_path_line_groups_as_the_line_reader_reads_it(tmp_path):
    path = tmp_path / "short.jsonl"
    path.write_text("\n".join(SHORT_PATH * 2) + "\n")
    assert flowsql.hubble(str(path), ReadStats()) is not None  # the engine read every line
    grouped = same(path)
    assert sum(c for c, _f, _l in grouped.values()) == 2 * 9
    assert {k[2:4] for k in grouped} == {(80, "TCP"), (53, "UDP"), (9, "SCTP"), (443, "TCP")}  # the first protocol's port
    for single in SHORT_PATH:  # and each line alone (its own counts and reasons)
        path.write_text(single + "\n")
        assert flowsql.hubble(str(path), ReadStats()) is not None, single
        same(path)


@pytest.mark.parametrize("flow,expected", [
    ('{"flow":{' + _L4 + ',"source":{},"destination":{"podName":"q1"}}}', ("name", "q1")),
    ('{"flow":{' + _L4 + ',"ip":{"destination":"10.0.0.9"},"source":{},"destination":{}}}', ("ip", "10.0.0.9")),
    ('{"flow":{' + _L4 + ',"isReply":true,"source":{},"destination":{}}}', ("reply", 1)),
])
def test_a_line_mixing_proto_and_jsonpb_names_is_read_as_the_general_reader_reads_it(tmp_path, flow, expected):
    """The line reader's typed records know only proto names: a jsonpb name beside them (which the
    general reader reads) sends the line to the general reader."""
    path = tmp_path / "h.jsonl"
    path.write_text(flow + "\n")
    stats = ReadStats()
    flows = list(_read_lines(str(path), stats))
    field, value = expected
    if field == "reply":
        assert flows == [] and stats.replies == 1
    else:
        assert getattr(flows[0].dst, field) == value
    same(path)


# A field and its jsonpb twin in one flow: the line reader takes the proto name's value when it is
# truthy (Python's `or`), the twin's otherwise; a JSON null counts as absent.
TWINS = [
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},' + _IPS + ',"is_reply":null,"isReply":true',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},' + _IPS + ',"is_reply":false,"isReply":true',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},' + _IPS + ',"source":{"namespace":"a","pod_name":"","podName":"q1"}',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},' + _IPS + ',"source":{"namespace":"a","pod_name":null,"podName":"q1"}',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},' + _IPS + ',"source":{"namespace":"a","pod_name":"p1","podName":"q1"}',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},"IP":{"source":"10.0.0.1"},"ip":{"destination":"10.0.0.2"}',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},"IP":{"ipVersion":"IPv4"},"ip":{"source":"10.0.0.1","destination":"10.0.0.2"}',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},"IP":{},"ip":{"source":"10.0.0.1","destination":"10.0.0.2"}',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},"IP":null,"ip":{"source":"10.0.0.1","destination":"10.0.0.2"}',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},"IP":0,"ip":{"source":"10.0.0.1","destination":"10.0.0.2"}',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},"IP":0.0,"ip":{"source":"10.0.0.1","destination":"10.0.0.2"}',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80},"TCP":{"destination_port":81}},' + _IPS,
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},"ip":{"source":"10.0.0.1","destination":"10.0.0.2"}',
    '"Type":"L3_L4","l4":{"TCP":{"destination_port":80}},"IP":{"source":"10.0.0.3"},"ip":{"source":"10.0.0.1"}',
    '"Type":false,"type":"L7","l4":{"TCP":{"destination_port":80}},' + _IPS,
    '"Type":"","type":"L7","l4":{"TCP":{"destination_port":80}},' + _IPS,
    '"Type":null,"type":"L3_L4","l4":{"TCP":{"destination_port":80}},' + _IPS,
    '"Type":true,"l4":{"TCP":{"destination_port":80}},' + _IPS,
    '"Type":5,"l4":{"TCP":{"destination_port":80}},' + _IPS,
    '"Type":"L7","type":"L3_L4","l4":{"TCP":{"destination_port":80}},' + _IPS,
]


@pytest.mark.parametrize("wrap", ["compact", "spaced", "bare"])
@pytest.mark.parametrize("fields", TWINS, ids=range(len(TWINS)))
def test_a_field_beside_its_jsonpb_twin_is_read_as_the_line_reader_reads_it(tmp_path, fields, wrap):
    flow = "{" + fields + "}"
    text = {"compact": '{"flow":' + flow + "}", "spaced": '{"flow": ' + flow + "}", "bare": flow}[wrap]
    path = tmp_path / "h.jsonl"
    path.write_text(text + "\n")
    same(path)


def clean_line(rng: random.Random, i: int) -> str:
    """A line as Hubble's exporter writes it (proto names, the flow wrapped, Type and IP always
    there): what DuckDB's JSON reader reads without the path lookups."""
    pods = [("a", "p1"), ("a", "p2"), ("b", "q1"), ("b", "q2"), (None, None)]
    (sns, spod), (dns, dpod) = rng.choice(pods), rng.choice(pods[:4])
    ips = {"p1": "10.0.0.1", "p2": "10.0.0.2", "q1": "10.0.1.1", "q2": "10.0.1.2"}
    proto = rng.choice(["TCP", "TCP", "UDP", "SCTP", "ICMPv4"])
    layer = {"type": 8} if proto == "ICMPv4" else {"source_port": 30000 + i, "destination_port": rng.choice([80, 443, 53, 5432])}
    flow: dict = {
        "time": rng.choice([f"2026-11-30T10:00:{i % 60:02d}.{i:09d}Z", f"2026-11-30T12:{i % 60:02d}:00+02:00", "2026-11-30T10:00:00Z"]),
        "verdict": rng.choice(["DROPPED", "FORWARDED", "FORWARDED", "AUDIT"]),
        "IP": {"source": ips[spod] if spod else f"203.0.113.{i % 7}", "destination": ips[dpod], "ipVersion": "IPv4"},
        "l4": {proto: layer}, "source": end(sns, spod, False, "w" if rng.random() < 0.3 else None), "destination": end(dns, dpod),
        "Type": rng.choice(["L3_L4"] * 8 + ["L7", "TRACE"]), "node_name": "node-1", "is_reply": rng.random() < 0.2,
    }
    if rng.random() < 0.05:
        flow["is_reply"] = {"value": True}
    if rng.random() < 0.05:
        flow.pop("time")
    if rng.random() < 0.05:
        flow["source"]["workloads"] = []
    return json.dumps({"flow": flow, "node_name": "node-1"}, separators=(",", ":") if rng.random() < 0.7 else None)


def _groups(path: Path, reading) -> tuple[dict, list]:
    """The lines of each kind, and every pair with its ends in full (the ends as the lines write
    them and as text, the port, protocol, verdict, count and times) when the reading is clean."""
    con = flowsql._connect()
    try:
        kinds, clean = reading(con, str(path), flowsql.Window())
        if not clean:
            return kinds, []
        ends = "e.ns, e.pod, e.ip, e.wl, e.lab, e.ns_t, e.pod_t, e.ip_t, e.wl_t"
        return kinds, con.execute(f"""SELECT s.id, {ends.replace("e.", "s.")}, d.id, {ends.replace("e.", "d.")},
            p.port, p.proto, p.dropped, sum(p.n), min(p.first), max(p.last)
            FROM pairs p JOIN ends s ON s.id = p.se JOIN ends d ON d.id = p.de GROUP BY ALL ORDER BY ALL""").fetchall()
    finally:
        flowsql._close(con)


@pytest.mark.parametrize("seed", range(3))
def test_a_clean_export_is_read_by_duckdbs_json_reader_as_by_the_path_lookups(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "clean.jsonl"
    path.write_text("\n".join(clean_line(rng, i) for i in range(2000)) + "\n\n")
    kinds, fast = _groups(path, flowsql._structured)
    assert "unclear" not in kinds and {"flow", "reply", "skip:L7", "skip:protocol ICMPv4"} <= set(kinds) and fast
    assert (kinds, fast) == _groups(path, flowsql._paths)
    assert sum(c for c, _f, _l in same(path).values()) == kinds["flow"]
    gz = tmp_path / "clean.jsonl.gz"  # compressed exports take the same reading
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert _groups(gz, flowsql._structured) == (kinds, fast)


def _readings(monkeypatch) -> list[tuple[str, str]]:
    """The readings hubble() runs, as (which, head)."""
    calls: list[tuple[str, str]] = []
    structured, paths = flowsql._structured, flowsql._paths

    def spy_structured(con, path, window, head=""):
        calls.append(("structured", head))
        return structured(con, path, window, head)

    def spy_paths(con, path, window):
        calls.append(("paths", ""))
        return paths(con, path, window)

    monkeypatch.setattr(flowsql, "_structured", spy_structured)
    monkeypatch.setattr(flowsql, "_paths", spy_paths)
    return calls


def test_a_clean_export_is_read_once_after_its_first_lines(tmp_path, monkeypatch):
    rng = random.Random(7)
    path = tmp_path / "clean.jsonl"
    path.write_text("\n".join(clean_line(rng, i) for i in range(300)) + "\n")
    calls = _readings(monkeypatch)
    assert flowsql.hubble(str(path), ReadStats()) is not None
    assert calls == [("structured", f" LIMIT {flowsql.HEAD_LINES}"), ("structured", "")]


def test_an_export_with_lost_events_throughout_goes_to_the_path_lookups_after_its_first_lines(mixed, monkeypatch):
    calls = _readings(monkeypatch)
    assert flowsql.hubble(str(mixed), ReadStats()) is not None
    assert calls == [("structured", f" LIMIT {flowsql.HEAD_LINES}"), ("paths", "")]
    same(mixed)


def test_an_unclear_line_past_the_first_lines_still_sends_the_file_to_the_path_lookups(tmp_path, monkeypatch):
    rng = random.Random(8)
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(clean_line(rng, i) for i in range(300)) + '\n{"lost_events":{"num_events_lost":3}}\n')
    monkeypatch.setattr(flowsql, "HEAD_LINES", 5)
    calls = _readings(monkeypatch)
    assert flowsql.hubble(str(path), ReadStats()) is not None
    assert calls[-1] == ("paths", "") and len(calls) in (2, 3)
    same(path)


@pytest.mark.parametrize("line", [
    '{"lost_events":{"num_events_lost":3}}', '{"flow":null}', '{"flow":{}}', '{"node_name":"n"}',
    '{"flow":{' + _L4 + ',' + _IPS + '},"src":"a/b"}', '{"flow":{' + _L4 + ',' + _IPS + '},"dst":"a/b"}',
    '{"flow":{"l4":{"TCP":{"destination_port":80}},' + _IPS + '}}',
    '{"flow":{"Type":null,' + _L4[len('"Type":"L3_L4",'):] + ',' + _IPS + '}}',
    '{"flow":{"Type":"","type":"L3_L4","l4":{"TCP":{"destination_port":80}},' + _IPS + '}}',
    '{"flow":{"Type":1,"l4":{"TCP":{"destination_port":80}},' + _IPS + '}}',
    '{"flow":{' + _L4 + '}}',
    '{"flow":{' + _L4 + ',"IP":{"ipVersion":"IPv4"},"ip":{"source":"10.0.0.1","destination":"10.0.0.2"}}}',
    '{"flow":{"Type":"L3_L4","l4":null,' + _IPS + '}}',
])
def test_what_duckdbs_json_reader_cannot_see_is_read_by_the_path_lookups(tmp_path, line):
    """A line without a flow (its first key names the skip), src or dst (plain flows), no Type, no
    IP (jsonpb's ip may stand beside it), no l4: unclear to the structured reading, so the file is
    read by the path lookups, as the line reader reads it."""
    path = tmp_path / "h.jsonl"
    path.write_text((LAB / "hubble.jsonl").read_text().splitlines()[0] + "\n" + line + "\n")
    assert "unclear" in _groups(path, flowsql._structured)[0]
    try:
        same(path)
    except InputError:  # the line reader refuses it: so does the engine (it hands the file over)
        assert flowsql.hubble(str(path), ReadStats()) is None


@pytest.mark.parametrize("flow", [
    '"source":{"namespace":"a","namespace":"b"}', '"verdict":"DROPPED","verdict":"FORWARDED"',
    '"IP":"10.0.0.1"', '"source":{"workloads":"w"}', '"source":{"workloads":[5]}',
    '"l4":{"TCP":{"destination_port":80},"TCP":{"destination_port":81}}', '"l4":{"TCP":{"destination_port":80,"destination_port":81}}',
    '"l4":{"TCP":5}',
])
def test_a_shape_duckdbs_json_reader_refuses_goes_to_the_line_reader(tmp_path, flow):
    """A repeated key (the line reader keeps the last, DuckDB's path lookups the first), or an
    object where the reader wants another shape: the line reader reads the file."""
    path = tmp_path / "h.jsonl"
    head = '"Type":"L3_L4"' if '"l4"' in flow else _L4
    path.write_text('{"flow":{' + head + ',' + flow + (',' + _IPS if '"IP"' not in flow else '') + '}}\n')
    assert flowsql.hubble(str(path), ReadStats()) is None
    try:
        expected = aggregate(_read_lines(str(path), ReadStats()))
    except InputError as exc:  # the line reader names what is wrong, and so does the engine's caller
        with pytest.raises(InputError, match=re.escape(str(exc))):
            list(read_flows([str(path)], ReadStats()))
    else:
        assert aggregate(read_flows([str(path)], ReadStats())) == expected


@pytest.mark.parametrize("compress", [False, True])
def test_a_byte_order_mark_is_read_past_by_both_readers(tmp_path, compress):
    """DuckDB reads past a UTF-8 byte order mark; so does the line reader (it named line 1 not JSON)."""
    rng = random.Random(4)
    body = ("\ufeff" + "\n".join(clean_line(rng, i) for i in range(200)) + "\n").encode()
    path = tmp_path / ("bom.jsonl.gz" if compress else "bom.jsonl")
    path.write_bytes(gzip.compress(body) if compress else body)
    assert flowsql.hubble(str(path), ReadStats()) is not None
    assert sum(c for c, _f, _l in same(path).values()) > 0
    bad = b"\xef\xbb\xbf" + (LAB / "hubble.jsonl").read_bytes().splitlines()[0] + b"\n{not json\n"
    path.write_bytes(gzip.compress(bad) if compress else bad)
    with pytest.raises(InputError, match="line 2: not a JSON object"):
        list(read_flows([str(path)], ReadStats()))


def test_compressed_files_and_folders(mixed, tmp_path):
    expected = aggregate(_read_lines(str(mixed), ReadStats()))
    gz = tmp_path / "rotated" / "part-1.jsonl.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(mixed.read_bytes()))
    assert aggregate(read_flows([str(gz)], ReadStats())) == expected
    import duckdb

    zst = tmp_path / "rotated" / "part-2.jsonl.zst"
    # DuckDB writes the zstd file (the standard library has no zstd): each line's JSON text as it was.
    duckdb.connect().execute(f"COPY (SELECT json::VARCHAR FROM read_json_objects('{mixed}', format='newline_delimited')) TO '{zst}' "
                             "(FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\t', COMPRESSION zstd)")
    assert aggregate(read_flows([str(zst)], ReadStats())) == expected
    both_files = aggregate(read_flows([str(gz.parent)], ReadStats()))
    assert sum(c for c, _f, _l in both_files.values()) == 2 * sum(c for c, _f, _l in expected.values())


def _compact(line: str) -> str:
    """The line as Hubble writes it (no spaces): the engine's short path for lines opening with the flow."""
    try:
        return json.dumps(json.loads(line), separators=(",", ":"))
    except json.JSONDecodeError:
        return line


@pytest.mark.parametrize("form", [str, _compact])
@pytest.mark.parametrize("bad,message", [
    ('{"flow": {"Type": "L3_L4", "l4": {"TCP": {"destination_port": 0}}, "source": {}, "destination": {}}}',
     r"line 2: flow.l4.TCP.destination_port: must be a port number"),
    ("{not json", "line 2: not a JSON object"),
    ('{"flow": {"Type": "L3_L4", "l4": {"TCP": {"destination_port": 80}}, "source": {"namespace": 5}, "destination": {}}}',
     "line 2: flow.source.namespace: must be a string"),
    ('{"flow": {"Type": "L3_L4", "l4": {"TCP": {"destination_port": 80}}, "source": {}, "destination": {}, "time": "yesterday"}}',
     "line 2: flow.time: not an RFC 3339 time"),
])
def test_what_the_engine_cannot_read_is_named_by_the_line_reader(tmp_path, bad, message, form):
    path = tmp_path / "h.jsonl"
    path.write_text((LAB / "hubble.jsonl").read_text().splitlines()[0] + "\n" + form(bad) + "\n")
    assert flowsql.hubble(str(path), ReadStats()) is None
    with pytest.raises(InputError, match=message):
        list(read_flows([str(path)], ReadStats()))


def test_the_grouped_form_in_parquet_reads_as_the_csv(tmp_path):
    import duckdb

    parquet = tmp_path / "grouped.parquet"
    duckdb.connect().execute(f"COPY (SELECT * FROM read_csv('{LAB / 'flows.csv'}', all_varchar=true)) TO '{parquet}' (FORMAT PARQUET)")
    from_csv = aggregate(read_flows([str(LAB / "flows.csv")], ReadStats()))
    from_parquet = aggregate(read_flows([str(parquet)], ReadStats()))
    assert from_parquet == from_csv
    lab = runner.invoke(app, ["flows", str(parquet), str(EXAMPLES / "lab-before"), "--now", "2026-01-01T00:00:00Z", "-f", "json"])
    assert lab.exit_code == 0, lab.output


def test_a_parquet_file_without_the_columns_is_one_line(tmp_path):
    import duckdb

    bad = tmp_path / "bad.parquet"
    duckdb.connect().execute(f"COPY (SELECT 1 AS x) TO '{bad}' (FORMAT PARQUET)")
    with pytest.raises(InputError, match="the columns lack dst, port, src"):
        list(read_flows([str(bad)], ReadStats()))


def test_since_and_until_keep_the_flows_of_the_window(mixed):
    window = flowsql.Window(*(  # 10:00:00 (inclusive) to 10:00:30 (exclusive), UTC
        __import__("datetime").datetime.fromisoformat(t) for t in ("2026-11-30T10:00:00+00:00", "2026-11-30T10:00:30+00:00")))
    fast = aggregate(read_flows([str(mixed)], ReadStats(), window))
    slow = aggregate(f for f in _read_lines(str(mixed), ReadStats()) if window.holds(f.last))
    assert fast == slow and 0 < sum(c for c, _f, _l in fast.values()) < sum(c for c, _f, _l in aggregate(read_flows([str(mixed)], ReadStats())).values())
    assert all("2026-11-30T10:00:00" <= (first or "") and (last or "") < "2026-11-30T10:00:30" for first, last in
               ((f, la) for _c, f, la in fast.values()))


@pytest.mark.parametrize("since,until", [("2026-11-30T10:00:30", None), (None, "2026-11-30T10:00:30")])
@pytest.mark.parametrize("source", ["mixed", "csv"])
def test_a_window_open_at_one_end_keeps_the_flows_on_its_side(mixed, since, until, source):
    """The oracle compares the line reader's times as text (UTC, fixed width) with the bounds; a flow without a time is outside any window."""
    import datetime as dt

    path = mixed if source == "mixed" else LAB / "flows.csv"
    window = flowsql.Window(*(dt.datetime.fromisoformat(t + "+00:00") if t else None for t in (since, until)))
    lo, hi = (f"{t}.000000Z" if t else None for t in (since, until))
    expected = aggregate(f for f in _read_lines(str(path), ReadStats())
                         if f.last is not None and (lo is None or f.last >= lo) and (hi is None or f.last < hi))
    got = aggregate(read_flows([str(path)], ReadStats(), window))
    assert got == expected
    if source == "mixed":
        assert 0 < sum(c for c, _f, _l in got.values()) < sum(c for c, _f, _l in aggregate(_read_lines(str(path), ReadStats())).values())


def test_a_capture_without_replies_or_skipped_lines_counts_none(tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_text("\n".join(line for line in (LAB / "hubble.jsonl").read_text().splitlines()
                              if '"is_reply":true' not in line.replace(" ", "") and '"L3_L4"' in line) + "\n")
    stats = ReadStats()
    assert flowsql.hubble(str(path), stats) is not None
    assert (stats.replies, stats.skipped) == (0, {}) and stats.lines > 0


def test_the_window_on_the_command_line(tmp_path):
    result = runner.invoke(app, ["flows", str(LAB / "hubble.jsonl"), str(EXAMPLES / "lab-before"), "--since", "2030-01-01T00:00:00Z",
                                 "--now", "2026-01-01T00:00:00Z", "-f", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["traffic"]["flows"] == 0
    bad = runner.invoke(app, ["flows", str(LAB / "hubble.jsonl"), str(EXAMPLES / "lab-before"), "--until", "soon"])
    assert bad.exit_code == 2 and "--until: 'soon' is not an ISO 8601 time" in bad.output


def test_an_empty_folder_is_one_line(tmp_path):
    with pytest.raises(InputError, match="no flow files in this folder"):
        flow_input([str(tmp_path)])


def test_counts_are_kept_per_group():
    flows = list(read_flows([str(LAB / "hubble.jsonl")], ReadStats()))
    assert all(isinstance(f, Flow) for f in flows) and Counter(f.count > 1 for f in flows)[True] >= 1


# -- placing grouped flows: the engine totals per placed pair as Python does per flow ---------


def _capture(rng: random.Random, n: int) -> tuple[list[str], dict]:
    """Hubble lines over the mixed cluster: workload pods (postgres's three classes named without
    labels), stale pods, outside addresses (many behind one pair), outside-only flows."""
    pods = [("frontend", "web-6d4cf56db6-x2x9k", ["k8s:app=web"]), ("backend", "api-7f9c-abcde", ["k8s:app=api"]),
            ("backend", "worker-5c6d-zz9zz", ["k8s:app=worker"]), ("data", "postgres-1", []), ("data", "redis-0", ["k8s:app=redis"]),
            ("batch", "nightly-report-28391-q8d7n", ["k8s:app=nightly-report"]), ("kube-system", "coredns-5d78c9869d-1", ["k8s:k8s-app=kube-dns"]),
            ("analytics", "collector-5d4f-abcde", ["k8s:app=collector"])]
    stale = [("backend", f"gone-{i}-abcde", []) for i in range(30)]
    outside = [f"203.0.113.{i}" for i in range(1, 40)] + ["198.51.100.7", "8.8.8.8", "2001:db8::5", "2001:db8::7"]
    oracle: dict = {"unplaced": set(), "ips": {}, "outside_only": 0, "stale": 0}
    lines = []
    for i in range(n):
        kind = rng.random()
        def pod(choice):
            ns, name, labels = choice
            return {"namespace": ns, "pod_name": name, "labels": labels + [f"k8s:io.kubernetes.pod.namespace={ns}"]}, f"{ns}/{name}"
        if kind < 0.5:
            (src, stext), (dst, dtext), dip = pod(rng.choice(pods)), pod(rng.choice(pods)), "10.0.0.1"
        elif kind < 0.7:
            (src, stext), (dst, dtext), dip = pod(rng.choice(pods[5::2])), ({"labels": ["reserved:world"]}, None), rng.choice(outside)
            dtext = dip
        elif kind < 0.85:
            (src, stext), (dst, dtext), dip = pod(rng.choice(stale)), pod(rng.choice(pods)), "10.0.0.1"
        else:
            src, stext = {"labels": ["reserved:world"]}, "198.51.100.9"
            dst, dtext, dip = {"labels": ["reserved:world"]}, "8.8.8.8", "8.8.8.8"
        port, proto = rng.choice([(443, "TCP"), (5432, "TCP"), (53, "UDP"), (8080, "TCP")])
        if 0.5 <= kind < 0.7:
            oracle["ips"].setdefault((src["namespace"], port, proto), set()).add(dip)
        if kind >= 0.7 and kind < 0.85:
            oracle["unplaced"].add((stext, dtext, port, proto))
            oracle["stale"] += 1
        if kind >= 0.85:
            oracle["outside_only"] += 1
        flow = {"time": f"2026-11-30T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "verdict": "DROPPED" if rng.random() < 0.1 else "FORWARDED",
                "IP": {"source": "198.51.100.9" if kind >= 0.85 else "10.0.0.2", "destination": dip},
                "l4": {proto: {"destination_port": port}}, "source": src, "destination": dst, "Type": "L3_L4"}
        if rng.random() < 0.5 and kind < 0.85 and src.get("namespace") != "data":
            flow["source"] = {**src, "workloads": [{"name": src["pod_name"].rsplit("-", 2)[0], "kind": "Deployment"}]}
        lines.append(json.dumps({"flow": flow}))
    return lines, oracle


def _traffic(items):
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper, aggregate
    from audit.sources.manifests import load_manifests

    analysis = Analysis(load_manifests([str(EXAMPLES / "mixed-cluster")]))
    mapper = FlowMapper(analysis)
    return aggregate(mapper, items), mapper


def test_grouped_flows_are_placed_and_totalled_as_flows_one_by_one(tmp_path):
    lines, oracle = _capture(random.Random(11), 4000)
    path = tmp_path / "capture.jsonl"
    path.write_text("\n".join(lines) + "\n")
    items = list(read_groups([str(path)], ReadStats()))
    assert len(items) == 1 and not isinstance(items[0], Flow)  # DuckDB grouped the file
    fast, mapper = _traffic(items)
    slow, _ = _traffic(_read_lines(str(path), ReadStats()))
    rng = random.Random(3)
    rng.shuffle(lines)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("\n".join(lines) + "\n")
    again, _ = _traffic(_read_lines(str(shuffled), ReadStats()))
    for one in (slow, again):
        assert fast.pairs == one.pairs
        assert (fast.unmapped, fast.unmapped_examples, fast.outside_only) == (one.unmapped, one.unmapped_examples, one.outside_only)
        assert (fast.total.count, fast.total.dropped, fast.total.first, fast.total.last) == (
            one.total.count, one.total.dropped, one.total.first, one.total.last)
    # The oracles, from the lines as written.
    assert fast.total.count == 4000 and fast.outside_only == oracle["outside_only"] > 0
    expected = sorted(oracle["unplaced"])[:50]
    assert [e.split(": ")[0] for e in fast.unmapped_examples] == [f"{s} -> {d} {p}/{proto}" for s, d, p, proto in expected]
    assert len(fast.unmapped) == 30 and all(why.startswith("source no pod or workload backend/gone-") for why in fast.unmapped)
    assert sum(fast.unmapped.values()) == oracle["stale"] > 0
    outside = [(s, d, p, pr, t) for (s, d, p, pr), t in fast.pairs.items() if not isinstance(d, int)]
    assert max(len(t.seen("dst")) for *_k, t in outside) == 8  # the cap, reached
    for s, d, port, proto, t in outside:  # the smallest eight addresses of each pair's range, in text order
        seg = mapper.segments[d[1]]
        inside = sorted(ip for ip in oracle["ips"][(mapper.analysis.classes[s].namespace, port, proto)]
                        if ipaddress.ip_address(ip).version == seg.version and seg.first <= int(ipaddress.ip_address(ip)) <= seg.last)
        assert sorted(t.seen("dst")) == inside[:8]
    # Rotated files: each grouped apart, their placed totals summed (addresses: the smallest of both).
    folder = tmp_path / "rotated"
    folder.mkdir()
    (folder / "a.jsonl").write_text("\n".join(lines[:1500]) + "\n")
    (folder / "b.jsonl").write_text("\n".join(lines[1500:]) + "\n")
    items = list(read_groups([str(folder)], ReadStats()))
    assert len(items) == 2 and not any(isinstance(i, Flow) for i in items)
    rotated, _ = _traffic(items)
    assert rotated.pairs == fast.pairs and rotated.unmapped == fast.unmapped and rotated.unmapped_examples == fast.unmapped_examples
    # A flow between class 0 and an outside address is a pair, not "outside only"; IPv6 addresses land in their ranges.
    collector = mapper.by_name[("analytics", "collector")]
    assert collector == [0] and any(s == 0 and not isinstance(d, int) for (s, d, _p, _pr) in fast.pairs)
    assert any(":" in ip for *_k, t in outside for ip in t.seen("dst"))  # placed in the IPv6 range (no policy names one)
    postgres = [cid for cid in mapper.by_name[("data", "postgres")]]
    assert len(postgres) == 3 and any(d in postgres for (_s, d, _p, _pr) in fast.pairs)  # one end standing for three classes


def test_line_counts_add_up_over_the_files_of_a_folder(mixed, tmp_path):
    folder = tmp_path / "rotated"
    folder.mkdir()
    lines = mixed.read_text().splitlines()
    (folder / "1.jsonl").write_text("\n".join(lines[:1500]) + "\n")
    (folder / "2.jsonl").write_text("\n".join(lines[1500:]) + "\n")
    one, both = ReadStats(), ReadStats()
    list(read_groups([str(mixed)], one))
    list(read_groups([str(folder)], both))
    assert (both.lines, both.replies, both.skipped) == (one.lines, one.replies, one.skipped)
    assert len(one.skipped) >= 3 and one.replies > 0


def test_each_open_engine_spills_to_its_own_folder_and_leaves_none(mixed, tmp_path):
    """The groups of two files open at once (a caller listing them) never share a spill folder;
    reading them removes both."""
    import os
    import tempfile

    folder = tmp_path / "two"
    folder.mkdir()
    lines = mixed.read_text().splitlines()
    (folder / "1.jsonl").write_text("\n".join(lines[:1000]) + "\n")
    (folder / "2.jsonl").write_text("\n".join(lines[1000:]) + "\n")
    def spills() -> set[str]:
        return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith(f"netpol-audit-duckdb-{os.getpid()}-")}

    before = spills()
    first, second = read_groups([str(folder)], ReadStats())
    assert len(spills() - before) == 2
    assert sum(f.count for f in first.flows()) + sum(f.count for f in second.flows()) > 0
    assert spills() == before
    unread = flowsql.hubble(str(folder / "1.jsonl"), ReadStats())
    assert len(spills() - before) == 1
    del unread  # dropped unread: its engine closes and its folder goes
    assert spills() == before


_WITH_IPS = '"IP": {"source": "10.0.0.1", "destination": "10.0.0.2"}, '


@pytest.mark.parametrize("bad", [
    _WITH_IPS + '"l4": {"TCP": {"destination_port": 0}}, "source": {}, "destination": {}',
    _WITH_IPS + '"l4": {"TCP": {"destination_port": "80"}}, "source": {}, "destination": {}',
    _WITH_IPS + '"l4": {"TCP": {"destination_port": 80}}, "source": {"namespace": 5}, "destination": {}',
    _WITH_IPS + '"l4": {"TCP": {"destination_port": 80}}, "source": {}, "destination": {"pod_name": ["a"]}',
    _WITH_IPS + '"l4": {"TCP": {"destination_port": 80}}, "source": {}, "destination": {}, "time": "yesterday"',
    _WITH_IPS + '"l4": {"TCP": {"destination_port": 80}}, "source": {}, "destination": {}, "time": 5',
    '"IP": {"source": 7, "destination": "10.0.0.2"}, "l4": {"TCP": {"destination_port": 80}}, "source": {}, "destination": {}',
    '"IP": {"source": "10.0.0.1", "destination": false}, "l4": {"UDP": {"destination_port": 53}}, "source": {}, "destination": {}',
])
def test_a_field_of_the_wrong_type_seen_by_the_structured_reading_hands_the_file_over(tmp_path, bad):
    """Lines the structured reading sees (they have IPs) but the line reader refuses: at either end
    or in the port or time, the reading is not clean, and the line reader names the line."""
    path = tmp_path / "h.jsonl"
    path.write_text((LAB / "hubble.jsonl").read_text().splitlines()[0] + '\n{"flow": {"Type": "L3_L4", ' + bad + "}}\n")
    con = flowsql._connect()
    try:
        kinds, clean = flowsql._structured(con, str(path), flowsql.Window())
    finally:
        flowsql._close(con)
    assert "unclear" not in kinds and kinds["flow"] == 2 and not clean
    assert flowsql.hubble(str(path), ReadStats()) is None
    with pytest.raises(InputError, match="line 2: flow"):
        list(read_flows([str(path)], ReadStats()))


def test_two_ends_with_one_hash_send_the_file_to_the_path_lookups(tmp_path, monkeypatch):
    """Ends are grouped by a 64-bit hash: should two distinct ends share one, the structured reading
    says so and the path lookups (which compare ends in full) read the file."""
    rng = random.Random(11)
    path = tmp_path / "clean.jsonl"
    path.write_text("\n".join(clean_line(rng, i) for i in range(300)) + "\n")
    expected = same(path)
    monkeypatch.setattr(flowsql, "_STRUCTURED", flowsql._STRUCTURED.replace("hash(", "0 * hash("))  # every end collides
    con = flowsql._connect()
    try:
        assert flowsql._structured(con, str(path), flowsql.Window()) == ({"unclear": 1}, False)
    finally:
        flowsql._close(con)
    calls = _readings(monkeypatch)
    assert same(path) == expected
    assert calls == [("structured", f" LIMIT {flowsql.HEAD_LINES}"), ("structured", ""), ("paths", "")]


def test_labels_the_line_reader_cannot_decode_send_the_file_to_it(tmp_path):
    """A number past every float's range among a pod's labels: DuckDB reads it, the line reader's
    decoder does not; the file goes to the line reader, which names the line."""
    first = (LAB / "hubble.jsonl").read_text().splitlines()[0]
    odd = first.replace('"labels":[', '"labels":[1e400,', 1)
    assert odd != first
    path = tmp_path / "h.jsonl"
    path.write_text(first + "\n" + odd + "\n")
    assert flowsql.hubble(str(path), ReadStats()) is None
    with pytest.raises(InputError, match="line 2: not a JSON object"):
        list(read_flows([str(path)], ReadStats()))


def test_two_ends_alike_but_for_the_pod_and_one_hash_are_told_apart(tmp_path, monkeypatch):
    """The likely collision: exactly two ends share a hash (made here by leaving the pod out of it).
    The structured reading sees the two, and the path lookups read the file as the line reader does."""
    first = (LAB / "hubble.jsonl").read_text().splitlines()[0]
    other = first.replace('"pod_name":"web"', '"pod_name":"web-2"', 1)
    assert other != first
    path = tmp_path / "h.jsonl"
    path.write_text(first + "\n" + other + "\n")
    expected = same(path)
    query = flowsql._STRUCTURED.replace("hash(sns, spod, ", "hash(sns, ").replace("hash(dns_, dpod, ", "hash(dns_, ")
    assert query.count("hash(") == 2 and "spod, sip" not in query.split("AS hs")[0].rsplit("hash(", 1)[1]
    monkeypatch.setattr(flowsql, "_STRUCTURED", query)
    con = flowsql._connect()
    try:
        assert flowsql._structured(con, str(path), flowsql.Window()) == ({"unclear": 1}, False)
    finally:
        flowsql._close(con)
    assert same(path) == expected


def test_the_structured_reading_keeps_a_window(tmp_path, monkeypatch):
    """A clean export read with --since/--until: only the structured reading runs, it keeps the
    flows the line reader keeps, and places only the ends of those flows."""
    import datetime as dt

    rng = random.Random(12)
    path = tmp_path / "clean.jsonl"
    path.write_text("\n".join(clean_line(rng, i) for i in range(600)) + "\n")
    window = flowsql.Window(dt.datetime(2026, 11, 30, 10, 0, 20, tzinfo=dt.UTC), dt.datetime(2026, 11, 30, 10, 0, 40, tzinfo=dt.UTC))
    inside = [f for f in _read_lines(str(path), ReadStats()) if window.holds(f.last)]
    calls = _readings(monkeypatch)
    groups = flowsql.hubble(str(path), ReadStats(), window)
    assert groups is not None and calls == [("structured", f" LIMIT {flowsql.HEAD_LINES}"), ("structured", "")]
    assert len(groups.ends()) == len({f.src for f in inside} | {f.dst for f in inside}) < len(
        {f.src for f in _read_lines(str(path), ReadStats())} | {f.dst for f in _read_lines(str(path), ReadStats())})
    assert aggregate(read_flows([str(path)], ReadStats(), window)) == aggregate(inside) != {}


def test_the_structured_reading_sums_a_pair_its_lines_write_differently(tmp_path, monkeypatch):
    """One pair in lines that differ in what they write but not in what they mean (is_reply false or
    absent, the port as destination_port or jsonpb's destinationPort): one pair, its first and last
    time those of both lines. A line with one address (its source another end) is read too: all by
    the structured reading."""
    head = '{"flow":{"Type":"L3_L4","source":' + _POD + ',"destination":' + _POD.replace("p1", "p2")
    lines = [
        head + ',"l4":{"TCP":{"destination_port":80}},' + _IPS + ',"time":"2026-11-30T10:00:05Z"}}',
        head + ',"l4":{"TCP":{"destinationPort":80}},' + _IPS + ',"is_reply":false,"time":"2026-11-30T10:00:01Z"}}',
        head + ',"l4":{"TCP":{"destination_port":80}},"IP":{"destination":"10.0.0.2"},"is_reply":false,"time":"2026-11-30T10:00:09Z"}}',
    ]
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert flowsql.hubble(str(path), ReadStats()) is not None  # never handed to the line reader
    calls = _readings(monkeypatch)
    got = same(path)
    assert calls == [("structured", f" LIMIT {flowsql.HEAD_LINES}"), ("structured", "")]
    assert sorted(got.values()) == [(1, "2026-11-30T10:00:09.000000Z", "2026-11-30T10:00:09.000000Z"),
                                    (2, "2026-11-30T10:00:01.000000Z", "2026-11-30T10:00:05.000000Z")]


@pytest.mark.parametrize("raw,labels", [
    (["k8s:app=web", "k8s:tier=front"], (("app", "web"), ("tier", "front"))),
    (["k8s:tier=front", "k8s:app=web"], (("app", "web"), ("tier", "front"))),  # sorted
    (["k8s:io.kubernetes.pod.namespace=a", "k8s:io.cilium.k8s.policy.cluster=c", "k8s:app=web"], (("app", "web"),)),
    (["k8s:io.kubernetes", "k8s:iox.cilium.thing=1"], (("iox.cilium.thing", "1"),)),  # no "=": no label
    (["reserved:world", "k8s:a=b=c", "container:x=y", 5, None, {"k8s:a": "b"}], (("a", "b=c"),)),
    ("k8s:app=web", ()),
    (None, ()),
])
def test_the_labels_of_kubernetes_in_a_cilium_label_list(raw, labels):
    assert flowsql.kubernetes_labels(raw) == labels
    seen: dict = {}
    assert flowsql.kubernetes_labels(raw, seen) == labels == flowsql.kubernetes_labels(raw, seen)  # the items seen before read alike
