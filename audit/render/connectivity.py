"""`connectivity` output: txt, JSON, CSV, Graphviz dot and the namespace matrix, written as a stream."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from itertools import islice

from tabulate import tabulate

from audit.report.model import BlastRadiusRow, ConnectionLine, is_external

FORMATS = ("txt", "json", "csv", "dot", "matrix", "blast")
BATCH = 2000
"""Lines joined per written chunk: few writes, little memory."""


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting with =, +, -, @, tab or CR would be read
    as a formula (OWASP's CSV injection), so it gets a leading apostrophe."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def render(conns: Iterable[ConnectionLine], fmt: str, namespaces: Iterable[str] = (),
           blast: Iterable[BlastRadiusRow] = ()) -> Iterator[str]:
    """The text of ``fmt``, in chunks; line-oriented formats never hold the whole listing.

    ``matrix`` has a row for each of ``namespaces`` (those with pods) and each namespace a line
    names; ``blast`` prints the rows given (counted from the analysis, not from ``conns``).
    """
    if fmt == "txt":
        yield from _batched(f"{c}\n" for c in conns)
    elif fmt == "json":
        first = True
        for c in conns:
            item = json.dumps({"src": c.src, "dst": c.dst, "conn": str(c.conns)}, indent=2).replace("\n", "\n  ")
            yield ("[\n  " if first else ",\n  ") + item
            first = False
        yield "[]\n" if first else "\n]\n"
    elif fmt == "csv":
        yield "src,dst,conn\n"
        for chunk in _chunks(conns):
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows([csv_cell(c.src), csv_cell(c.dst), str(c.conns)] for c in chunk)
            yield buffer.getvalue()
    elif fmt == "dot":
        yield render_dot(list(conns))
    elif fmt == "matrix":
        names, counts = namespace_matrix(conns, namespaces)
        rows: list[list[object]] = [[src, *(counts.get((src, dst), "") for dst in names)] for src in names]
        yield "Connected source/destination pairs (rows: source namespace, columns: destination)\n"
        yield tabulate(rows, headers=["from \\ to"] + names, tablefmt="simple") + "\n"
    elif fmt == "blast":
        rows = [[b.namespace, b.workloads, b.namespaces, "yes" if b.outside else "no"] for b in blast]
        yield "Blast radius: what a compromised pod of each namespace can reach\n"
        yield tabulate(rows, headers=["namespace", "workloads", "other namespaces", "outside addresses"], tablefmt="simple") + "\n"
    else:
        raise ValueError(f"unknown connectivity format {fmt!r}")


def namespace_matrix(conns: Iterable[ConnectionLine], namespaces: Iterable[str] = ()) -> tuple[list[str], dict[tuple[str, str], int]]:
    """Namespaces (``namespaces``, those the lines name, and `external`) and how many source/destination
    pairs connect between them."""
    def ns_of(name: str) -> str:
        return "external" if is_external(name) or "[" not in name else name.split("/", 1)[0]

    counts: dict[tuple[str, str], int] = {}
    for c in conns:
        key = (ns_of(c.src), ns_of(c.dst))
        counts[key] = counts.get(key, 0) + 1
    return sorted({n for key in counts for n in key} | set(namespaces)), counts


def _chunks(conns: Iterable[ConnectionLine]) -> Iterator[list[ConnectionLine]]:
    it = iter(conns)
    while chunk := list(islice(it, BATCH)):
        yield chunk


def _batched(lines: Iterable[str]) -> Iterator[str]:
    it = iter(lines)
    while chunk := "".join(islice(it, BATCH)):
        yield chunk


def render_dot(conns: list[ConnectionLine]) -> str:
    """Graphviz: workloads grouped by namespace, outside ranges apart."""
    nodes: dict[str, set[str]] = {}
    external: set[str] = set()
    for c in conns:
        for name in (c.src, c.dst):
            if not is_external(name) and "[" in name:
                nodes.setdefault(name.split("/", 1)[0], set()).add(name)
            else:
                external.add(name)

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph {"]
    for i, (ns, members) in enumerate(sorted(nodes.items())):
        lines.append(f"\tsubgraph cluster_{i} {{")
        for name in sorted(members):
            lines.append(f"\t\t{q(name)} [label={q(name.split('/', 1)[1])} color=\"blue\" fontcolor=\"blue\"]")
        lines.append(f"\t\tlabel={q(ns)}")
        lines.append("\t}")
    for name in sorted(external):
        lines.append(f"\t{q(name)} [label={q(name)} color=\"red2\" fontcolor=\"red2\"]")
    for c in conns:
        lines.append(f"\t{q(c.src)} -> {q(c.dst)} [label={q(str(c.conns))} color=\"gold2\" fontcolor=\"darkgreen\"]")
    lines.append("}")
    return "\n".join(lines) + "\n"
