"""What the HTML and PDF templates show: the report model arranged for reading, rows capped.

Arranging is not analysis: nothing here judges a policy; it groups, orders and caps what the
report already holds, so a 10,000-namespace result still renders in bounded time.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from audit.report.model import CheckRow, ConnectionRow, FindingRow, PolicyRow, Report, SegmentationMap, SourceLocation
from audit.report.severity import SEVERITIES, rank

SEVERITY_MEANING = {
    "critical": "Every policy is void or the cluster is wide open: act now.",
    "high": "A direct path for an attacker (a flat namespace, an allow-all, an exposed database): fix this sprint.",
    "medium": "Weakens segmentation or will break something: fix soon.",
    "low": "Hygiene and defence in depth.",
    "info": "Not assessable from this input, or informational.",
}


@dataclass(frozen=True)
class Capped:
    """The first ``limit`` rows of a table, and how many there are in all."""

    rows: list[Any]
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)


def cap(rows: list[Any], limit: int) -> Capped:
    return Capped(rows[:limit], len(rows))


@dataclass(frozen=True)
class CheckGroup:
    check: CheckRow
    severity: str
    findings: Capped
    default_severity: str | None = None  # the check's own severity, when the configuration overrode it


def anchor(kind: str, value: str | None) -> str:
    """A safe, unique fragment id for any string (names in manifests are not validated)."""
    value = value or ""
    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:40]
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{kind}-{slug}-{digest}" if slug else f"{kind}-{digest}"


def pct(part: int, total: int) -> int:
    return round(100 * part / total) if total else 0


def worst_first(report: Report) -> dict[str, int]:
    """Namespace -> its place, worst first: by unwaived findings weighted as the score weighs them
    (critical 20, high 5, medium 2, low 0.5), then missing default-deny, then more pods, then name."""
    weight = {"critical": 20.0, "high": 5.0, "medium": 2.0, "low": 0.5, "info": 0.0}
    penalty: dict[str, float] = {}
    for f in report.findings:
        if f.status == "fail" and f.namespace:
            penalty[f.namespace] = penalty.get(f.namespace, 0.0) + weight[f.severity]
    ranked = sorted(report.namespaces, key=lambda r: (-penalty.get(r.name, 0.0), r.default_deny_ingress + r.default_deny_egress,
                                                       -r.pods, r.name))
    return {r.name: i for i, r in enumerate(ranked)}


def share(counts: list[int], budget: int, floor: int = 5) -> list[int]:
    """Rows per table when tables share one ``budget``: small tables are shown whole, the largest
    share what is left equally (the highest cap that fits), and each shows at least ``floor``."""
    if sum(counts) <= budget:
        return list(counts)
    low, high = floor, max(counts)
    while low < high:  # the highest cap k with sum(min(c, k)) <= budget
        mid = (low + high + 1) // 2
        if sum(min(c, mid) for c in counts) <= budget:
            low = mid
        else:
            high = mid - 1
    return [min(c, max(low, floor)) for c in counts]


GRAPH_NAMESPACES = 8
"""Up to this many namespaces the segmentation map is drawn as a graph; beyond, as a matrix."""

MAP_COLUMNS = ("internet", "sensitive")


def pair_anchor(src_ns: str, dst: str) -> str:
    return anchor("pair", f"{src_ns} > {dst}")


def _end_ns(end: str) -> str:
    """The map column of a connection end: its namespace, or `internet` for outside ranges."""
    return "internet" if end.endswith("[External]") or "[" not in end else end.split("/", 1)[0]


def map_view(seg: SegmentationMap | None, rows: list[ConnectionRow]) -> dict[str, Any] | None:
    """What the SVG map needs: cells by (row, column), the anchor each cell links to, and, for
    few namespaces, a circular graph layout."""
    if seg is None:
        return None
    cells = {(c.src, c.dst): c for c in seg.cells}
    n = len(seg.namespaces)
    nodes: dict[str, tuple[float, float]] = {}
    if 0 < n <= GRAPH_NAMESPACES:
        for i, ns in enumerate(seg.namespaces):
            angle = 2 * math.pi * i / n - math.pi / 2
            nodes[ns] = (round(260 + 170 * math.cos(angle), 1), round(220 + 170 * math.sin(angle), 1))
        nodes["internet"] = (520.0, 40.0)
    edges = [(c, *_offset(nodes[c.src], nodes[c.dst])) for c in seg.cells
             if nodes and c.src in nodes and c.dst in nodes and c.src != c.dst]
    return {"map": seg, "cells": cells, "columns": list(seg.namespaces) + list(MAP_COLUMNS),
            "links": dict(pair for pair in _first_rows(rows) if pair), "nodes": nodes, "edges": edges, "graph": bool(nodes)}


def _offset(a: tuple[float, float], b: tuple[float, float], by: float = 4.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """The line a -> b moved a little to its right, so that b -> a is drawn beside it, not on it."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / length * by, dx / length * by
    return (round(a[0] + nx, 1), round(a[1] + ny, 1)), (round(b[0] + nx, 1), round(b[1] + ny, 1))


def _first_rows(rows: list[ConnectionRow]) -> list[tuple[tuple[str, str], str] | None]:
    """Per row: ((source namespace, destination column), its anchor) on the first row of each pair
    that starts in a namespace, else None."""
    seen: set[tuple[str, str]] = set()
    out: list[tuple[tuple[str, str], str] | None] = []
    for row in rows:
        key = (_end_ns(row.src), _end_ns(row.dst))
        out.append(None if key in seen or key[0] == "internet" else (key, pair_anchor(*key)))
        seen.add(key)
    return out


def connection_anchors(rows: list[ConnectionRow]) -> list[str | None]:
    """The anchor on the first connection row of each (namespace, namespace) pair: a map cell links to it."""
    return [pair[1] if pair else None for pair in _first_rows(rows)]


def view_model(report: Report, max_rows: int, inventory_rows: int | None = None) -> dict[str, Any]:
    """Everything the templates need, computed once.

    ``max_rows`` is the findings' budget (and the namespace table's); ``inventory_rows`` caps the
    long, less urgent tables (policies, blast radius, connections), so that findings stay complete
    first (the PDF gives them less room than the HTML)."""
    inventory_rows = max_rows if inventory_rows is None else inventory_rows
    checks = {c.id: c for c in report.checks}
    fails = [f for f in report.findings if f.status == "fail"]
    waived = [f for f in report.findings if f.status == "waived"]
    groups: list[CheckGroup] = []
    by_check: dict[str, list[FindingRow]] = {}
    for f in fails:
        by_check.setdefault(f.check, []).append(f)
    # One budget for the whole findings section, shared by its checks, so rows stay bounded
    # however many checks fire; a check with few findings shows them all.
    ordered = sorted(by_check.items(), key=lambda kv: (rank(kv[1][0].severity), kv[0]))
    for (check_id, items), limit in zip(ordered, share([len(items) for _, items in ordered], max_rows)):
        groups.append(CheckGroup(checks[check_id], items[0].severity, cap(items, limit), items[0].default_severity))
    order = worst_first(report)
    namespaces = sorted(report.namespaces, key=lambda row: (row.excluded, order[row.name]))
    policies: list[PolicyRow] = sorted(report.policies, key=lambda p: (p.valid, p.kind, p.namespace or "", p.name))
    s = report.summary
    return {
        "r": report,
        "s": s,
        "max_rows": max_rows,
        "severities": SEVERITIES,
        "severity_meaning": SEVERITY_MEANING,
        "groups": groups,
        "failing_total": len(fails),
        "waived": cap(waived, max_rows),
        "namespaces": cap([n for n in namespaces if not n.excluded], max_rows),
        "excluded": [n.name for n in namespaces if n.excluded],
        "policies": cap(policies, inventory_rows),
        "controls": report.controls,
        "control_counts": {st: sum(1 for c in report.controls if c.status == st) for st in ("pass", "fail", "not-assessable", "manual")},
        "coverage": {
            "ingress": pct(s.default_deny_ingress, s.audited_namespaces),
            "egress": pct(s.default_deny_egress, s.audited_namespaces),
            "pods_ingress": pct(s.pods_isolated_ingress, s.pods),
            "pods_egress": pct(s.pods_isolated_egress, s.pods),
            "pods_both": pct(s.pods_isolated_both, s.pods),
        },
        "max_severity_count": max([s.findings[sev] for sev in SEVERITIES] + [1]),
        "checks_by_id": checks,
        "connections": cap(list(report.connectivity.connections), inventory_rows) if report.connectivity else None,
        "connection_anchors": connection_anchors(list(report.connectivity.connections)[:inventory_rows]) if report.connectivity else [],
        "segmap": map_view(report.connectivity.map, list(report.connectivity.connections)[:inventory_rows]) if report.connectivity else None,
        "blast": cap(list(report.connectivity.blast_radius), inventory_rows) if report.connectivity else None,
    }


def templates_dir() -> Path:
    """templates/ beside the package in a checkout; audit/templates in an installed wheel."""
    packaged = Path(str(resources.files("audit").joinpath("templates")))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "templates"


def escaped(text: str) -> str:
    """``text`` escaped byte for byte as autoescape (markupsafe) escapes it: by C string
    replacement, without the call and the Markup object autoescape makes per value."""
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;").replace("'", "&#39;").replace('"', "&#34;")


# Helpers for what every table row shows: Python, not macros, since a Jinja macro call costs
# several times the text it writes (a 150k-pod report writes about 90,000 of them).

def location(src: SourceLocation | None) -> Markup:
    """Where a manifest object came from: ``file:line``, or nothing for objects read from the API."""
    if src is None or not src.file:
        return Markup("")
    return Markup(f'<span class="loc">{escaped(src.file)}{f":{src.line}" if src.line else ""}</span>')


def object_name(row: FindingRow) -> Markup:
    """A finding's object: ``namespace/name``, or the name alone for a namespace or a cluster-wide object."""
    if row.namespace and row.kind != "Namespace":
        return Markup(f"{escaped(row.namespace)}/{escaped(row.name)}")
    return Markup(escaped(row.name))


def policy_ref(row: PolicyRow) -> Markup:
    """A policy row's kind, then ``namespace/name``."""
    where = f"{escaped(row.namespace)}/" if row.namespace else ""
    return Markup(f'<span class="muted small">{escaped(row.kind)}</span> {where}{escaped(row.name)}')


def list_items(values: Any, limit: int) -> Markup:
    """The first ``limit`` values as ``<li>`` elements, each escaped: the list escaped in one pass,
    joined by a character no value holds (one by one where a value holds it)."""
    texts = [str(v) for v in values[:limit]]
    if not texts:
        return Markup("")
    joined = "\0".join(texts)
    if joined.count("\0") != len(texts) - 1:
        return Markup("".join(f"<li>{escaped(t)}</li>" for t in texts))
    return Markup("<li>" + escaped(joined).replace("\0", "</li><li>") + "</li>")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,  # every template, whatever its extension: names and labels are hostile input
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["anchor"] = anchor
    env.filters["list_items"] = list_items
    env.globals.update(pct=pct, location=location, object_name=object_name, policy_ref=policy_ref)
    return env


def read_asset(name: str) -> str:
    return (templates_dir() / name).read_text(encoding="utf-8")
