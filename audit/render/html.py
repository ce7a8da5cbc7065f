"""The HTML report: one self-contained file, readable offline and with JavaScript off."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

from audit.render.view import environment, read_asset, view_model
from audit.report.model import Report

DEFAULT_MAX_ROWS = 5000
_PIECE = 1 << 20


def csp_hash(text: str) -> str:
    """A Content-Security-Policy source for exactly this inline block."""
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def cluster_label(report: Report) -> str:
    scan = report.scan
    if scan.cluster or scan.context:
        return scan.cluster or scan.context or ""
    if scan.source == "manifests":
        return "manifests"
    return scan.server or scan.source


def render_html(report: Report, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    """Render the report; every string from the input is escaped, and the page's CSP allows
    only its own inline style and script, so even a missed escape could not run code."""
    return "".join(html_chunks(report, max_rows))


def html_chunks(report: Report, max_rows: int = DEFAULT_MAX_ROWS) -> Iterator[str]:
    """`render_html` in pieces of about a megabyte, for a file written without the page whole in memory."""
    css, script = read_asset("report.css"), read_asset("report.js")
    template = environment().get_template("report.html.j2")
    pieces = template.generate(
        **view_model(report, max_rows), css=css, script=script, cluster_label=cluster_label(report),
        style_hash=csp_hash(css), script_hash=csp_hash(script),
    )
    batch: list[str] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= _PIECE:
            yield "".join(batch)
            batch, size = [], 0
    yield "".join(batch)
