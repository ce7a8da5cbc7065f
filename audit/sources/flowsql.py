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

_STRING_FIELDS = ("namespace", "pod_name", "podName")

# Every line is classified once; only flows (kind 'flow') are grouped.
_CLASSIFY = """
WITH raw AS (SELECT json AS j FROM read_json_objects({files}, format='newline_delimited', compression='auto_detect')),
w AS (
  SELECT j, CASE WHEN json_type(j, '$.flow') = 'OBJECT' THEN json_extract(j, '$.flow') ELSE j END AS x,
         json_type(j) AS jt, json_type(j, '$.flow') AS ft FROM raw
),
c AS (
  SELECT x, jt, ft,
    (json_keys(j))[1] AS firstkey,
    json_exists(j, '$.src') OR json_exists(j, '$.dst') AS plain,
    (json_exists(j, '$.flow') OR json_exists(j, '$.l4') OR json_exists(j, '$.source') OR json_exists(j, '$.destination')
      OR json_exists(j, '$.IP') OR json_exists(j, '$.Type')) AS flowish,
    coalesce(nullif(json_extract_string(x, '$.Type'), ''), nullif(json_extract_string(x, '$.type'), '')) AS typ,
    json_type(x, '$.l4') AS l4t,
    (json_keys(json_extract(x, '$.l4')))[1] AS proto,
    coalesce(json_extract(x, '$.is_reply'), json_extract(x, '$.isReply')) AS reply
  FROM w
),
k AS (
  SELECT *,
    CASE
      WHEN jt <> 'OBJECT' OR plain THEN 'odd'
      WHEN NOT flowish THEN 'skip:not a flow (' || coalesce(firstkey, 'empty') || ')'
      WHEN ft IS NOT NULL AND ft <> 'OBJECT' THEN 'odd'
      WHEN json_keys(x) = [] THEN 'skip:no flow'
      WHEN NOT (typ = 'L3_L4' OR (typ IS NULL AND l4t = 'OBJECT')) THEN 'skip:' || coalesce(typ, 'no l4')
      WHEN reply IS NOT NULL AND json_type(reply) NOT IN ('BOOLEAN', 'NULL') AND reply::VARCHAR <> '{{"value":true}}' THEN 'odd'
      WHEN reply::VARCHAR IN ('true', '{{"value":true}}') THEN 'reply'
      WHEN l4t IS DISTINCT FROM 'OBJECT' OR json_keys(json_extract(x, '$.l4')) = [] THEN 'skip:no l4'
      WHEN proto NOT IN ('TCP', 'UDP', 'SCTP') THEN 'skip:protocol ' || proto
      ELSE 'flow'
    END AS kind
  FROM c
)
"""

_GROUP = _CLASSIFY + """,
f AS (
  SELECT
    json_extract(x, '$.source') AS s, json_extract(x, '$.destination') AS d,
    coalesce(json_extract(x, '$.l4."' || proto || '".destination_port'), json_extract(x, '$.l4."' || proto || '".destinationPort')) AS portj,
    proto, json_extract_string(x, '$.verdict') = 'DROPPED' AS dropped,
    json_extract(x, '$.time') AS timej,
    coalesce(json_extract(x, '$.IP.source'), json_extract(x, '$.ip.source')) AS sipj,
    coalesce(json_extract(x, '$.IP.destination'), json_extract(x, '$.ip.destination')) AS dipj
  FROM k WHERE kind = 'flow'
),
g AS (
  SELECT
    json_extract(s, '$.namespace') AS sns, coalesce(json_extract(s, '$.pod_name'), json_extract(s, '$.podName')) AS spod,
    sipj AS sip, json_extract(s, '$.workloads[0].name') AS swl, json_extract(s, '$.labels') AS slab,
    json_extract(d, '$.namespace') AS dns_, coalesce(json_extract(d, '$.pod_name'), json_extract(d, '$.podName')) AS dpod,
    dipj AS dip, json_extract(d, '$.workloads[0].name') AS dwl, json_extract(d, '$.labels') AS dlab,
    portj, proto, dropped, timej,
    try_cast(json_extract_string(timej, '$') AS TIMESTAMPTZ) AS ts,
    json_type(s) AS st, json_type(d) AS dt_
  FROM f
)
"""

_CHECK = _GROUP + """
SELECT count(*) FROM g WHERE
  (st IS NOT NULL AND st <> 'OBJECT') OR (dt_ IS NOT NULL AND dt_ <> 'OBJECT')
  OR json_type(portj) IS DISTINCT FROM 'UBIGINT' OR portj::BIGINT NOT BETWEEN 1 AND 65535
  OR (timej IS NOT NULL AND (json_type(timej) <> 'VARCHAR' OR ts IS NULL) AND json_extract_string(timej, '$') <> '')
  OR (json_type(sns) NOT IN ('VARCHAR', 'NULL')) OR (json_type(spod) NOT IN ('VARCHAR', 'NULL')) OR (json_type(sip) NOT IN ('VARCHAR', 'NULL'))
  OR (json_type(dns_) NOT IN ('VARCHAR', 'NULL')) OR (json_type(dpod) NOT IN ('VARCHAR', 'NULL')) OR (json_type(dip) NOT IN ('VARCHAR', 'NULL'))
"""

_ROWS = _GROUP + """
SELECT json_extract_string(sns, '$'), json_extract_string(spod, '$'), json_extract_string(sip, '$'), json_extract_string(swl, '$'),
       slab::VARCHAR, json_extract_string(dns_, '$'), json_extract_string(dpod, '$'), json_extract_string(dip, '$'),
       json_extract_string(dwl, '$'), dlab::VARCHAR, portj::INTEGER, proto, coalesce(dropped, false),
       count(*), min(ts), max(ts)
FROM g {where}
GROUP BY ALL
"""

_STATS = _CLASSIFY + "SELECT kind, count(*) FROM k GROUP BY kind"


@dataclass(frozen=True)
class Window:
    """--since / --until: only flows seen in [since, until)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def sql(self) -> str:
        terms = []
        if self.since is not None:
            terms.append(f"ts >= TIMESTAMPTZ '{self.since.isoformat()}'")
        if self.until is not None:
            terms.append(f"ts < TIMESTAMPTZ '{self.until.isoformat()}'")
        return "WHERE " + " AND ".join(terms) if terms else ""

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
    the line-by-line reader (it then names the line that is wrong, or reads what is unusual)."""
    import duckdb

    con = _connect()
    files = _literal([path])
    try:
        kinds = dict(con.execute(_STATS.format(files=files)).fetchall())
        if kinds.get("odd") or con.execute(_CHECK.format(files=files)).fetchone()[0]:
            _close(con)
            return None
    except duckdb.Error:
        _close(con)
        return None
    lines = sum(kinds.values())
    stats.lines += lines
    stats.replies += kinds.get("reply", 0)
    for kind, count in kinds.items():
        if kind.startswith("skip:"):
            stats.skipped[kind[5:]] = stats.skipped.get(kind[5:], 0) + count
    return _rows(con, _ROWS.format(files=files, where=window.sql()))


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
