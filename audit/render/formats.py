"""The report formats, one registry: what `-f`, the file options (--json, --html, ...), `--formats`,
`report`, the rotation and ``audit.api.render`` all write.

HTML, PDF, Markdown and JUnit are imported only when rendered: start-up stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from audit.errors import InputError
from audit.report.model import Report


@dataclass(frozen=True)
class RenderOptions:
    """How a report is rendered: rows per HTML/PDF table (None: the format's default), the PDF/A
    variant, SARIF's path root and stdin file name, ANSI colour in the terminal text."""

    max_rows: int | None = None
    pdf_variant: str | None = None
    sarif_root: Path | None = None
    stdin_name: str = "stdin.yaml"
    colour: bool = False


@dataclass(frozen=True)
class ReportFormat:
    """One format: its name, the extension of its files, and its renderer."""

    name: str
    extension: str
    render: Callable[[Report, RenderOptions], str | bytes]
    printed_as: str = "text"
    """How the CLI prints it: ``json`` keeps JSON valid while escaping control characters,
    ``trusted`` (the terminal text, safe already) prints as is."""
    chunks: Callable[[Report, RenderOptions], Iterator[str | bytes]] | None = None
    """The same bytes in pieces, for a file written without the whole of it in memory."""


def _json(report: Report, _: RenderOptions) -> bytes:
    from audit.render.json_report import render_json_bytes

    return render_json_bytes(report)


def _json_chunks(report: Report, _: RenderOptions) -> Iterator[bytes]:
    from audit.render.json_report import json_chunks

    return json_chunks(report)


def _html(report: Report, options: RenderOptions) -> str:
    from audit.render.html import DEFAULT_MAX_ROWS, render_html

    return render_html(report, options.max_rows or DEFAULT_MAX_ROWS)


def _html_chunks(report: Report, options: RenderOptions) -> Iterator[str]:
    from audit.render.html import DEFAULT_MAX_ROWS, html_chunks

    return html_chunks(report, options.max_rows or DEFAULT_MAX_ROWS)


def _pdf(report: Report, options: RenderOptions) -> bytes:
    from audit.render.pdf import DEFAULT_MAX_ROWS, render_pdf

    return render_pdf(report, options.max_rows or DEFAULT_MAX_ROWS, options.pdf_variant)


def _sarif(report: Report, options: RenderOptions) -> str:
    from audit.render.sarif import render_sarif

    return render_sarif(report, options.sarif_root, options.stdin_name)


def _text(report: Report, options: RenderOptions) -> str:
    from audit.render.terminal import render_terminal

    return render_terminal(report, colour=options.colour)


def _markdown(report: Report, _: RenderOptions) -> str:
    from audit.render.markdown import render_markdown

    return render_markdown(report)


def _junit(report: Report, _: RenderOptions) -> str:
    from audit.render.junit import render_scan_junit

    return render_scan_junit(report)


FORMATS: dict[str, ReportFormat] = {f.name: f for f in (
    ReportFormat("json", "json", _json, "json", _json_chunks),
    ReportFormat("html", "html", _html, chunks=_html_chunks),
    ReportFormat("pdf", "pdf", _pdf),
    ReportFormat("sarif", "sarif", _sarif, "json"),
    ReportFormat("txt", "txt", _text, "trusted"),
    ReportFormat("markdown", "md", _markdown),
    ReportFormat("junit", "xml", _junit),
)}
"""Every report format by name; ``txt`` is the terminal text (``-f text`` names it too)."""

ALIASES = {"text": "txt"}


def report_format(name: str) -> ReportFormat:
    """The format called ``name`` (or its alias), else an input error listing the formats."""
    found = FORMATS.get(ALIASES.get(name, name))
    if found is None:
        raise InputError(f"unknown report format {name!r}: choose from {', '.join(FORMATS)}")
    return found


def render(report: Report, name: str, options: RenderOptions = RenderOptions()) -> str | bytes:
    """``report`` in the format called ``name``."""
    return report_format(name).render(report, options)


def parse_formats(value: str, option: str = "--formats") -> tuple[str, ...]:
    """A comma-separated list of format names, in order, each once."""
    names = tuple(dict.fromkeys(ALIASES.get(f, f) for f in (f.strip().lower() for f in value.split(",")) if f))
    if not names or any(n not in FORMATS for n in names):
        raise InputError(f"{option} {value!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return names
