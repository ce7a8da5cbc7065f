"""Printing a report (or writing it with -o) beside the files a run writes."""

from __future__ import annotations

import dataclasses

from audit.cli.common import echo, use_colour
from audit.cli.options import Format, Printed
from audit.ops.atomic import write_atomic, write_atomic_chunks
from audit.ops.run import Outputs, Renders, write_files
from audit.render.formats import report_format
from audit.report.model import Report


def emit(report: Report, printed: Printed, outputs: Outputs, print_report: bool = True, render: Renders | None = None) -> None:
    """Write every requested file (each atomically, signed when a key is given), then print the
    --format output or write it to -o. ``render``: renderers shared with the run folder."""
    write_files(report, outputs, render)
    if not print_report:
        return
    fmt = report_format(printed.format.canonical.value)
    colour = printed.format.canonical is Format.text and printed.output is None and use_colour(printed.no_color)
    options = dataclasses.replace(outputs.render, colour=colour)
    if printed.output and fmt.chunks is not None:  # written piece by piece, as the file options write it
        write_atomic_chunks(printed.output, fmt.chunks(report, options))
        return
    content = fmt.render(report, options)
    if printed.output:
        write_atomic(printed.output, content)
    else:
        echo(content.decode() if isinstance(content, bytes) else content, nl=False, kind=fmt.printed_as)
