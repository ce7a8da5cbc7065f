"""Denied flow rows bounded (--top): the rows with the most flows, the totals of every row, in the
engine, the check, every format and the exit code. The oracle is the capture as written: each
row's flows are the counts of its lines, and the order is most flows first, then by text."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.config import Config
from audit.engine.analysis import Analysis
from audit.engine.flows import FlowMapper, aggregate, would_break
from audit.observed import ReadStats
from audit.pipeline import observe, report_of
from audit.sources.flows import flow_input, read_flows
from audit.sources.manifests import load_manifests
from tests.conftest import EXAMPLES

SOLUTION = EXAMPLES / "lab-solution"
NOW = ("--now", "2026-01-01T00:00:00Z")
# frontend/web -> database/db is denied by the lab's solution on every port: one row per port.
# (port, flows, of them DROPPED): ties on flows are ordered by the row's text, here the port.
ROWS = [(1001, 5, 0), (1002, 9, 9), (1003, 5, 2), (1004, 1, 0), (1005, 9, 0), (1006, 3, 3)]
ORDER = [1002, 1005, 1001, 1003, 1006, 1004]


def _capture(tmp_path: Path, rows: list[tuple[int, int, int]] = ROWS) -> Path:
    lines = ["src,dst,port,protocol,count,first,last,verdict"]
    for port, flows, dropped in rows:
        if flows - dropped:
            lines.append(f"frontend/web,database/db,{port},TCP,{flows - dropped},2026-11-30T10:00:0{port % 10}Z,2026-11-30T10:00:1{port % 10}Z,")
        if dropped:
            lines.append(f"frontend/web,database/db,{port},TCP,{dropped},2026-11-30T09:00:0{port % 10}Z,2026-11-30T10:00:05Z,DROPPED")
    capture = tmp_path / "capture.csv"
    capture.write_text("\n".join(lines) + "\n")
    return capture


def _engine(tmp_path: Path):
    analysis = Analysis(load_manifests([str(SOLUTION)]))
    mapper = FlowMapper(analysis)
    return analysis, mapper, aggregate(mapper, read_flows([str(_capture(tmp_path))], ReadStats()))


@pytest.mark.parametrize("top", [1, 2, 3, 5])
def test_the_rows_kept_are_those_with_the_most_flows_and_the_totals_count_every_row(tmp_path, top):
    analysis, mapper, traffic = _engine(tmp_path)
    denied = would_break(analysis, mapper, traffic, top=top)
    assert [row.port for row in denied.rows] == ORDER[:top]
    flows = {port: n for port, n, _ in ROWS}
    assert [row.count for row in denied.rows] == [flows[p] for p in ORDER[:top]]
    assert denied.total == len(ROWS)
    assert denied.flows == sum(n for _, n, _ in ROWS) and denied.dropped == sum(d for _, _, d in ROWS)
    assert denied.flows - denied.dropped == sum(n - d for _, n, d in ROWS)  # forwarded: what the exit code counts


@pytest.mark.parametrize("top", [0, 6, 7])
def test_no_cut_when_top_is_zero_or_at_least_every_row(tmp_path, top):
    analysis, mapper, traffic = _engine(tmp_path)
    denied = would_break(analysis, mapper, traffic, top=top)
    assert [row.port for row in denied.rows] == ORDER and denied.total == len(ROWS)
    by_port = {row.port: row for row in denied.rows}
    assert {p: (r.count, r.dropped) for p, r in by_port.items()} == {p: (n, d) for p, n, d in ROWS}
    # 1003: the DROPPED lines came first, the forwarded ones last.
    assert by_port[1003].first == "2026-11-30T09:00:03.000000Z" and by_port[1003].last == "2026-11-30T10:00:13.000000Z"


def test_the_check_lists_the_rows_kept_and_says_the_rest_once(tmp_path):
    analysis = Analysis(load_manifests([str(SOLUTION)]))
    observed, stats = observe(analysis, flow_input([str(_capture(tmp_path))]), top=2)
    report = report_of(analysis, Config(), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), observed, stats)
    hits = [f for f in report.findings if f.check == "NP-FLOW-001"]
    listed = [f for f in hits if f.name != "(the rest)"]
    assert sorted(f.message.split(" on TCP/")[1].split(" ")[0] for f in listed) == ["1002", "1005"]
    [rest] = [f for f in hits if f.name == "(the rest)"]
    assert rest.message.startswith("4 more denied (source, destination, port) rows with 14 observed flow(s)")
    assert report.traffic is not None and len(report.traffic.would_break) == 2
    totals = report.traffic.would_break_totals
    assert totals is not None and (totals.rows, totals.flows, totals.dropped, totals.top) == (6, 32, 14, 2)

    observed, stats = observe(analysis, flow_input([str(_capture(tmp_path))]), top=0)
    every = report_of(analysis, Config(), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), observed, stats)
    assert len([f for f in every.findings if f.check == "NP-FLOW-001"]) == 6
    assert not [f for f in every.findings if f.name == "(the rest)"]


def _flows(*args: str):
    return CliRunner().invoke(app, ["flows", *args, *NOW])


def test_every_format_says_the_totals_and_where_the_rest_is(tmp_path):
    capture = _capture(tmp_path)
    out, html = tmp_path / "r.json", tmp_path / "r.html"
    result = _flows(str(capture), str(SOLUTION), "--top", "2", "--json", str(out), "--html", str(html))
    assert result.exit_code == 1, result.output
    assert "Would break (6): observed flows these policies deny, 32 flow(s) in all, 14 of them seen DROPPED" in result.stdout
    assert "... 4 more row(s), none with more flows (the JSON result lists the first 2 denied rows; --top 0 lists every one)" in result.stdout
    data = json.loads(out.read_text())
    assert [row["port"] for row in data["traffic"]["wouldBreak"]] == [1002, 1005]
    assert data["traffic"]["wouldBreakTotals"] == {"rows": 6, "flows": 32, "dropped": 14, "top": 2}
    page = html.read_text()
    assert "Would break (6)" in page and "32 denied flow(s) in all, 14 of them seen DROPPED" in page
    assert "and 4 more, none with more flows: the JSON result lists the first 2 (--top 0 lists every one)" in page

    every = _flows(str(capture), str(SOLUTION), "--top", "0", "-f", "json")
    data = json.loads(every.stdout)
    assert [row["port"] for row in data["traffic"]["wouldBreak"]] == ORDER
    assert data["traffic"]["wouldBreakTotals"]["top"] == 0


def test_the_exit_code_counts_the_rows_not_listed(tmp_path):
    # The row listed was DROPPED already; the one past the cut was forwarded: applying stops it.
    capture = _capture(tmp_path, [(1002, 9, 9), (1004, 1, 0)])
    assert _flows(str(capture), str(SOLUTION), "--top", "1").exit_code == 1
    dropped = _capture(tmp_path, [(1002, 9, 9), (1004, 1, 1)])
    assert _flows(str(dropped), str(SOLUTION), "--top", "1").exit_code == 0


def test_top_must_not_be_negative(tmp_path):
    result = _flows(str(_capture(tmp_path)), str(SOLUTION), "--top", "-1")
    assert result.exit_code == 2


def test_a_result_before_the_totals_reads_back_with_its_rows_as_the_totals(tmp_path):
    from audit.render.json_report import load_report

    data = json.loads(_flows(str(_capture(tmp_path)), str(SOLUTION), "--top", "0", "-f", "json").stdout)
    data["schemaVersion"] = "2.1"
    del data["traffic"]["wouldBreakTotals"]
    report = load_report(json.dumps(data), "old.json")
    assert report.traffic is not None and report.traffic.would_break_totals is None
    assert report.traffic.denied_rows == 6 and report.traffic.denied_forwarded == 32 - 14


def test_a_denied_row_to_outside_addresses_names_the_addresses_seen(tmp_path):
    capture = tmp_path / "out.csv"
    capture.write_text("src,dst,port,protocol\nfrontend/web,8.8.8.8,443,TCP\nfrontend/web,8.8.4.4,443,TCP\n"
                       "frontend/web,database/db,5432,TCP\n")
    analysis = Analysis(load_manifests([str(SOLUTION)]))
    mapper = FlowMapper(analysis)
    traffic = aggregate(mapper, read_flows([str(capture)], ReadStats()))
    rows = {(row.dst, row.port): row.count for row in would_break(analysis, mapper, traffic).rows}
    assert rows == {("8.8.4.4, 8.8.8.8", 443): 2, ("database/db[Pod]", 5432): 1}
