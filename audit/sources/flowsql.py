"""Flow captures read and grouped by DuckDB before any Python work per flow.

A Hubble export is millions of lines an hour. DuckDB (an embedded columnar engine, a wheel with no
system dependency) reads the JSON lines (plain, gzip or zstd), decides what each line is exactly as
the line-by-line reader in ``audit.sources.flows`` does, and groups the flows per (source end,
destination end, port, protocol, verdict): Python then sees one record per group, never per line,
and memory follows the groups (DuckDB spills to disk past its own limit). Two readings give the
same groups: DuckDB's JSON reader taking the few fields needed (what Hubble's exporter writes),
and path lookups on each line's text for what that reader cannot see.

The same grouping applies to the grouped form (``src``, ``dst``, ``port``, ``protocol``, ``count``,
``first``, ``last``, ``verdict``) in CSV or Parquet: what a flow lake's own SQL writes (the README
has it), read here like raw flows.

A file the engine cannot read cleanly (a line that is not JSON, a field of the wrong type, a time
that does not parse, plain rows mixed into a Hubble export) is handed to the line-by-line reader,
which names the line and the field, or reads it the general way.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from audit.errors import InputError
from audit.observed import Flow, FlowEnd, Placed, Placement, ReadStats

# Each line is parsed once: one json_extract of every path the reader needs, from the `flow` wrapper
# and from a bare flow alike (a path list is one parse; a call per path would parse the line again).
# read_json_objects hands each value's own text: an object is the text that starts with "{".
_PORTS = tuple(f"l4.{proto}.{name}" for proto in ("TCP", "UDP", "SCTP") for name in ("destination_port", "destinationPort"))
_FIELDS = ("Type", "type", "l4", "is_reply", "isReply", "verdict", "time", "source", "destination",
           "source.namespace", "source.pod_name", "source.podName", "source.workloads[0].name", "source.labels",
           "destination.namespace", "destination.pod_name", "destination.podName", "destination.workloads[0].name",
           "destination.labels", "IP.source", "ip.source", "IP.destination", "ip.destination") + _PORTS
_ROOT = ("flow", "src", "dst", "IP")
_PATHS = [f"$.flow.{p}" for p in _FIELDS] + [f"$.{p}" for p in _FIELDS] + [f"$.{p}" for p in _ROOT]
# A line that opens with a `flow` object (what Hubble's exporter writes) needs no bare path: its
# fields are the flow's. Nor the objects themselves (the flow, its source and destination): writing
# them out as text and reading that text again for its type cost more than all the other paths.
# Their places hold a path that is cheap to find, never read (``_kind_of``, ``_WRAPPED_FLOW_EMPTY``).
_OBJECTS = {"source", "destination"}
_WRAPPED = [f"$.flow.{'Type' if p in _OBJECTS else p}" for p in _FIELDS] + ["$.flow.Type"] + [f"$.{p}" for p in _ROOT[1:]]
_N = len(_FIELDS)


def _field(name: str) -> str:
    """The field of x (the `flow` object when the line wraps one, else the line)."""
    i = _FIELDS.index(name) + 1
    return f"CASE WHEN wrapped OR ft = 'OBJECT' THEN e[{i}] ELSE e[{_N + i}] END"


def _root(name: str) -> str:
    i = _ROOT.index(name) + 1
    return f"CASE WHEN wrapped THEN e[{_N + i}] ELSE e[{2 * _N + i}] END"


def _bare(name: str) -> str:
    return f"CASE WHEN wrapped THEN NULL ELSE e[{_N + _FIELDS.index(name) + 1}] END"


def _str(column: str) -> str:
    return f"json_extract_string({column}, '$')"


def _kind_of(side: str) -> str:
    """The JSON type of the flow's source or destination: an object when any of its fields was
    found (no need to write it out), else asked of the line (the rare end with none of them)."""
    found = " OR ".join(f"e[{_FIELDS.index(f'{side}.{k}') + 1}] IS NOT NULL"
                        for k in ("namespace", "pod_name", "podName", "workloads[0].name", "labels"))
    return (f"CASE WHEN NOT wrapped THEN json_type({_field(side)}) WHEN {found} THEN 'OBJECT' "
            f"ELSE json_type(j, '$.flow.{side}') END")


def _port(proto: str) -> str:
    return f"coalesce({_field(f'l4.{proto}.destination_port')}, {_field(f'l4.{proto}.destinationPort')})"


# A wrapped line's flow is empty when none of its fields is there and its text is {} (asked only then).
_WRAPPED_FLOW_EMPTY = (f"CASE WHEN e[{_FIELDS.index('Type') + 1}] IS NOT NULL OR e[{_FIELDS.index('l4') + 1}] IS NOT NULL THEN false "
                       "ELSE json_extract(j, '$.flow')::VARCHAR = '{{}}' END")


def _text(column: str) -> str:
    """The string a JSON text holds: a quoted text without escapes is that string (DuckDB writes
    JSON minified, escaping only what must be), read as JSON otherwise (other types as text)."""
    return f"CASE WHEN starts_with({column}, '\"') AND NOT contains({column}, '\\') THEN {column}[2:-2] ELSE {_str(column)} END"


def _truthy(column: str) -> str:
    """Whether a JSON text is what Python counts true (the line reader's ``or`` between a field
    and its jsonpb twin): present, and not null, false, 0, "", [] or {}."""
    return (f"({column} IS NOT NULL AND {column} NOT IN ('null', 'false', '\"\"', '[]', '{{{{}}}}') "
            f"AND NOT coalesce(try_cast({column} AS DOUBLE) = 0, false))")


def _either(proto: str, jsonpb: str) -> str:
    """A field or, when it is null or "" (what the line reader's ``or`` passes over and the type
    checks let through), its jsonpb twin."""
    return f"coalesce(nullif(nullif({proto}, 'null'), '\"\"'), {jsonpb})"


# A line's IP object, asked only when jsonpb's ip stands beside it: the line reader reads ip only
# when IP is not truthy.
_IP_TRUTHY = _truthy("CASE WHEN wrapped OR ft = 'OBJECT' THEN json_extract(j, '$.flow.IP') ELSE json_extract(j, '$.IP') END")


def _ip(side: str) -> str:
    return (f"CASE WHEN {_field('ip.source')} IS NULL AND {_field('ip.destination')} IS NULL THEN {_field(f'IP.{side}')} "
            f"WHEN {_IP_TRUTHY} THEN {_field(f'IP.{side}')} ELSE {_field(f'ip.{side}')} END")


def _flow_only(*columns: str) -> str:
    """Columns kept for flows only: every other line kind falls into one group of its own."""
    return ", ".join(f"CASE WHEN kind = 'flow' THEN {c} END AS {c}" for c in columns)


_TS = f"try_cast({_text('timej')} AS TIMESTAMPTZ)"
"""A line's time (NULL when it is not a time the line reader reads)."""
_BADTIME = "timej IS NOT NULL AND (NOT starts_with(timej, '\"') OR ts IS NULL) AND timej <> '\"\"'"
"""A line's time is there but not a string holding a time."""


# What follows the classification in the reading by path lookups: flows checked for the types the line reader
# insists on (bad), all grouped per (kind, bad, in the window, source end, destination end, port,
# protocol, verdict) with the count and the first and last time.
_GROUPED = f"""
f AS (
  SELECT kind, {_flow_only("st", "dt_", "sns", "spod", "sip", "swl", "slab", "dns_", "dpod", "dip", "dwl", "dlab", "proto", "timej")},
    CASE WHEN kind = 'flow' THEN coalesce(dropped, false) END AS dropped,
    CASE WHEN kind = 'flow' THEN portj END AS portj,
    CASE WHEN kind = 'flow' THEN {_TS} END AS ts
  FROM k
),
grp AS (
  SELECT kind, st, dt_, sns, spod, sip, swl, slab, dns_, dpod, dip, dwl, dlab, portj, proto, dropped,
         {{window}} AS inside, count(*) AS n, min(ts) AS first, max(ts) AS last,
         bool_or({_BADTIME}) AS badtime
  FROM f GROUP BY ALL
)
SELECT kind,
    kind = 'flow' AND ((st IS NOT NULL AND st <> 'OBJECT') OR (dt_ IS NOT NULL AND dt_ <> 'OBJECT')
    OR json_type(portj) IS DISTINCT FROM 'UBIGINT' OR portj::BIGINT NOT BETWEEN 1 AND 65535 OR badtime
    OR json_type(sns) NOT IN ('VARCHAR', 'NULL') OR json_type(spod) NOT IN ('VARCHAR', 'NULL') OR json_type(sip) NOT IN ('VARCHAR', 'NULL')
    OR json_type(dns_) NOT IN ('VARCHAR', 'NULL') OR json_type(dpod) NOT IN ('VARCHAR', 'NULL') OR json_type(dip) NOT IN ('VARCHAR', 'NULL'))
    AS bad, inside, sns, spod, sip, swl, slab, dns_, dpod, dip, dwl, dlab,
    CASE WHEN kind = 'flow' AND json_type(portj) = 'UBIGINT' AND portj::BIGINT BETWEEN 1 AND 65535 THEN portj::INTEGER END AS port,
    proto, dropped, n, first, last
FROM grp
"""


# Every line classified exactly as the line reader does (flow, reply, skipped with its reason, or
# odd: not for this engine), flows checked for the types the line reader insists on (bad), and all
# of it grouped in the same pass: per (kind, bad, in the window, source end, destination end, port,
# protocol, verdict) with the count and the first and last time.
_HUBBLE = f"""
WITH raw AS (SELECT json AS j FROM read_json_objects({{files}}, format='newline_delimited', compression='auto_detect')),
e AS (SELECT j, starts_with(j, '{{{{') AS object, starts_with(j, '{{{{"flow":{{{{') AS wrapped,
  CASE WHEN starts_with(j, '{{{{"flow":{{{{') THEN json_extract(j, [{", ".join(repr(p) for p in _WRAPPED)}])
       ELSE json_extract(j, [{", ".join(repr(p) for p in _PATHS)}]) END AS e FROM raw),
w AS (SELECT *, CASE WHEN wrapped THEN 'OBJECT' ELSE json_type({_root("flow")}) END AS ft FROM e),
v AS (
  SELECT j, object, wrapped, ft,
    CASE WHEN {_truthy(_field("Type"))} THEN {_field("Type")} WHEN {_truthy(_field("type"))} THEN {_field("type")} END AS typj,
    {_field("l4")} AS l4, coalesce(nullif({_field("is_reply")}, 'null'), {_field("isReply")}) AS reply,
    {_str(_field("verdict"))} = 'DROPPED' AS dropped, {_field("time")} AS timej,
    {_kind_of("source")} AS st, {_kind_of("destination")} AS dt_,
    {_port("TCP")} AS tcpp, {_port("UDP")} AS udpp, {_port("SCTP")} AS sctpp,
    {_field("source.namespace")} AS sns, {_either(_field("source.pod_name"), _field("source.podName"))} AS spod,
    {_field("source.workloads[0].name")} AS swl, {_field("source.labels")} AS slab,
    {_field("destination.namespace")} AS dns_, {_either(_field("destination.pod_name"), _field("destination.podName"))} AS dpod,
    {_field("destination.workloads[0].name")} AS dwl, {_field("destination.labels")} AS dlab,
    {_ip("source")} AS sip, {_ip("destination")} AS dip,
    {_root("src")} IS NOT NULL OR {_root("dst")} IS NOT NULL AS plain,
    (wrapped OR {_root("flow")} IS NOT NULL OR {_bare("l4")} IS NOT NULL OR {_bare("source")} IS NOT NULL OR {_bare("destination")} IS NOT NULL
      OR {_root("IP")} IS NOT NULL OR {_bare("Type")} IS NOT NULL) AS flowish,
    CASE WHEN wrapped THEN {_WRAPPED_FLOW_EMPTY} ELSE ft = 'OBJECT' AND {_root("flow")}::VARCHAR = '{{{{}}}}' END AS noflow
  FROM w
),
c AS (SELECT *, {_str("typj")} AS typ, json_type(l4) AS l4t, (json_keys(l4))[1] AS proto FROM v),
k AS (
  SELECT *, CASE proto WHEN 'TCP' THEN tcpp WHEN 'UDP' THEN udpp WHEN 'SCTP' THEN sctpp END AS portj,
    CASE
      WHEN NOT object OR plain THEN 'odd'
      WHEN NOT flowish THEN 'skip:not a flow (' || coalesce((json_keys(j))[1], 'empty') || ')'
      WHEN ft IS NOT NULL AND ft <> 'OBJECT' THEN 'odd'
      WHEN noflow THEN 'skip:no flow'
      WHEN typj IS NOT NULL AND NOT starts_with(typj, '"') THEN 'odd'
      WHEN NOT (typ = 'L3_L4' OR (typ IS NULL AND l4t = 'OBJECT')) THEN 'skip:' || coalesce(typ, 'no l4')
      WHEN reply IS NOT NULL AND json_type(reply) NOT IN ('BOOLEAN', 'NULL') AND reply::VARCHAR <> '{{{{"value":true}}}}' THEN 'odd'
      WHEN reply::VARCHAR IN ('true', '{{{{"value":true}}}}') THEN 'reply'
      WHEN l4t IS DISTINCT FROM 'OBJECT' OR json_keys(l4) = [] THEN 'skip:no l4'
      WHEN proto NOT IN ('TCP', 'UDP', 'SCTP') THEN 'skip:protocol ' || proto
      WHEN len(list_distinct(json_keys(l4))) <> len(json_keys(l4)) THEN 'odd'  -- a protocol twice: the line reader reads the last
      ELSE 'flow'
    END AS kind
  FROM c
),
{_GROUPED}
"""


# The same, read by DuckDB's JSON reader into the few fields it needs (no line's text is kept, no
# path looked up: about two thirds of the time of the reading above). Every leaf is kept as its
# JSON text, so nothing is cast; l4 is a map (its protocols in their order); an object of another
# shape, or a key twice in an object read here, is an error (the line reader then reads the file).
# What this reading cannot see makes a line `unclear`, and a file with such a line is read as
# above: the first key of a line without a flow (which has no Type either), a name beside its
# jsonpb twin when the two differ only in case (Type and type, IP and ip), l4 absent or null.
#
# Lines are grouped by what decides their kind and by a 64-bit hash of each end, and in the same
# pass each distinct end (by hash and by value) apart: the pairs' groups stay narrow (grouping them
# by both ends in full, labels and all, took longer than reading the file, and twice the memory).
# Two distinct ends with one hash would merge their flows: the ends' groups show it (a hash with
# two ends) and the file is then read by the path lookups, which compare ends in full.
_END = "STRUCT(namespace JSON, pod_name JSON, podName JSON, labels JSON, workloads STRUCT(name JSON)[])"
_COLUMNS = ("{flow: 'STRUCT(\"Type\" JSON, verdict JSON, \"time\" JSON, is_reply JSON, isReply JSON, "
            "l4 MAP(VARCHAR, STRUCT(destination_port JSON, destinationPort JSON)), "
            f"source {_END}, destination {_END}, \"IP\" STRUCT(source JSON, destination JSON))', src: 'JSON', dst: 'JSON'}}")
_PAIR_KEY = "hs, hd, plain, typj, nol4, l4n, proto, portj, reply, dropped, noip, inside"
_STRUCTURED = f"""
CREATE TEMP TABLE sets AS
WITH r AS (SELECT flow AS x, src, dst FROM read_json({{files}}, format='newline_delimited', compression='auto_detect', columns={_COLUMNS.replace("{", "{{").replace("}", "}}")}){{head}}),
p AS (SELECT *, map_keys(x.l4)[1] AS proto FROM r),
l AS (
  SELECT src IS NOT NULL OR dst IS NOT NULL AS plain, x."Type" AS typj, x.l4 IS NULL AS nol4, cardinality(x.l4) AS l4n, proto,
    coalesce(x.l4[proto].destination_port, x.l4[proto].destinationPort) AS portj,  -- the port of the first protocol in l4
    coalesce(x.is_reply, x.isReply) AS reply, x.verdict = '"DROPPED"' AS dropped, x."time" AS timej,
    x.source.namespace AS sns, {_either("x.source.pod_name", "x.source.podName")} AS spod, x.source.workloads[1].name AS swl, x.source.labels AS slab,
    x.destination.namespace AS dns_, {_either("x.destination.pod_name", "x.destination.podName")} AS dpod,
    x.destination.workloads[1].name AS dwl, x.destination.labels AS dlab, x."IP".source AS sip, x."IP".destination AS dip
  FROM p
),
t AS (SELECT *, hash(sns, spod, sip, swl, slab) AS hs, hash(dns_, dpod, dip, dwl, dlab) AS hd, sip IS NULL AND dip IS NULL AS noip
      FROM (SELECT *, {_TS} AS ts FROM l)),
u AS (SELECT *, {{window}} AS inside FROM t)
SELECT grouping(hs, hd) AS g, {_PAIR_KEY}, sns, spod, sip, swl, slab, dns_, dpod, dip, dwl, dlab,
  count(*) AS n, min(ts) AS first, max(ts) AS last, bool_or({_BADTIME}) AS badtime
FROM u
GROUP BY GROUPING SETS (({_PAIR_KEY}), (hs, sns, spod, sip, swl, slab), (hd, dns_, dpod, dip, dwl, dlab))
"""

# The pairs' groups (g = 0) classified as the reading above classifies a line; each end's
# groups (g = 1 at the source, 2 at the destination) checked for the types the line reader insists on.
_KINDS = f"""
CREATE TEMP TABLE kinds AS
WITH v AS (SELECT *, plain OR typj IS NULL OR NOT starts_with(typj, '"') OR typj = '""' AS unclear, {_text("typj")} AS typ
           FROM sets WHERE g = 0),
k AS (
  SELECT *,
    CASE
      WHEN unclear THEN 'unclear'
      WHEN typ <> 'L3_L4' THEN 'skip:' || typ
      WHEN reply IS NOT NULL AND json_type(reply) NOT IN ('BOOLEAN', 'NULL') AND reply::VARCHAR <> '{{"value":true}}' THEN 'odd'
      WHEN reply::VARCHAR IN ('true', '{{"value":true}}') THEN 'reply'
      -- no l4 (or null): the reading above decides
      WHEN nol4 THEN 'unclear'
      WHEN l4n = 0 THEN 'skip:no l4'
      WHEN proto NOT IN ('TCP', 'UDP', 'SCTP') THEN 'skip:protocol ' || proto
      -- jsonpb's ip may stand beside an absent or empty IP: the reading above decides
      WHEN noip THEN 'unclear'
      ELSE 'flow'
    END AS kind
  FROM v
)
SELECT kind, hs, hd, inside, n, first, last, coalesce(dropped, false) AS dropped, proto,
  kind = 'flow' AND (json_type(portj) IS DISTINCT FROM 'UBIGINT' OR portj::BIGINT NOT BETWEEN 1 AND 65535 OR badtime) AS bad,
  CASE WHEN kind = 'flow' AND json_type(portj) = 'UBIGINT' AND portj::BIGINT BETWEEN 1 AND 65535 THEN portj::INTEGER END AS port
FROM k
"""
# Every distinct end of either side, by hash and value: made once, asked by the three statements below.
_ALL_ENDS = """CREATE TEMP TABLE allends AS
  SELECT hs AS h, sns AS ns, spod AS pod, sip AS ip, swl AS wl, slab AS lab FROM sets WHERE g = 1
  UNION SELECT hd, dns_, dpod, dip, dwl, dlab FROM sets WHERE g = 2"""
_COLLIDED = "SELECT count(*) FROM (SELECT h FROM allends GROUP BY h HAVING count(*) > 1)"
_BAD_END = ("json_type(ns) NOT IN ('VARCHAR', 'NULL') OR json_type(pod) NOT IN ('VARCHAR', 'NULL') "
            "OR json_type(ip) NOT IN ('VARCHAR', 'NULL')")
_BAD = f"""SELECT count(*) FROM kinds WHERE bad OR (kind = 'flow' AND (hs IN (SELECT h FROM allends WHERE {_BAD_END})
  OR hd IN (SELECT h FROM allends WHERE {_BAD_END})))"""


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


HEAD_LINES = 20_000
"""Lines the structured reading tries before the whole file (about 1% of a 2M-line export)."""

MEMORY_LIMIT = "640MB"
"""DuckDB's own memory (past it, it spills to a temporary folder): the groups, not the lines, stay in memory."""
STREAM_MEMORY_LIMIT = "256MB"
"""DuckDB's memory while Python reads the placed pairs out (and holds them)."""


def _connect() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")  # a time without an offset is UTC, as the line reader reads it
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    # Spill under the system's temporary folder, never the working directory (DuckDB's default);
    # a folder per connection: the groups of several files can be open at once.
    spill = tempfile.mkdtemp(prefix=f"netpol-audit-duckdb-{os.getpid()}-")
    _SPILL[id(con)] = spill
    con.execute(f"SET temp_directory = '{spill.replace(chr(39), chr(39) * 2)}'")
    return con


_SPILL: dict[int, str] = {}
"""Each open connection's spill folder, removed when it closes."""


def _literal(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


_STAMP = "strftime({}, '%Y-%m-%dT%H:%M:%S.%fZ')"
"""A time as the line reader writes it: UTC, microseconds, fixed width (the session's time zone is UTC)."""


def hubble(path: str, stats: ReadStats, window: Window = Window()) -> HubbleGroups | None:
    """One Hubble JSON-lines file (plain, .gz or .zst) grouped; None when the file needs the
    line-by-line reader (it then names the line that is wrong, or reads what is unusual).

    The structured reading first, the path lookups when it finds a line it cannot see (a second
    pass over the file): the groups land in a temporary table (DuckDB's memory, spilled past its
    limit) and the line counts are read from it; the groups stay in the engine for
    ``HubbleGroups`` to place and total."""
    import duckdb

    con = _connect()
    try:
        # An export with lines the structured reading cannot see (lost events) has them all through:
        # a first sample of its lines decides before the whole file is read twice.
        readings = [_structured, _paths]
        if _structured(con, path, window, f" LIMIT {HEAD_LINES}")[0].get("unclear"):
            readings = [_paths]
        for read in readings:
            kinds, clean = read(con, path, window)
            if not kinds.get("unclear"):
                break
        if not clean:
            _close(con)
            return None
    except duckdb.Error:
        _close(con)
        return None
    groups = HubbleGroups(con)
    try:
        groups.ends()
    except msgspec.DecodeError:  # labels msgspec refuses (a number past every float): the line reader names the line
        _close(con)
        return None
    stats.lines += int(sum(kinds.values()))
    stats.replies += int(kinds.get("reply", 0))
    for kind, count in kinds.items():
        if kind.startswith("skip:"):
            stats.skipped[kind[5:]] = stats.skipped.get(kind[5:], 0) + int(count)
    return groups


_TABLES = ("groups", "sets", "kinds", "allends", "ends", "pairs")


def _drop_tables(con: Any) -> None:
    """A reading starts from no table of an earlier one."""
    for table in _TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _structured(con: Any, path: str, window: Window, head: str = "") -> tuple[dict[str, int], bool]:
    """The structured reading (``head``: a LIMIT on the lines read): the lines of each kind, and
    whether every line is one this engine reads (no odd line, no field of a wrong type). With a
    clean read and no unclear line, tables ``ends`` and ``pairs`` hold the flows in the window.
    Two ends with one hash make the whole file unclear (the path lookups then read it)."""
    _drop_tables(con)
    con.execute(_STRUCTURED.format(files=_literal([path]), window=window.sql(), head=head))
    con.execute(_KINDS)
    kinds = dict(con.execute("SELECT kind, sum(n) FROM kinds GROUP BY kind").fetchall())
    if kinds.get("unclear") or head:
        return kinds, False
    con.execute(_ALL_ENDS)
    if con.execute(_COLLIDED).fetchone()[0]:
        return {"unclear": 1}, False
    if kinds.get("odd") or con.execute(_BAD).fetchone()[0]:
        return kinds, False
    con.execute(_ENDS.format(source=_HASHED_ENDS))
    con.execute(_HASHED_PAIRS)
    for table in ("kinds", "sets", "allends"):
        con.execute(f"DROP TABLE {table}")
    return kinds, True


def _paths(con: Any, path: str, window: Window) -> tuple[dict[str, int], bool]:
    """The reading by path lookups (``_structured``'s contract)."""
    _drop_tables(con)
    con.execute("CREATE TEMP TABLE groups AS " + _HUBBLE.format(files=_literal([path]), window=window.sql()))
    kinds = dict(con.execute("SELECT kind, sum(n) FROM groups GROUP BY kind").fetchall())
    if kinds.get("odd") or con.execute("SELECT count(*) FROM groups WHERE bad").fetchone()[0]:
        return kinds, False
    con.execute(_ENDS.format(source=_GROUPS_ENDS))
    con.execute(_PAIRS)
    con.execute("DROP TABLE groups")
    return kinds, True


# The distinct ends (as the lines write them, and as text), numbered in a fixed order; then the
# groups by end number.
_ENDS = """
CREATE TEMP TABLE ends AS
SELECT (row_number() OVER (ORDER BY ns::VARCHAR, pod::VARCHAR, ip::VARCHAR, wl::VARCHAR, lab::VARCHAR) - 1)::INTEGER AS id,
       *, json_extract_string(ns, '$') AS ns_t, json_extract_string(pod, '$') AS pod_t,
       json_extract_string(ip, '$') AS ip_t, json_extract_string(wl, '$') AS wl_t
FROM {source}
"""
_GROUPS_ENDS = """(SELECT sns AS ns, spod AS pod, sip AS ip, swl AS wl, slab AS lab FROM groups WHERE kind = 'flow' AND inside
      UNION SELECT dns_, dpod, dip, dwl, dlab FROM groups WHERE kind = 'flow' AND inside)"""
_SAME = ("g.{g}ns IS NOT DISTINCT FROM {g}.ns AND g.{g}pod IS NOT DISTINCT FROM {g}.pod AND g.{g}ip IS NOT DISTINCT FROM {g}.ip "
         "AND g.{g}wl IS NOT DISTINCT FROM {g}.wl AND g.{g}lab IS NOT DISTINCT FROM {g}.lab")
_PAIRS = f"""
CREATE TEMP TABLE pairs AS
SELECT s.id AS se, d.id AS de, g.port, g.proto, g.dropped, g.n, g.first, g.last
FROM (SELECT sns AS sns, spod AS spod, sip AS sip, swl AS swl, slab AS slab, dns_ AS dns, dpod AS dpod, dip AS dip, dwl AS dwl,
             dlab AS dlab, port, proto, dropped, n, first, last
      FROM groups WHERE kind = 'flow' AND inside) g
JOIN ends s ON {_SAME.format(g="s")} JOIN ends d ON {_SAME.format(g="d")}
"""
# The structured reading's ends are those of the flows in the window; its pairs join them by hash.
_USED = "(SELECT hs FROM kinds WHERE kind = 'flow' AND inside UNION SELECT hd FROM kinds WHERE kind = 'flow' AND inside)"
_HASHED_ENDS = f"(SELECT * FROM allends WHERE h IN {_USED})"
_HASHED_PAIRS = """
CREATE TEMP TABLE pairs AS
SELECT s.id AS se, d.id AS de, k.port, k.proto, k.dropped, sum(k.n)::BIGINT AS n, min(k.first) AS first, max(k.last) AS last
FROM kinds k JOIN ends s ON s.h = k.hs JOIN ends d ON d.h = k.hd WHERE k.kind = 'flow' AND k.inside GROUP BY ALL
"""

_TEXT = ("CASE WHEN nullif(e.ns_t, '') IS NOT NULL AND nullif(e.pod_t, '') IS NOT NULL THEN e.ns_t || '/' || e.pod_t "
         "ELSE coalesce(nullif(e.ip_t, ''), nullif(e.ns_t, ''), '?') END")
"""An end's text as ``FlowEnd.text`` writes it (an empty field is none)."""

MAX_EXAMPLES = 50
"""Unplaced flows named as examples."""
MAX_IPS = 8
"""Outside addresses kept per end of a placed pair (the smallest, in text order)."""


class HubbleGroups:
    """A Hubble file's flows grouped in DuckDB (a ``FlowGroups``): Python places each distinct end
    once, DuckDB totals the groups per placed pair. The engine closes once the pairs (or the
    flows) are read, or when the groups are dropped unread."""

    def __init__(self, con: Any):
        self._con = con
        self._ends: list[FlowEnd] | None = None
        self._close = weakref.finalize(self, _close, con)

    def ends(self) -> list[FlowEnd]:
        if self._ends is None:
            rows = self._con.execute("SELECT ns_t, pod_t, ip_t, wl_t, lab::VARCHAR FROM ends ORDER BY id").fetchall()
            # Pods of one workload show the same labels: each text is read once.
            labels: dict[str | None, tuple[tuple[str, str], ...]] = {}
            seen: dict[Any, tuple[str, str] | None] = {}
            self._ends = [FlowEnd(ns or None, pod or None, ip or None, labels[lab] if lab in labels else labels.setdefault(lab, _labels(lab, seen)), wl)
                          for ns, pod, ip, wl, lab in rows]
        return self._ends

    def total(self) -> tuple[int, int, str | None, str | None]:
        count, dropped, first, last = self._con.execute(
            f"SELECT coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE dropped), 0), {_STAMP.format('min(first)')}, {_STAMP.format('max(last)')} "
            "FROM pairs").fetchone()
        return int(count), int(dropped), first, last

    def flows(self) -> Iterator[Flow]:
        ends = self.ends()
        try:
            result = self._con.execute(f"SELECT se, de, port, proto, dropped, n, {_STAMP.format('first')}, {_STAMP.format('last')} FROM pairs")
            while batch := result.fetchmany(20_000):
                for se, de, port, proto, dropped, count, first, last in batch:
                    yield Flow(ends[se], ends[de], port, proto, count, first, last, bool(dropped))
        finally:
            self._close()

    def place(self, codes: Sequence[Sequence[int]]) -> Placement:
        con = self._con
        ends = self.ends()
        con.execute("CREATE TEMP TABLE codes AS SELECT unnest($1::INTEGER[]) AS id, unnest($2::BIGINT[]) AS code",
                    [[i for i, c in enumerate(codes) for _ in c], [code for c in codes for code in c]])
        # Each end: placed or not, all outside or not, and its rank by text (the examples' order:
        # FlowEnd.text, compared as Python compares text: by code point, as UTF-8 bytes compare).
        con.execute("CREATE TEMP TABLE endst AS SELECT t.id, t.unplaced, t.outside, dense_rank() OVER (ORDER BY "
                    f"{_TEXT}) AS rank FROM (SELECT unnest($1::INTEGER[]) AS id, unnest($2::BOOLEAN[]) AS unplaced, "
                    "unnest($3::BOOLEAN[]) AS outside) t JOIN ends e USING (id)",
                    [list(range(len(ends))), [not c for c in codes], [bool(c) and all(x < 0 for x in c) for c in codes]])
        joined = "FROM pairs p JOIN endst s ON s.id = p.se JOIN endst d ON d.id = p.de"
        blamed = [("source" if s is not None else "destination", s if s is not None else d, int(n)) for s, d, n in con.execute(
            f"SELECT CASE WHEN s.unplaced THEN p.se END, CASE WHEN NOT s.unplaced THEN p.de END, sum(n) {joined} "
            "WHERE s.unplaced OR d.unplaced GROUP BY ALL ORDER BY ALL").fetchall()]
        # Every unplaced (source, destination, port, protocol) among the first fifty as text (ends
        # of the same text share a rank: each of them is returned).
        examples = [(se, de, port, proto) for se, de, port, proto in con.execute(
            f"WITH first AS (SELECT DISTINCT s.rank AS sr, d.rank AS dr, p.port, p.proto {joined} WHERE s.unplaced OR d.unplaced "
            f"ORDER BY ALL LIMIT {MAX_EXAMPLES}) "
            f"SELECT DISTINCT p.se, p.de, p.port, p.proto {joined} JOIN first f ON (f.sr, f.dr, f.port, f.proto) = (s.rank, d.rank, p.port, p.proto) "
            "ORDER BY ALL").fetchall()]
        outside = con.execute(f"SELECT coalesce(sum(n), 0) {joined} WHERE NOT s.unplaced AND NOT d.unplaced AND s.outside AND d.outside").fetchone()[0]
        con.execute(f"""CREATE TEMP TABLE placed AS
            SELECT cs.code AS sc, cd.code AS dc, p.port, p.proto, p.dropped, p.n, p.first, p.last,
                   CASE WHEN cs.code < 0 THEN e1.ip_t END AS sip, CASE WHEN cd.code < 0 THEN e2.ip_t END AS dip
            {joined} JOIN codes cs ON cs.id = p.se JOIN codes cd ON cd.id = p.de
            JOIN ends e1 ON e1.id = p.se JOIN ends e2 ON e2.id = p.de
            WHERE NOT (s.outside AND d.outside)""")
        con.execute("DROP TABLE pairs")
        # What is left is read out into Python: DuckDB keeps little of its memory beside it (the tables spill).
        con.execute(f"SET memory_limit = '{STREAM_MEMORY_LIMIT}'")
        return Placement(blamed, examples, int(outside), self._placed())

    def _placed(self) -> Iterator[list[Placed]]:
        con = self._con
        key = "sc, dc, port, proto"
        ips = f"""SELECT {key}, list(ip ORDER BY ip) AS ips FROM (
            SELECT DISTINCT {key}, {{side}} AS ip FROM placed WHERE coalesce({{side}}, '') <> ''
            QUALIFY dense_rank() OVER (PARTITION BY {key} ORDER BY ip) <= {MAX_IPS}) GROUP BY ALL"""
        try:
            # Addresses only at outside ends (the placed table's own CASE): the joins find none for most pairs.
            result = con.execute(f"""
                WITH totals AS (SELECT {key}, sum(n)::BIGINT AS n, coalesce(sum(n) FILTER (WHERE dropped), 0)::BIGINT AS dropped,
                                       epoch_us(min(first)) AS first, epoch_us(max(last)) AS last FROM placed GROUP BY ALL),
                     s AS ({ips.format(side="sip")}), d AS ({ips.format(side="dip")})
                SELECT t.sc, t.dc, t.port, t.proto, t.n, t.dropped, t.first, t.last, s.ips, d.ips
                FROM totals t LEFT JOIN s USING ({key}) LEFT JOIN d USING ({key})""")
            while batch := result.fetchmany(20_000):
                yield batch
        finally:
            self._close()


def _close(con: Any) -> None:
    """Close the engine and remove its spill folder."""
    con.close()
    spill = _SPILL.pop(id(con), None)
    if spill is not None:
        shutil.rmtree(spill, ignore_errors=True)


def kubernetes_labels(raw: Any, seen: dict[Any, tuple[str, str] | None] | None = None) -> tuple[tuple[str, str], ...]:
    """A pod's labels from Kubernetes in Cilium's label list (``k8s:key=value``), sorted: the source
    prefix dropped, and Kubernetes' and Cilium's own labels (``io.kubernetes.``, ``io.cilium.``)
    left out. ``seen``: each item's reading, kept across calls (pods share most of their labels)."""
    if not isinstance(raw, list):
        return ()
    if seen is None:
        seen = {}
    try:
        found = [seen[item] if item in seen else _remember(seen, item) for item in raw]
    except TypeError:  # an unhashable item (a list or an object): no label
        found = [_label(item) if isinstance(item, str) else None for item in raw]
    return tuple(sorted(pair for pair in found if pair is not None))


def _remember(seen: dict[Any, tuple[str, str] | None], item: Any) -> tuple[str, str] | None:
    pair = seen[item] = _label(item) if isinstance(item, str) else None
    return pair


def _label(item: str) -> tuple[str, str] | None:
    if item.startswith("k8s:") and "=" in item:
        label, _, value = item[4:].partition("=")
        if not label.startswith(("io.kubernetes.", "io.cilium.")):
            return label, value
    return None


def _labels(text: str | None, seen: dict[Any, tuple[str, str] | None]) -> tuple[tuple[str, str], ...]:
    """``kubernetes_labels`` of a labels field as the line writes it (JSON text, decoded as the
    line reader decodes a line: what msgspec refuses raises its ``DecodeError``)."""
    return kubernetes_labels(msgspec.json.decode(text), seen) if text is not None else ()


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
