"""Flow captures read and grouped by DuckDB before any Python work per flow.

A Hubble export is millions of lines an hour. DuckDB (an embedded columnar engine, a wheel with no
system dependency) reads the JSON lines (plain, gzip or zstd), decides what each line is exactly as
the line-by-line reader in ``audit.sources.flows`` does, and groups the flows per (source end,
destination end, port, protocol, verdict): Python then sees one record per group, never per line,
and memory follows the groups (DuckDB spills to disk past its own limit).

The same grouping applies to the grouped form (``src``, ``dst``, ``port``, ``protocol``, ``count``,
``first``, ``last``, ``verdict``) in CSV or Parquet: what a flow lake's own SQL writes (the README
has it), read here like raw flows.

A file the engine cannot read cleanly (a line that is not JSON, a field of the wrong type, a time
that does not parse, plain rows mixed into a Hubble export) is handed to the line-by-line reader,
which names the line and the field, or reads it the general way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import InputError
from audit.observed import Flow, FlowEnd, ReadStats

# Each line is parsed once: one json_extract of every path the reader needs, from the `flow` wrapper
# and from a bare flow alike (a path list is one parse; a call per path would parse the line again).
# read_json_objects hands each value's own text: an object is the text that starts with "{".
_FIELDS = ("Type", "type", "l4", "is_reply", "isReply", "verdict", "time", "source", "destination",
           "source.namespace", "source.pod_name", "source.podName", "source.workloads[0].name", "source.labels",
           "destination.namespace", "destination.pod_name", "destination.podName", "destination.workloads[0].name",
           "destination.labels", "IP.source", "ip.source", "IP.destination", "ip.destination")
_ROOT = ("flow", "src", "dst", "IP")
_PATHS = [f"$.flow.{p}" for p in _FIELDS] + [f"$.{p}" for p in _FIELDS] + [f"$.{p}" for p in _ROOT]


def _field(name: str) -> str:
    """The field of x (the `flow` object when the line wraps one, else the line)."""
    i = _FIELDS.index(name) + 1
    return f"CASE WHEN ft = 'OBJECT' THEN e[{i}] ELSE e[{len(_FIELDS) + i}] END"


def _root(name: str) -> str:
    return f"e[{2 * len(_FIELDS) + _ROOT.index(name) + 1}]"


def _bare(name: str) -> str:
    return f"e[{len(_FIELDS) + _FIELDS.index(name) + 1}]"


def _str(column: str) -> str:
    return f"json_extract_string({column}, '$')"


# Every line classified exactly as the line reader does (flow, reply, skipped with its reason, or
# odd: not for this engine), flows checked for the types the line reader insists on (bad), and all
# of it grouped in the same pass: per (kind, bad, in the window, source end, destination end, port,
# protocol, verdict) with the count and the first and last time.
_HUBBLE = f"""
WITH raw AS (SELECT json AS j FROM read_json_objects({{files}}, format='newline_delimited', compression='auto_detect')),
e AS (SELECT j, starts_with(j, '{{{{') AS object, json_extract(j, [{", ".join(repr(p) for p in _PATHS)}]) AS e FROM raw),
w AS (SELECT *, json_type({_root("flow")}) AS ft FROM e),
v AS (
  SELECT j, object, ft,
    coalesce(nullif({_str(_field("Type"))}, ''), nullif({_str(_field("type"))}, '')) AS typ,
    {_field("l4")} AS l4, coalesce({_field("is_reply")}, {_field("isReply")}) AS reply,
    {_str(_field("verdict"))} = 'DROPPED' AS dropped, {_field("time")} AS timej,
    json_type({_field("source")}) AS st, json_type({_field("destination")}) AS dt_,
    {_field("source.namespace")} AS sns, coalesce({_field("source.pod_name")}, {_field("source.podName")}) AS spod,
    {_field("source.workloads[0].name")} AS swl, {_field("source.labels")} AS slab,
    {_field("destination.namespace")} AS dns_, coalesce({_field("destination.pod_name")}, {_field("destination.podName")}) AS dpod,
    {_field("destination.workloads[0].name")} AS dwl, {_field("destination.labels")} AS dlab,
    coalesce({_field("IP.source")}, {_field("ip.source")}) AS sip, coalesce({_field("IP.destination")}, {_field("ip.destination")}) AS dip,
    {_root("src")} IS NOT NULL OR {_root("dst")} IS NOT NULL AS plain,
    ({_root("flow")} IS NOT NULL OR {_bare("l4")} IS NOT NULL OR {_bare("source")} IS NOT NULL OR {_bare("destination")} IS NOT NULL
      OR {_root("IP")} IS NOT NULL OR {_bare("Type")} IS NOT NULL) AS flowish,
    ft = 'OBJECT' AND {_root("flow")}::VARCHAR = '{{{{}}}}' AS noflow
  FROM w
),
c AS (SELECT *, json_type(l4) AS l4t, (json_keys(l4))[1] AS proto FROM v),
k AS (
  SELECT *,
    CASE
      WHEN NOT object OR plain THEN 'odd'
      WHEN NOT flowish THEN 'skip:not a flow (' || coalesce((json_keys(j))[1], 'empty') || ')'
      WHEN ft IS NOT NULL AND ft <> 'OBJECT' THEN 'odd'
      WHEN noflow THEN 'skip:no flow'
      WHEN NOT (typ = 'L3_L4' OR (typ IS NULL AND l4t = 'OBJECT')) THEN 'skip:' || coalesce(typ, 'no l4')
      WHEN reply IS NOT NULL AND json_type(reply) NOT IN ('BOOLEAN', 'NULL') AND reply::VARCHAR <> '{{{{"value":true}}}}' THEN 'odd'
      WHEN reply::VARCHAR IN ('true', '{{{{"value":true}}}}') THEN 'reply'
      WHEN l4t IS DISTINCT FROM 'OBJECT' OR json_keys(l4) = [] THEN 'skip:no l4'
      WHEN proto NOT IN ('TCP', 'UDP', 'SCTP') THEN 'skip:protocol ' || proto
      ELSE 'flow'
    END AS kind
  FROM c
),
f AS (
  SELECT *, coalesce(json_extract(l4, '$."' || proto || '".destination_port'), json_extract(l4, '$."' || proto || '".destinationPort')) AS portj,
         try_cast({_str("timej")} AS TIMESTAMPTZ) AS ts
  FROM k WHERE kind = 'flow'
),
g AS (
  SELECT *,
    (st IS NOT NULL AND st <> 'OBJECT') OR (dt_ IS NOT NULL AND dt_ <> 'OBJECT')
    OR json_type(portj) IS DISTINCT FROM 'UBIGINT' OR portj::BIGINT NOT BETWEEN 1 AND 65535
    OR (timej IS NOT NULL AND (json_type(timej) <> 'VARCHAR' OR ts IS NULL) AND {_str("timej")} <> '')
    OR json_type(sns) NOT IN ('VARCHAR', 'NULL') OR json_type(spod) NOT IN ('VARCHAR', 'NULL') OR json_type(sip) NOT IN ('VARCHAR', 'NULL')
    OR json_type(dns_) NOT IN ('VARCHAR', 'NULL') OR json_type(dpod) NOT IN ('VARCHAR', 'NULL') OR json_type(dip) NOT IN ('VARCHAR', 'NULL')
    AS bad
  FROM f
)
SELECT 'flow' AS kind, bad, {{window}} AS inside,
       {_str("sns")} AS sns, {_str("spod")} AS spod, {_str("sip")} AS sip, {_str("swl")} AS swl, slab::VARCHAR AS slab,
       {_str("dns_")} AS dns_, {_str("dpod")} AS dpod, {_str("dip")} AS dip, {_str("dwl")} AS dwl, dlab::VARCHAR AS dlab,
       CASE WHEN bad THEN NULL ELSE portj::INTEGER END AS port, proto, coalesce(dropped, false) AS dropped,
       count(*) AS n, min(ts) AS first, max(ts) AS last
FROM g GROUP BY ALL
UNION ALL
SELECT kind, false, false, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, count(*), NULL, NULL
FROM k WHERE kind <> 'flow' GROUP BY kind
"""


@dataclass(frozen=True)
class Window:
    """--since / --until: only flows seen in [since, until)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def sql(self) -> str:
        """The window as a condition on a line's time ``ts`` (true without bounds)."""
        terms = []
        if self.since is not None:
            terms.append(f"ts >= TIMESTAMPTZ '{self.since.isoformat()}'")
        if self.until is not None:
            terms.append(f"ts < TIMESTAMPTZ '{self.until.isoformat()}'")
        return "coalesce(" + " AND ".join(terms) + ", false)" if terms else "true"

    def holds(self, stamp: str | None) -> bool:
        if self.since is None and self.until is None:
            return True
        if stamp is None:
            return False
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return (self.since is None or when >= self.since) and (self.until is None or when < self.until)


MEMORY_LIMIT = "1GB"
"""DuckDB's own memory (past it, it spills to a temporary folder): the groups, not the lines, stay in memory."""


def _connect() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")  # a time without an offset is UTC, as the line reader reads it
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    # Spill under the system's temporary folder, never the working directory (DuckDB's default).
    spill = Path(tempfile.gettempdir()) / f"netpol-audit-duckdb-{os.getpid()}"
    con.execute(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")
    return con


def _literal(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _stamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def hubble(path: str, stats: ReadStats, window: Window = Window()) -> Iterator[Flow] | None:
    """One Hubble JSON-lines file (plain, .gz or .zst) as grouped flows; None when the file needs
    the line-by-line reader (it then names the line that is wrong, or reads what is unusual).

    One pass over the file: the groups land in a temporary table (DuckDB's memory, spilled past
    its limit), the line counts are read from it, and only then are the flows streamed out."""
    import duckdb

    con = _connect()
    try:
        con.execute("CREATE TEMP TABLE groups AS " + _HUBBLE.format(files=_literal([path]), window=window.sql()))
        kinds = dict(con.execute("SELECT kind, sum(n) FROM groups GROUP BY kind").fetchall())
        if kinds.get("odd") or con.execute("SELECT count(*) FROM groups WHERE bad").fetchone()[0]:
            _close(con)
            return None
    except duckdb.Error:
        _close(con)
        return None
    stats.lines += int(sum(kinds.values()))
    stats.replies += int(kinds.get("reply", 0))
    for kind, count in kinds.items():
        if kind.startswith("skip:"):
            stats.skipped[kind[5:]] = stats.skipped.get(kind[5:], 0) + int(count)
    return _rows(con, "SELECT sns, spod, sip, swl, slab, dns_, dpod, dip, dwl, dlab, port, proto, dropped, n, first, last "
                      "FROM groups WHERE kind = 'flow' AND inside")


def _close(con: Any) -> None:
    """Close the engine and remove its spill folder."""
    con.close()
    shutil.rmtree(Path(tempfile.gettempdir()) / f"netpol-audit-duckdb-{os.getpid()}", ignore_errors=True)


def _rows(con: Any, query: str) -> Iterator[Flow]:
    ends: dict[tuple[Any, ...], FlowEnd] = {}
    try:
        result = con.execute(query)
        while batch := result.fetchmany(20_000):
            for sns, spod, sip, swl, slab, dns, dpod, dip, dwl, dlab, port, proto, dropped, count, first, last in batch:
                src = _end(ends, sns, spod, sip, swl, slab)
                dst = _end(ends, dns, dpod, dip, dwl, dlab)
                yield Flow(src, dst, port, proto, count, _stamp(first), _stamp(last), bool(dropped))
    finally:
        _close(con)


def _end(ends: dict[tuple[Any, ...], FlowEnd], namespace: str | None, name: str | None, ip: str | None, workload: str | None,
         labels: str | None) -> FlowEnd:
    key = (namespace, name, ip, workload, labels)
    hit = ends.get(key)
    if hit is None:
        pairs = []
        parsed = json.loads(labels) if labels else ()
        for raw in parsed if isinstance(parsed, list) else ():
            if isinstance(raw, str) and raw.startswith("k8s:") and "=" in raw:
                label, _, value = raw[4:].partition("=")
                if not label.startswith(("io.kubernetes.", "io.cilium.")):
                    pairs.append((label, value))
        hit = FlowEnd(namespace or None, name or None, ip or None, tuple(sorted(pairs)), workload)
        if len(ends) > 200_000:
            ends.clear()
        ends[key] = hit
    return hit


_PLAIN = """
SELECT trim(src::VARCHAR), trim(dst::VARCHAR), port::VARCHAR, upper(coalesce(nullif(trim(protocol::VARCHAR), ''), 'TCP')),
       upper(coalesce(verdict::VARCHAR, '')) = 'DROPPED', sum(coalesce(try_cast(count AS BIGINT), 1)),
       min(first::VARCHAR), max(coalesce(nullif(last::VARCHAR, ''), first::VARCHAR)), count(*)
FROM {source} GROUP BY ALL
"""


def grouped(path: str, stats: ReadStats) -> Iterator[dict[str, Any]]:
    """The grouped form in Parquet: src, dst, port, protocol, count, first, last, verdict, summed
    per (src, dst, port, protocol, verdict), as plain flow fields for the plain reader to check;
    absent optional columns default as the CSV reader's do."""
    import duckdb

    con = _connect()
    reader = f"read_parquet('{path.replace(chr(39), chr(39) * 2)}')"
    try:
        columns = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
    except duckdb.Error as exc:
        _close(con)
        raise InputError(f"{path}: not a Parquet file of flows ({str(exc).splitlines()[0]})") from None
    missing = {"src", "dst", "port"} - columns
    if missing:
        _close(con)
        raise InputError(f"{path}: the columns lack {', '.join(sorted(missing))} (columns: src, dst, port, protocol, count, first, last, verdict)")
    select = ", ".join(c if c in columns else f"NULL AS {c}" for c in ("src", "dst", "port", "protocol", "count", "first", "last", "verdict"))
    try:
        rows = con.execute(_PLAIN.format(source=f"(SELECT {select} FROM {reader})")).fetchall()
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read the flows ({str(exc).splitlines()[0]})") from None
    finally:
        _close(con)
    for src, dst, port, protocol, dropped, count, first, last, lines in rows:
        stats.lines += lines
        yield {"src": src, "dst": dst, "port": port, "protocol": protocol, "count": count, "first": first or None,
               "last": last or None, "verdict": "DROPPED" if dropped else ""}
