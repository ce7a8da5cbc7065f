"""What a run does with a report once it has one: the files it writes (each atomically, signed
when a key is given), the CronJob rotation, the metrics and the exit decision. The CLI and
``audit.api`` both call these; nothing here prints.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from audit.forkshare import run_shared
from audit.ops.atomic import as_bytes, write_atomic, write_atomic_chunks
from audit.ops.rotation import RunFiles, prepare, signed_renders, write_run
from audit.render.formats import FORMATS, RenderOptions, report_format
from audit.report.model import Report
from audit.report.severity import at_least

if TYPE_CHECKING:
    from audit.ops.evidence import SigningKey

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_CLUSTER, EXIT_INCOMPLETE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
EXIT_UNKNOWN = 6
"""`reach`: an answer depends on what the input does not hold (an address a DNS name resolves to, a secret)."""


@dataclass(frozen=True)
class Outputs:
    """Everything a run writes besides what it prints: files by format, the rotated run folder
    (``output_dir``, ``formats``, ``keep``), the metrics file and Pushgateway, and how to render
    and sign them."""

    files: tuple[tuple[str, Path], ...] = ()
    """(format, path) pairs: ``("json", Path("out.json"))``."""
    render: RenderOptions = RenderOptions()
    signer: SigningKey | None = None
    output_dir: Path | None = None
    formats: tuple[str, ...] = ("json", "html", "pdf")
    keep: int = 30
    metrics_file: Path | None = None
    pushgateway: str | None = None
    progress: Callable[[str], None] = field(default=lambda _: None, compare=False)
    jobs: int = 1
    """Processes sharing the files (audit.forkshare): each file is written in one of them."""

    def check(self) -> None:
        """Fail before scanning when an output cannot be written: unknown formats, a run folder
        that cannot take files, a Pushgateway URL that is not one."""
        if self.pushgateway:
            from audit.ops.metrics import check_pushgateway_url

            check_pushgateway_url(self.pushgateway)
        for name in (*self.formats, *(f for f, _ in self.files)):
            report_format(name)
        if self.output_dir is not None:
            prepare(self.output_dir)


Renders = dict[str, Callable[[], str | bytes]]


def renderers(report: Report, outputs: Outputs) -> Renders:
    """Format name -> a function rendering it once (each module imported only when used; asked
    again, the same text): the files and the run folder share them. With a signer the PDF comes
    signed."""

    def pdf() -> bytes:
        outputs.progress("rendering the PDF")
        rendered = FORMATS["pdf"].render(report, outputs.render)
        assert isinstance(rendered, bytes)
        return outputs.signer.sign_pdf(rendered) if outputs.signer is not None else rendered

    out: Renders = {name: functools.cache(functools.partial(fmt.render, report, dataclasses.replace(outputs.render, colour=False)))
                    for name, fmt in FORMATS.items()}
    out["pdf"] = functools.cache(pdf)
    return out


def write_files(report: Report, outputs: Outputs, render: Renders | None = None) -> list[Path]:
    """Write ``outputs.files``, each atomically; with a signer the PDF is signed and the JSON
    result gets a detached signature beside it (FILE.sig). ``render``: renderers to share."""
    render = render or renderers(report, outputs)
    writes = [functools.partial(_write_file, report, outputs, render, name, path) for name, path in outputs.files]
    # Shared only without a run folder: it renders the same formats again, from this process's renders.
    return [p for written in run_shared(writes, outputs.jobs if outputs.output_dir is None else 1) for p in written]


def _write_file(report: Report, outputs: Outputs, render: Renders, name: str, path: Path) -> list[Path]:
    fmt = report_format(name)
    name = fmt.name
    if fmt.chunks is not None and outputs.signer is None:  # written piece by piece: a 70 MB result never whole in memory
        write_atomic_chunks(path, fmt.chunks(report, outputs.render))
        return [path]
    content = render[name]()
    signature = outputs.signer.sign_detached(as_bytes(content)) if outputs.signer is not None and name == "json" else None
    write_atomic(path, content)
    if signature is None:
        return [path]
    sig = path.with_name(path.name + ".sig")
    write_atomic(sig, signature)
    return [path, sig]


def write_rotation(report: Report, outputs: Outputs, render: Renders | None = None) -> RunFiles:
    """CronJob mode: the run's files timestamped in ``outputs.output_dir``, latest.* switched (a
    complete scan only: latest.json is the next run's baseline), runs beyond ``keep`` pruned."""
    if outputs.output_dir is None:
        raise ValueError("write_rotation needs outputs.output_dir")
    render = render or renderers(report, outputs)
    by_extension = {FORMATS[f].extension: render[report_format(f).name] for f in outputs.formats}
    return write_run(outputs.output_dir, report.generated_datetime, signed_renders(by_extension, outputs.signer),
                     outputs.keep, publish=report.scan.complete)


def export_metrics(report: Report, outputs: Outputs, seconds: float, previous: Report | None = None) -> None:
    """Prometheus metrics to the metrics file and the Pushgateway (one group per cluster, so
    clusters sharing a gateway never overwrite each other); ``previous`` dates the last success."""
    if not (outputs.metrics_file or outputs.pushgateway):
        return
    from audit.ops.metrics import push_metrics, registry_for, write_metrics

    last_success = previous.generated_datetime.timestamp() if previous is not None and previous.scan.complete else None
    registry = registry_for(report, seconds, time.time(), last_success)
    if outputs.metrics_file:
        write_metrics(str(outputs.metrics_file), registry)
    if outputs.pushgateway:
        from audit.render.html import cluster_label

        push_metrics(outputs.pushgateway, registry, grouping={"cluster": cluster_label(report)})


@dataclass(frozen=True)
class Outcome:
    """A run's exit code and, when it is not 0 for plain reasons, the line that says why."""

    code: int
    reason: str | None = None


def outcome(report: Report, fail_on: str | None = None, fail_on_new: str | None = None, allow_partial: bool = False,
            left_out: int = 0) -> Outcome:
    """The exit decision: 4 for an incomplete scan (unless ``allow_partial``, or objects were left
    out on purpose), 1 for a finding at or above ``fail_on`` or a new one at or above
    ``fail_on_new`` since the baseline, else 0. ``None`` (or "none") disables a threshold."""
    if not report.scan.complete and not allow_partial and not left_out:
        return Outcome(EXIT_INCOMPLETE, "the scan is INCOMPLETE (see the collection issues); exit 4")
    if fail_on not in (None, "none") and report.failing(fail_on):
        return Outcome(EXIT_FINDINGS)
    if fail_on_new not in (None, "none"):
        new = [f for f in (report.trend.new if report.trend else ()) if at_least(f.severity, fail_on_new)]
        if new:
            return Outcome(EXIT_FINDINGS, f"{len(new)} new finding(s) at or above {fail_on_new} since the baseline")
    return Outcome(EXIT_OK)

