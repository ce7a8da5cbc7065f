"""The command line: a thin layer over sources, the pipeline and the renderers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import os
import re
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from tabulate import tabulate

from audit import __version__
from audit.checks.catalogue import all_checks
from audit.checks.registry import ObservedTraffic
from audit.cli.progress import QUIET, display, status
from audit.config import DEFAULT_EXCLUDED, Config, load_config
from audit.errors import AuditError, InputError, OutputError
from audit.inventory import Inventory
from audit.observed import FlowInput
from audit.ops.atomic import write_atomic, write_atomic_chunks, written
from audit.ops.rotation import EXTENSIONS, parse_formats, prepare, previous_result, signed_renders, write_run
from audit.ops.trend import with_trend
from audit.pipeline import analyse, findings_of, observe, report_of, run_audit
from audit.render.json_report import render_json
from audit.render.safe import json_terminal_safe, terminal_safe
from audit.render.sarif import render_sarif
from audit.render.summary import render_summary_line
from audit.render.terminal import render_terminal
from audit.report.model import Report
from audit.report.severity import at_least
from audit.sources.manifests import load_manifests

if TYPE_CHECKING:
    from audit.engine.analysis import Analysis
    from audit.engine.connectivity import Connection
    from audit.ops.evidence import SigningKey
    from audit.sources.cluster import ConnectOptions

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_CLUSTER, EXIT_INCOMPLETE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
EXIT_UNKNOWN = 6
"""`reach`: an answer depends on what the input does not hold (an address a DNS name resolves to, a secret)."""

app = typer.Typer(
    name="netpol-audit",
    help="Audit Kubernetes NetworkPolicy coverage by effect: default-deny, unselected pods, "
    "over-permissive rules, DNS under egress deny, and CNIs that enforce nothing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(str, enum.Enum):
    text = "text"
    txt = "txt"
    """The same as text, by the name the renderers and --formats use."""
    json = "json"
    sarif = "sarif"
    markdown = "markdown"

    @property
    def canonical(self) -> Format:
        return Format.text if self is Format.txt else self


class VerifyFormat(str, enum.Enum):
    """The formats of `verify` and `checks`: anything else is refused, never printed as text."""

    text = "text"
    json = "json"


class FailOn(str, enum.Enum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"
    none = "none"




def _echo(text: str, err: bool = False, nl: bool = True, kind: str = "text") -> None:
    """Print ``text`` with every control character from the input escaped (see audit.render.safe):
    ``json`` stays the same JSON (characters escaped as \\uXXXX); ``trusted`` text (the terminal
    report, already made safe, with its colours) is printed as is."""
    safe = text if kind == "trusted" else json_terminal_safe(text) if kind == "json" else terminal_safe(text)
    typer.echo(safe, err=err, nl=nl)


def _interrupted() -> None:
    """Ctrl-C: say exactly what was written before it (every write is whole or absent)."""
    done = written()
    _echo("netpol-audit: interrupted; " + (f"already written in full: {', '.join(done)}; nothing else" if done else "nothing was written"),
          err=True)


def _version(value: bool) -> None:
    if value:
        _echo(f"netpol-audit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display (it is shown only when stderr is a terminal)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every API request (method, URL, status) on stderr."),
) -> None:
    """netpol-audit."""
    QUIET.set(quiet)
    if verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("netpol-audit: %(name)s: %(message)s"))
        requests = logging.getLogger("urllib3.connectionpool")  # one line per request: method, URL, status
        requests.addHandler(handler)
        level = requests.level
        requests.setLevel(logging.DEBUG)

        def done() -> None:
            requests.removeHandler(handler)
            requests.setLevel(level)

        ctx.call_on_close(done)


def parse_now(value: str | None, option: str = "--now") -> dt.datetime | None:
    """``--now``: an ISO 8601 time (or date) to stamp the report with, for reproducible output."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{option}: {value!r} is not an ISO 8601 time (e.g. 2026-01-31T00:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _use_colour(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def _fail(exc: AuditError) -> typer.Exit:
    _echo(f"netpol-audit: error: {exc}", err=True)
    return typer.Exit(exc.exit_code)


# Output options shared by `scan` and `report`, declared once.
JSON_FILE = typer.Option(None, "--json", help="Also write the JSON result to this file.")
SARIF_FILE = typer.Option(None, "--sarif", help="Also write SARIF 2.1.0 to this file.")
HTML_FILE = typer.Option(None, "--html", help="Also write the self-contained HTML report to this file.")
PDF_FILE = typer.Option(None, "--pdf", help="Also write the PDF report (with the JSON result attached) to this file.")
MAX_ROWS = typer.Option(None, "--max-rows", min=1, help="Rows per table in HTML/PDF (default 5000 in HTML, 500 in PDF); totals always show.")
PDF_VARIANT = typer.Option(None, "--pdf-variant", help="PDF variant: pdf/a-3b or pdf/a-3u (archival, with the JSON attached).")
FORMAT = typer.Option(Format.text, "--format", "-f", help="What to print (or write with -o).")
OUTPUT = typer.Option(None, "--output", "-o", help="Write the --format output to this file instead of stdout.")
AUDIT_CONFIG = typer.Option(None, "--config", "-c", help="Audit configuration (YAML).")
EXCLUDE_NAMESPACE = typer.Option(None, "--exclude-namespace", "-x", help="Also exclude this namespace (glob; repeatable).")
SARIF_ROOT = typer.Option(None, "--sarif-root", help="SARIF file paths are relative to this folder (default: the current directory), under the SRCROOT base.")
STDIN_NAME = typer.Option("stdin.yaml", "--stdin-name", help="The file name SARIF gives to manifests read from stdin (-).")
NO_COLOR = typer.Option(False, "--no-color", help="No ANSI colour (also off when NO_COLOR is set or stdout is not a terminal).")


def _bytes(content: str | bytes) -> bytes:
    """What write_atomic writes for ``content``."""
    return content.encode("utf-8") if isinstance(content, str) else content


def _renderers(report: Report, max_rows: Optional[int], pdf_variant: Optional[str], sarif_root: Optional[Path] = None,
               stdin_name: str = "stdin.yaml", signer: SigningKey | None = None) -> dict[str, Callable[[], str | bytes]]:
    """File format -> a function rendering it; HTML and PDF are imported only when used; with
    ``signer`` the PDF comes signed."""

    def html() -> str:
        from audit.render.html import DEFAULT_MAX_ROWS, render_html

        return render_html(report, max_rows or DEFAULT_MAX_ROWS)

    def markdown() -> str:
        from audit.render.markdown import render_markdown  # imported when used: start-up stays fast

        return render_markdown(report)

    def junit() -> str:
        from audit.render.junit import render_scan_junit

        return render_scan_junit(report)

    def pdf() -> bytes:
        from audit.render.pdf import DEFAULT_MAX_ROWS, render_pdf

        status("rendering the PDF")
        rendered = render_pdf(report, max_rows or DEFAULT_MAX_ROWS, pdf_variant)
        return signer.sign_pdf(rendered) if signer is not None else rendered

    return {"json": lambda: render_json(report), "html": html, "pdf": pdf,
            "sarif": lambda: render_sarif(report, sarif_root, stdin_name), "txt": lambda: render_terminal(report),
            "markdown": markdown, "junit": junit}


def _emit(report: Report, format: Format, output: Optional[Path], no_color: bool, json_file: Optional[Path],
          sarif_file: Optional[Path], html_file: Optional[Path], pdf_file: Optional[Path], max_rows: Optional[int],
          pdf_variant: Optional[str], print_report: bool = True, sarif_root: Optional[Path] = None,
          stdin_name: str = "stdin.yaml", junit_file: Optional[Path] = None, signer: SigningKey | None = None) -> None:
    """Write every requested file (each atomically), then print or write the --format output. With
    ``signer`` the PDF is signed and the JSON result gets a detached signature (FILE.sig)."""
    format = format.canonical
    render = _renderers(report, max_rows, pdf_variant, sarif_root, stdin_name, signer)
    for path, kind in ((json_file, "json"), (sarif_file, "sarif"), (html_file, "html"), (pdf_file, "pdf"), (junit_file, "junit")):
        if path:
            content = render[kind]()
            signature = signer.sign_detached(_bytes(content)) if signer is not None and kind == "json" else None
            write_atomic(path, content)
            if signature is not None:
                write_atomic(path.with_name(path.name + ".sig"), signature)
    if not print_report:
        return
    if format is Format.text:
        text = render_terminal(report, colour=output is None and _use_colour(no_color))
    else:
        text = str(render[format.value]())
    if output:
        write_atomic(output, text)
    else:
        _echo(text, nl=False, kind="trusted" if format is Format.text else "json" if format in (Format.json, Format.sarif) else "text")


# Options shared by every command that reads a live cluster, declared once.
KUBECONFIG = typer.Option(None, "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; in a pod: its ServiceAccount).")
CONTEXT = typer.Option(None, "--context", help="Kubeconfig context to use (default: the current one).")
REQUEST_TIMEOUT = typer.Option("30s", "--request-timeout", help="How long one API request may take in all (connect, headers, body), kubectl style: 30, 30s, 1m, 1m30s, 500ms (at least 1s); the whole collection stops after 30 minutes.")
PAGE_SIZE = typer.Option(500, "--page-size", min=1, max=10000, help="Objects per list page (limit/continue paging).")
DNS_CONFIG = typer.Option(None, "--config", "-c", help="Audit configuration (for the DNS location).")
ASSUME_ENFORCED = typer.Option(False, "--assume-enforced", help="Evaluate policy kinds the detected CNI does not enforce as if it did (planning a migration); reports say so.")
FLOWS = typer.Option(None, "--flows", help="Observed flows to judge the policies against (Hubble JSON lines, or CSV/JSON with src, dst, port, protocol); repeatable.")
CLUSTER_NAME = typer.Option(None, "--cluster-name", help="Name to show for the cluster in reports (default: the kubeconfig cluster name).")
JUNIT_FILE = typer.Option(None, "--junit", help="Also write JUnit XML: a test case per check and namespace, a failure per finding.")
# Signed evidence (audit.ops.evidence), declared once for scan and report.
SIGN_KEY = typer.Option(None, "--sign-key", help="Sign the PDF (PAdES) and the JSON (FILE.sig, detached CMS) with this private key (PEM or DER).")
SIGN_CERT = typer.Option(None, "--sign-cert", help="The signing certificate (PEM; the file may hold its chain).")
SIGN_PASS_ENV = typer.Option(None, "--sign-pass-env", help="The environment variable holding the passphrase of an encrypted --sign-key.")
SIGN_DIR = typer.Option(None, "--sign-dir", help="A mounted kubernetes.io/tls Secret (tls.key, tls.crt): sign with it when it holds a key; else do not sign.")
TSA_URL = typer.Option(None, "--tsa-url", help="Add an RFC 3161 timestamp from this Time Stamping Authority to every signature.")


def _signing(key: Optional[Path], cert: Optional[Path], pass_env: Optional[str], directory: Optional[Path], tsa_url: Optional[str]
             ) -> SigningKey | None:
    """The signing key the options name (checked before anything is written), or None."""
    from audit.ops.evidence import SigningKey

    if (key is None) != (cert is None):
        raise InputError("--sign-key and --sign-cert go together")
    if key is not None and cert is not None:
        if directory is not None:
            raise InputError("--sign-dir or --sign-key/--sign-cert, not both")
        return SigningKey.load(key, cert, pass_env, tsa_url)
    if directory is not None:
        return SigningKey.from_dir(directory, tsa_url)
    if tsa_url or pass_env:
        raise InputError("--tsa-url and --sign-pass-env need a signing key (--sign-key and --sign-cert, or --sign-dir)")
    return None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, option: str = "--request-timeout", minimum: float = 1.0) -> float:
    """Seconds from a kubectl-style duration: a bare number of seconds, or units such as 1m30s or 500ms."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise InputError(f"{option}: {text!r} is not a duration (use 30, 30s, 1m, 1m30s or 500ms)") from None
        seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds < minimum:
        raise InputError(f"{option}: {text!r} is shorter than {minimum:g}s")
    return seconds


def _connect_options(kubeconfig: Optional[Path], context: Optional[str], request_timeout: str | float, page_size: int,
                     cluster_name: Optional[str], namespaces: Optional[list[str]] = None) -> ConnectOptions:
    from audit.sources.cluster import ConnectOptions

    timeout = request_timeout if isinstance(request_timeout, float) else parse_duration(request_timeout)
    scoped = tuple(namespaces or ())
    if any(ch in ns for ns in scoped for ch in "*?["):
        scoped = ()  # globs scope the audit; the API lists by name, so a glob reads the whole cluster
    return ConnectOptions(str(kubeconfig) if kubeconfig else None, context, timeout, page_size, cluster_name,
                          namespaces=scoped, progress=status)


def _load_result(path: Path) -> Report:
    from audit.render.json_report import load_report

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    return load_report(text, str(path))


_LEFT_OUT: ContextVar[int] = ContextVar("left_out", default=0)
"""How many invalid manifest objects the running command left out (set by `_inputs_checked`)."""


def _config(config: Optional[Path], exclude_namespace: Optional[list[str]], namespaces: Optional[list[str]] = None,
            all_namespaces: bool = False) -> Config:
    """The configuration file (or the defaults), with `-x` exclusions added, `-n` scoping to
    namespaces, and `-A` dropping the built-in exclusions (kube-system, ...) as kubectl's -A would."""
    cfg = load_config(str(config) if config else None, {c.id for c in all_checks()})
    if all_namespaces and namespaces:
        raise InputError("-A and -n exclude each other (as in kubectl): -A audits every namespace, -n only those named")
    if all_namespaces:
        cfg = dataclasses.replace(cfg, excluded_namespaces=tuple(n for n in cfg.excluded_namespaces if n not in DEFAULT_EXCLUDED))
    if exclude_namespace:
        cfg = dataclasses.replace(cfg, excluded_namespaces=cfg.excluded_namespaces + tuple(exclude_namespace))
    if namespaces:
        cfg = dataclasses.replace(cfg, only_namespaces=tuple(namespaces))
    return cfg


def _check_output(output: Optional[Path], formats: str) -> None:
    """kubectl's `-o json` here would write a file named json: say what to type instead."""
    if output is not None and str(output) in ("json", "yaml", "wide", "name", "sarif", "text", "csv") and not output.exists():
        raise InputError(f"-o is the file to write here, not the format: for {output} output use -f {output} ({formats}); "
                         f"to write a file of that name, give a folder or an extension (-o ./out/{output} or -o {output}.out)")


def _named(inventory: Inventory, cluster_name: str | None) -> Inventory:
    """``--cluster-name`` is honoured for manifests and replayed inventories too."""
    if not cluster_name:
        return inventory
    return dataclasses.replace(inventory, collection=dataclasses.replace(inventory.collection, cluster=cluster_name))


def _load_inventory(paths: Optional[list[str]], inventory_file: Optional[Path], opts: ConnectOptions) -> Inventory:
    """Manifests when paths are given, a saved inventory with --inventory, else the live cluster.

    An invalid object that is not a policy is left out: one error line each on stderr, the run
    goes on, and the command ends with exit 2 (see `_inputs_checked`).
    """
    if paths and inventory_file:
        raise InputError("give manifest paths or --inventory, not both")
    if paths:
        inventory = load_manifests(paths, sys.stdin)
        left_out = inventory.collection.invalid_objects
        for issue in left_out:
            _echo(f"netpol-audit: error: {issue.reason} ({issue.resource} left out; the run goes on)", err=True)
        _LEFT_OUT.set(_LEFT_OUT.get() + len(left_out))
        return _named(inventory, opts.cluster_name)
    if inventory_file:
        from audit.sources.replay import load_inventory

        return _named(load_inventory(str(inventory_file)), opts.cluster_name)
    from audit.sources.cluster import collect

    return collect(opts)


def _flow_input(flows: Optional[list[Path]] | list[str], since: str | None = None, until: str | None = None) -> FlowInput | None:
    if not flows:
        return None
    from audit.sources.flows import flow_input
    from audit.sources.flowsql import Window

    return flow_input([str(p) for p in flows], Window(parse_now(since, "--since"), parse_now(until, "--until")))


def _left_out() -> int:
    return _LEFT_OUT.get()


def _shows_progress(command: Callable[..., None]) -> Callable[..., None]:
    """A command whose long work shows progress on stderr when it is a terminal (see audit.cli.progress)."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        with display():
            command(*args, **kwargs)
    return run


def _inputs_checked(command: Callable[..., None]) -> Callable[..., None]:
    """A command that read invalid manifest objects ends with exit 2 (input error) once its work is
    done, instead of 0, 1 (findings, a denied path) or 4 (incomplete); other codes stand."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        token = _LEFT_OUT.set(0)
        try:
            try:
                command(*args, **kwargs)
            except typer.Exit as exc:
                if exc.exit_code not in (EXIT_OK, EXIT_FINDINGS, EXIT_INCOMPLETE) or not _left_out():
                    raise
            if _left_out():
                _echo(f"netpol-audit: {_left_out()} invalid object(s) left out (see above); exit 2", err=True)
                raise typer.Exit(EXIT_USAGE)
        finally:
            _LEFT_OUT.reset(token)
    return run


@app.command()
@_inputs_checked
@_shows_progress
def scan(
    paths: Optional[list[str]] = typer.Argument(None, help="Manifest files or folders (recursive); '-' reads stdin. None: the live cluster."),
    config: Optional[Path] = AUDIT_CONFIG,
    format: Format = FORMAT,
    output: Optional[Path] = OUTPUT,
    json_file: Optional[Path] = JSON_FILE,
    sarif_file: Optional[Path] = SARIF_FILE,
    html_file: Optional[Path] = HTML_FILE,
    pdf_file: Optional[Path] = PDF_FILE,
    max_rows: Optional[int] = MAX_ROWS,
    pdf_variant: Optional[str] = PDF_VARIANT,
    fail_on: FailOn = typer.Option(FailOn.none, "--fail-on", help="Exit 1 when an unwaived finding is at or above this severity."),
    fail_on_new: FailOn = typer.Option(FailOn.none, "--fail-on-new", help="Exit 1 when a finding NEW since --baseline (or the last run in --output-dir) is at or above this severity."),
    junit_file: Optional[Path] = JUNIT_FILE,
    exclude_namespace: Optional[list[str]] = EXCLUDE_NAMESPACE,
    namespace: Optional[list[str]] = typer.Option(None, "--namespace", "-n", help="Audit only this namespace (glob; repeatable); the rest are still read, as peers."),
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Audit every namespace, kube-system and the other built-in exclusions too."),
    now: Optional[str] = typer.Option(None, "--now", help="Report time (ISO 8601), for reproducible output."),
    no_color: bool = NO_COLOR,
    sarif_root: Optional[Path] = SARIF_ROOT,
    stdin_name: str = STDIN_NAME,
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="CronJob mode: write timestamped reports and latest.* here, prune old runs, print one JSON summary line."),
    formats: str = typer.Option("json,html,pdf", "--formats", help="Formats written to --output-dir (json, html, pdf, sarif, txt, markdown, junit)."),
    keep: int = typer.Option(30, "--keep", min=1, help="Runs kept in --output-dir; older ones are pruned."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A previous JSON result to compare with (default with --output-dir: its latest.json)."),
    metrics_file: Optional[Path] = typer.Option(None, "--metrics-file", help="Write Prometheus metrics (text exposition format) to this file."),
    pushgateway: Optional[str] = typer.Option(None, "--pushgateway", help="Push the metrics to this Prometheus Pushgateway URL."),
    inventory_file: Optional[Path] = typer.Option(None, "--inventory", help="Analyse an inventory saved by `netpol-audit collect`."),
    assume_enforced: bool = ASSUME_ENFORCED,
    flows: Optional[list[Path]] = FLOWS,
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Exit 0/1 even when a core resource could not be read (the report still says INCOMPLETE)."),
    sign_key: Optional[Path] = SIGN_KEY,
    sign_cert: Optional[Path] = SIGN_CERT,
    sign_pass_env: Optional[str] = SIGN_PASS_ENV,
    sign_dir: Optional[Path] = SIGN_DIR,
    tsa_url: Optional[str] = TSA_URL,
    kubeconfig: Optional[Path] = KUBECONFIG,
    context: Optional[str] = CONTEXT,
    request_timeout: str = REQUEST_TIMEOUT,
    page_size: int = PAGE_SIZE,
    cluster_name: Optional[str] = CLUSTER_NAME,
) -> None:
    """Audit manifests (files, folders, stdin), a saved inventory, or the live cluster.

    Exit codes: 0 done, 1 a finding at or above --fail-on, 2 usage or input error,
    3 cluster unreachable or credentials rejected, 4 incomplete scan (without --allow-partial).
    """
    started = time.monotonic()
    try:
        _check_output(output, "text, json, sarif or markdown")
        if fail_on_new is not FailOn.none and not (baseline or output_dir):
            raise InputError("--fail-on-new compares with a baseline: give --baseline RESULT.json (or use --output-dir)")
        cfg = _config(config, exclude_namespace, namespace, all_namespaces)
        stamp = parse_now(now)
        signer = _signing(sign_key, sign_cert, sign_pass_env, sign_dir, tsa_url)
        if pushgateway:
            from audit.ops.metrics import check_pushgateway_url

            check_pushgateway_url(pushgateway)
        run_formats = parse_formats(formats) if output_dir else ()
        if output_dir:
            prepare(output_dir)
        previous = _load_result(baseline) if baseline else None
        if previous is not None and not previous.scan.complete:
            _echo(f"netpol-audit: warning: the baseline {baseline} is an incomplete scan; it is not used for the trend", err=True)
            previous = None
        inventory = _load_inventory(paths, inventory_file,
                                    _connect_options(kubeconfig, context, request_timeout, page_size, cluster_name, namespace))
        status(f"analysing {len(inventory.workloads):,} workloads, {len(inventory.policies):,} policies")
        report = run_audit(inventory, cfg, stamp, assume_enforced=assume_enforced, flows=_flow_input(flows))
        del inventory  # the report holds what it needs: at 150k pods the inventory is hundreds of MB the renderers never read
        status("writing the reports")
        if output_dir and not baseline:
            previous, problem = previous_result(output_dir)
            if problem:
                _echo(f"netpol-audit: warning: {problem}", err=True)
        report = with_trend(report, previous)
        _emit(report, format, output, no_color, json_file, sarif_file, html_file, pdf_file, max_rows, pdf_variant,
              print_report=output_dir is None, sarif_root=sarif_root, stdin_name=stdin_name, junit_file=junit_file, signer=signer)
        if output_dir:
            renders = _renderers(report, max_rows, pdf_variant, sarif_root, stdin_name, signer)
            # Only a complete scan becomes latest.* (and so the next run's baseline).
            by_extension = {EXTENSIONS.get(f, f): renders[f] for f in run_formats}
            files = write_run(output_dir, report.generated_datetime, signed_renders(by_extension, signer), keep,
                              publish=report.scan.complete)
            _echo(render_summary_line(report, [str(p) for p in files.written]), nl=False, kind="json")
        if metrics_file or pushgateway:
            from audit.ops.metrics import push_metrics, registry_for, write_metrics

            last_success = previous.generated_datetime.timestamp() if previous is not None and previous.scan.complete else None
            registry = registry_for(report, time.monotonic() - started, time.time(), last_success)
            if metrics_file:
                write_metrics(str(metrics_file), registry)
            if pushgateway:
                # One group per cluster: clusters sharing a gateway never overwrite each other.
                from audit.render.html import cluster_label

                push_metrics(pushgateway, registry, grouping={"cluster": cluster_label(report)})
    except AuditError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        _interrupted()
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if not report.scan.complete and not allow_partial and not _left_out():
        _echo("netpol-audit: the scan is INCOMPLETE (see the collection issues); exit 4", err=True)
        raise typer.Exit(EXIT_INCOMPLETE)
    if fail_on is not FailOn.none and report.failing(fail_on.value):
        raise typer.Exit(EXIT_FINDINGS)
    if fail_on_new is not FailOn.none:
        new = [f for f in (report.trend.new if report.trend else ()) if at_least(f.severity, fail_on_new.value)]
        if new:
            _echo(f"netpol-audit: {len(new)} new finding(s) at or above {fail_on_new.value} since the baseline", err=True)
            raise typer.Exit(EXIT_FINDINGS)


@app.command()
def report(
    result: Path = typer.Argument(..., help="A JSON result written by `scan --json` (or `-f json`)."),
    format: Format = FORMAT,
    output: Optional[Path] = OUTPUT,
    json_file: Optional[Path] = JSON_FILE,
    sarif_file: Optional[Path] = SARIF_FILE,
    html_file: Optional[Path] = HTML_FILE,
    pdf_file: Optional[Path] = PDF_FILE,
    max_rows: Optional[int] = MAX_ROWS,
    pdf_variant: Optional[str] = PDF_VARIANT,
    no_color: bool = NO_COLOR,
    sarif_root: Optional[Path] = SARIF_ROOT,
    stdin_name: str = STDIN_NAME,
    sign_key: Optional[Path] = SIGN_KEY,
    sign_cert: Optional[Path] = SIGN_CERT,
    sign_pass_env: Optional[str] = SIGN_PASS_ENV,
    sign_dir: Optional[Path] = SIGN_DIR,
    tsa_url: Optional[str] = TSA_URL,
    junit_file: Optional[Path] = JUNIT_FILE,
) -> None:
    """Render a saved JSON result (terminal, HTML, PDF, SARIF, JUnit) without scanning again."""
    try:
        _check_output(output, "text, json, sarif or markdown")
        signer = _signing(sign_key, sign_cert, sign_pass_env, sign_dir, tsa_url)
        saved = _load_result(result)
        _emit(saved, format, output, no_color, json_file, sarif_file, html_file, pdf_file, max_rows, pdf_variant,
              sarif_root=sarif_root, stdin_name=stdin_name, signer=signer, junit_file=junit_file)
    except AuditError as exc:
        raise _fail(exc) from None


INVENTORY = typer.Option(None, "--inventory", help="Read an inventory saved by `netpol-audit collect` instead.")


def _analysis(paths: Optional[list[str]], inventory_file: Optional[Path], config: Optional[Path], opts: ConnectOptions,
              assume_enforced: bool = False) -> tuple[Analysis, Inventory]:
    """The analysis of any input, for the commands that ask reachability questions."""
    cfg = load_config(str(config) if config else None, {c.id for c in all_checks()})
    inventory = _load_inventory(paths, inventory_file, opts)
    return analyse(inventory, cfg, assume_enforced), inventory


def _say_enforcement(analysis: Analysis, label: str = "") -> None:
    """At the top of every answer (stderr, so data on stdout stays parseable): whether the network
    enforces what the policies declare."""
    from audit.engine.cni import enforcement_note

    note = enforcement_note(analysis.cni, analysis.assume_enforced)
    if note:
        _echo(f"{label}{note}", err=True)


@app.command()
@_inputs_checked
def reach(
    source: str = typer.Argument(..., help="ns/name (pod or workload), ns (every pod), dns, or an IP address."),
    destination: str = typer.Argument(..., help="ns/name, ns, dns, an IP address, or a DNS name (api.stripe.com: a namespace never holds a dot)."),
    paths: Optional[list[str]] = typer.Argument(None, help="Manifest files or folders; none: --inventory or the live cluster."),
    port: Optional[str] = typer.Option(None, "--port", "-p", help="N or N/PROTO (default: every port the destination declares)."),
    src_selector: Optional[str] = typer.Option(None, "--src-selector", "-l", help="Narrow a namespace source by labels, as kubectl -l takes them (app=web, tier!=db, app in (a,b), !legacy)."),
    dst_selector: Optional[str] = typer.Option(None, "--dst-selector", "-L", help="Narrow a namespace destination by labels."),
    http: Optional[str] = typer.Option(None, "--http", help='An HTTP request to judge against the policies\' L7 rules: "GET /api/v1/products/42".'),
    header: Optional[list[str]] = typer.Option(None, "--header", help='A request header, "Name: value" (repeatable; Host included).'),
    address: Optional[str] = typer.Option(None, "--address", help="For a DNS name destination: the address it resolves to (else every range the policies cut is tried)."),
    config: Optional[Path] = DNS_CONFIG,
    assume_enforced: bool = ASSUME_ENFORCED,
    inventory_file: Optional[Path] = INVENTORY,
    kubeconfig: Optional[Path] = KUBECONFIG,
    context: Optional[str] = CONTEXT,
    request_timeout: str = REQUEST_TIMEOUT,
    page_size: int = PAGE_SIZE,
    cluster_name: Optional[str] = CLUSTER_NAME,
) -> None:
    """Can SOURCE connect to DESTINATION? The verdict per port, with the policies and rules that decided each side.

    Exit codes: 0 every path allowed, 1 a path denied, 2 usage or input error, 3 cluster error,
    6 an answer is unknown or conditional (it depends on what the input does not hold: the address a
    DNS name resolves to, a secret, another pod's lookups).
    """
    from audit.engine.l7 import parse_request
    from audit.engine.reach import check_paths, parse_label_selector, render_paths, resolve

    try:
        if header and not http:
            raise InputError("--header needs --http (the request the headers belong to)")
        request = parse_request(http, header or ()) if http else None
        analysis, _ = _analysis(paths, inventory_file, config, _connect_options(kubeconfig, context, request_timeout, page_size, cluster_name),
                                assume_enforced)
        _say_enforcement(analysis)
        sources = resolve(analysis, source, parse_label_selector(src_selector))
        destinations = resolve(analysis, destination, parse_label_selector(dst_selector))
        results = check_paths(analysis, sources, destinations, port, request, address)
    except AuditError as exc:
        raise _fail(exc) from None
    _echo(render_paths(results), nl=False)
    if any(r.answer == "denied" for r in results):
        raise typer.Exit(EXIT_FINDINGS)
    if any(r.answer in ("unknown", "conditional") for r in results):
        raise typer.Exit(EXIT_UNKNOWN)


class ConnFormat(str, enum.Enum):
    txt = "txt"
    json = "json"
    csv = "csv"
    dot = "dot"
    matrix = "matrix"
    blast = "blast"


@app.command()
@_inputs_checked
@_shows_progress
def connectivity(
    paths: Optional[list[str]] = typer.Argument(None, help="Manifest files or folders; none: --inventory or the live cluster."),
    format: ConnFormat = typer.Option(ConnFormat.txt, "--format", "-f", help="txt, json, csv, dot (Graphviz), matrix (namespace x namespace) or blast (blast radius per namespace)."),
    output: Optional[Path] = OUTPUT,
    namespace: Optional[list[str]] = typer.Option(None, "--namespace", "-n", help="Only connections from or to these namespaces (repeatable)."),
    bare_ranges: bool = typer.Option(False, "--bare-ranges", help="Outside ranges as `first-last`, without netpol-analyzer's `[External]` suffix."),
    config: Optional[Path] = DNS_CONFIG,
    assume_enforced: bool = ASSUME_ENFORCED,
    inventory_file: Optional[Path] = INVENTORY,
    kubeconfig: Optional[Path] = KUBECONFIG,
    context: Optional[str] = CONTEXT,
    request_timeout: str = REQUEST_TIMEOUT,
    page_size: int = PAGE_SIZE,
    cluster_name: Optional[str] = CLUSTER_NAME,
) -> None:
    """List every allowed connection: `src => dst : connections`, workloads and outside address ranges."""
    from audit.engine.connectivity import bare, connections
    from audit.render.connectivity import render
    from audit.report.build import blast_rows, namespaces_with_pods

    try:
        _check_output(output, "txt, json, csv, dot, matrix or blast")
        analysis, _ = _analysis(paths, inventory_file, config, _connect_options(kubeconfig, context, request_timeout, page_size, cluster_name),
                                assume_enforced)
        _say_enforcement(analysis)
        status("listing connections")
        focus = set(namespace) if namespace else None
        conns = connections(analysis, focus)
        blast = blast_rows(analysis, focus) if format.value == "blast" else ()
        chunks = render(map(bare, conns) if bare_ranges else conns, format.value, namespaces_with_pods(analysis), blast)
        if output:
            write_atomic_chunks(output, chunks)
        else:
            for chunk in chunks:
                _echo(chunk, nl=False, kind="json" if format.value == "json" else "text")
    except AuditError as exc:
        raise _fail(exc) from None


@app.command()
@_inputs_checked
def diff(
    old: str = typer.Argument(..., help="Before: manifests (file or folder) or a connectivity JSON file."),
    new: Optional[str] = typer.Argument(None, help="After: manifests (file or folder) or a connectivity JSON file (default with --apply: OLD)."),
    apply: Optional[list[str]] = typer.Option(None, "--apply", help="Add these manifests to the after side (a `fix` bundle, a change to review); repeatable."),
    map_file: Optional[Path] = typer.Option(None, "--map", help="Also write the segmentation map before and after, side by side, as one SVG file."),
    fail_on_opened: bool = typer.Option(False, "--fail-on-opened", help="Exit 1 when the change opens or widens a connection."),
    config: Optional[Path] = DNS_CONFIG,
    assume_enforced: bool = ASSUME_ENFORCED,
) -> None:
    """Which connections a change opens (+), closes (-), widens (+~), narrows (-~) or changes (~)."""
    from audit.engine.connectivity import connections
    from audit.engine.diff import MalformedConnections
    from audit.engine.diff import diff as connection_diff
    from audit.sources.documents import load_connections

    analyses: list[Analysis] = []

    def side(spec: str, added: list[str]) -> list[Connection]:
        if spec.endswith(".json") and Path(spec).is_file() and not added:
            try:
                return load_connections(spec)
            except MalformedConnections as exc:
                raise _fail(exc) from None
            except InputError:
                pass  # a JSON manifest, then
        analysis, _ = _analysis([spec, *added], None, config, _connect_options(None, None, 30.0, 500, None), assume_enforced)
        _say_enforcement(analysis, f"{spec}: ")
        analyses.append(analysis)
        return list(connections(analysis))

    if new is None and not apply:
        raise _fail(InputError("diff needs NEW, or --apply with the manifests to add to OLD"))
    try:
        changes = connection_diff(side(old, []), side(new or old, list(apply or [])))
        if map_file:
            if len(analyses) != 2:
                raise InputError("--map draws manifests: give manifests (not saved connectivity JSON) on both sides")
            from audit.render.segmap import render_map_pair
            from audit.report.build import map_pair

            sensitive = load_config(str(config) if config else None).sensitive_ports
            after_title = f"{new or old}" + (f" + {', '.join(apply or [])}" if apply else "")
            write_atomic(map_file, render_map_pair(*map_pair(analyses[0], analyses[1], sensitive), old, after_title))
    except AuditError as exc:
        raise _fail(exc) from None
    for change in changes:
        _echo(str(change))
    opened = sum(1 for c in changes if c.kind in ("opened", "widened", "changed"))
    closed = sum(1 for c in changes if c.kind in ("closed", "narrowed"))
    _echo(f"{opened} opened or widened, {closed} closed or narrowed", err=True)
    if fail_on_opened and opened:
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
@_inputs_checked
def verify(
    expectations: Path = typer.Argument(..., help="YAML file of expected connections (see examples/lab-expectations.yaml)."),
    paths: Optional[list[str]] = typer.Argument(None, help="Manifest files or folders; none: --inventory or the live cluster."),
    format: VerifyFormat = typer.Option(VerifyFormat.text, "--format", "-f", help="text or json."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write JUnit XML (one test case per expectation)."),
    config: Optional[Path] = DNS_CONFIG,
    assume_enforced: bool = ASSUME_ENFORCED,
    inventory_file: Optional[Path] = INVENTORY,
    kubeconfig: Optional[Path] = KUBECONFIG,
    context: Optional[str] = CONTEXT,
    request_timeout: str = REQUEST_TIMEOUT,
    page_size: int = PAGE_SIZE,
    cluster_name: Optional[str] = CLUSTER_NAME,
) -> None:
    """Check expected connections (allowed / denied) against the policies, before deploying.

    Exit codes: 0 every expectation holds, 1 one fails, 2 usage or input error, 3 cluster error.
    """
    import json as jsonlib

    from audit.engine.expectations import evaluate
    from audit.render.junit import render_junit
    from audit.sources.documents import load_expectations

    try:
        wanted = load_expectations(str(expectations))
        analysis, _ = _analysis(paths, inventory_file, config, _connect_options(kubeconfig, context, request_timeout, page_size, cluster_name),
                                assume_enforced)
        _say_enforcement(analysis)
        outcomes = evaluate(analysis, wanted)
        if junit:
            write_atomic(junit, render_junit(outcomes))
    except AuditError as exc:
        raise _fail(exc) from None
    if format is VerifyFormat.json:
        _echo(kind="json", text=jsonlib.dumps([{"name": o.expectation.name, "from": o.expectation.source, "to": o.expectation.destination,
                                   "port": o.expectation.port, "expect": o.expectation.expect, "passed": o.passed,
                                   "detail": o.detail} for o in outcomes], indent=2))
    else:
        rows = [["PASS" if o.passed else "FAIL", o.expectation.name, o.expectation.expect, o.detail] for o in outcomes]
        _echo(tabulate(rows, headers=["Result", "Expectation", "Expect", "Detail"], tablefmt="simple", maxcolwidths=[None, 40, None, 80]))
        failed = sum(1 for o in outcomes if not o.passed)
        _echo(f"{len(outcomes) - failed} passed, {failed} failed")
    unenforced = analysis.cni is not None and analysis.cni.verdict == "not-enforced" and not assume_enforced
    if unenforced:
        # The expectations may hold on paper; on this network no expected denial does.
        _echo("netpol-audit: verify fails: the CNI does not enforce NetworkPolicy, so no expected denial holds on this network "
              "(--assume-enforced checks the policies as declared)", err=True)
    if unenforced or any(not o.passed for o in outcomes):
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
@_inputs_checked
@_shows_progress
def fix(
    paths: Optional[list[str]] = typer.Argument(None, help="Manifest files or folders; none: --inventory or the live cluster."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the bundle here, one file per namespace (default: print it)."),
    config: Optional[Path] = AUDIT_CONFIG,
    exclude_namespace: Optional[list[str]] = EXCLUDE_NAMESPACE,
    inventory_file: Optional[Path] = INVENTORY,
    kubeconfig: Optional[Path] = KUBECONFIG,
    context: Optional[str] = CONTEXT,
    request_timeout: str = REQUEST_TIMEOUT,
    page_size: int = PAGE_SIZE,
    cluster_name: Optional[str] = CLUSTER_NAME,
) -> None:
    """Every fix the audit offers as one reviewed bundle, verified by the engine before you apply it.

    The summary (stderr) says which findings the bundle resolves once applied, and whether it
    opens any connection (it must not). Exit codes: 0 written, 1 the bundle would open a
    connection, 2 usage or input error, 3 cluster error.
    """
    from audit.checks.bundle import apply, bundle, without_fix
    from audit.engine.diff import widened
    from audit.engine.ports import parse_port_set

    try:
        cfg = _config(config, exclude_namespace)
        inventory = _load_inventory(paths, inventory_file, _connect_options(kubeconfig, context, request_timeout, page_size, cluster_name))
        today = dt.datetime.now(dt.UTC).date()
        now_analysis = analyse(inventory, cfg)
        before = findings_of(now_analysis, cfg, today)
        status("building the bundle and checking it with the engine")
        fixed = apply(inventory, bundle(before, cfg.excluded_namespaces, cfg.dns))
        after_analysis = analyse(fixed, cfg)
        remaining = {f.id for f in findings_of(after_analysis, cfg, today) if f.status == "fail"}
        offered = [f for f in before if f.status == "fail" and f.fix_yaml]
        verified = frozenset(f.id for f in offered if f.id not in remaining)
        files = bundle(before, cfg.excluded_namespaces, cfg.dns, verified)
        # Restoring DNS (53 to the cluster DNS pods) is what the DNS fixes are for; anything else opened is a defect.
        dns_refs = {w.pod_ref for cid in now_analysis.dns_classes for w in now_analysis.classes[cid].workloads}
        dns_ports = parse_port_set("TCP 53,UDP 53")
        changes = widened(now_analysis, after_analysis)
        restored = [c for c in changes if c.dst in dns_refs and not c.conns - dns_ports]
        opened = [c for c in changes if c not in restored]
        if out:
            from audit.render.segmap import render_map_pair
            from audit.report.build import map_pair

            out.mkdir(parents=True, exist_ok=True)
            for file in files:
                write_atomic(out / file.name, file.text)
                _echo(f"wrote {out / file.name}: {len(file.documents)} document(s)", err=True)
            # kubectl apply -f DIR reads only .yaml, .yml and .json: the picture can sit beside the bundle.
            picture = out / "segmentation-before-after.svg"
            write_atomic(picture, render_map_pair(*map_pair(now_analysis, after_analysis, cfg.sensitive_ports), "now", "with this bundle"))
            _echo(f"wrote {picture}", err=True)
        else:
            _echo("\n---\n".join(file.text.rstrip("\n") for file in files))
    except OSError as exc:
        raise _fail(OutputError(f"{out}: cannot write the bundle: {exc.strerror}")) from None
    except AuditError as exc:
        raise _fail(exc) from None
    _echo(f"netpol-audit fix: applied to the inputs, the bundle resolves {len(verified)} of {len(offered)} findings that have a "
          f"fix ({sum(1 for f in before if f.status == 'fail')} unwaived in all; no generated fix for {without_fix(before)})", err=True)
    for c in restored[:20]:
        _echo(f"netpol-audit fix: restores DNS: {c}", err=True)
    if opened:
        for c in opened[:20]:
            _echo(f"netpol-audit fix: the bundle would open {c}", err=True)
        raise typer.Exit(EXIT_FINDINGS)
    _echo("netpol-audit fix: verified by the engine: the bundle opens no connection"
          + (" other than DNS to the cluster DNS pods" if restored else ""), err=True)


evidence_app = typer.Typer(help="Signed evidence: check that a report was signed and not changed since.", no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")


@evidence_app.command("verify")
def evidence_verify(
    file: Path = typer.Argument(..., help="A signed PDF report, or a file with a detached signature beside it (FILE.sig)."),
    cert: Optional[Path] = typer.Option(None, "--cert", help="The CA certificate (PEM) the signer must chain to; without it the chain is not checked."),
    signature: Optional[Path] = typer.Option(None, "--signature", help="The detached signature (default: FILE.sig)."),
) -> None:
    """Check a signed report: the signature is intact and covers it (the whole PDF), the signer chains
    to --cert, and a PDF's attached JSON result has the digest the report states.

    Exit codes: 0 valid, 1 invalid (one line says why), 2 usage or input error.
    """
    from audit.ops.evidence import verify_detached, verify_pdf

    try:
        try:
            with file.open("rb") as fh:
                is_pdf = fh.read(5) == b"%PDF-"
        except OSError as exc:
            raise InputError(f"{file}: cannot read: {exc.strerror}") from None
        if is_pdf and signature is None:
            verdict = verify_pdf(file, cert)
        else:
            sig = signature or file.with_name(file.name + ".sig")
            if not sig.exists():
                raise InputError(f"{sig}: no detached signature (give --signature FILE)")
            verdict = verify_detached(file, sig, cert)
    except AuditError as exc:
        raise _fail(exc) from None
    _echo(verdict.reason)
    if not verdict.valid:
        raise typer.Exit(EXIT_FINDINGS)


@app.command("flows")
@_inputs_checked
@_shows_progress
def flows_command(
    inputs: list[str] = typer.Argument(..., help="Flow files (Hubble JSON lines; CSV or JSON with src, dst, port, protocol), then manifest files or folders; no manifests: --inventory or the live cluster."),
    flows: Optional[list[Path]] = FLOWS,
    candidate: Optional[list[str]] = typer.Option(None, "--candidate", help="Judge the inputs with these manifests applied (a folder of policies not applied yet); repeatable."),
    since: Optional[str] = typer.Option(None, "--since", help="Only flows seen at or after this time (ISO 8601)."),
    until: Optional[str] = typer.Option(None, "--until", help="Only flows seen before this time (ISO 8601)."),
    propose_dir: Optional[Path] = typer.Option(None, "--propose", help="Write least-privilege policies for the observed traffic here (one file per namespace), verified by the engine."),
    format: Format = FORMAT,
    output: Optional[Path] = OUTPUT,
    json_file: Optional[Path] = JSON_FILE,
    html_file: Optional[Path] = HTML_FILE,
    pdf_file: Optional[Path] = PDF_FILE,
    config: Optional[Path] = AUDIT_CONFIG,
    now: Optional[str] = typer.Option(None, "--now", help="Report time (ISO 8601), for reproducible output."),
    assume_enforced: bool = ASSUME_ENFORCED,
    inventory_file: Optional[Path] = INVENTORY,
    kubeconfig: Optional[Path] = KUBECONFIG,
    context: Optional[str] = CONTEXT,
    request_timeout: str = REQUEST_TIMEOUT,
    page_size: int = PAGE_SIZE,
    cluster_name: Optional[str] = CLUSTER_NAME,
) -> None:
    """What observed traffic says about the policies: flows they would break, rules no flow used,
    traffic no policy isolates; with --propose, least-privilege policies for that traffic.

    Flow files are told from manifests by name (.csv, .jsonl, .ndjson) or by their first line;
    --flows names one explicitly. Exit codes: 0 nothing observed is denied (and a proposal
    verified), 1 an observed flow is denied (or the proposal failed verification), 2 usage or
    input error, 3 cluster error.
    """
    from audit.render.traffic import render_traffic
    from audit.sources.flows import is_flow_file

    try:
        flow_files = [str(p) for p in flows or ()] + [p for p in inputs if is_flow_file(p)]
        paths = [p for p in inputs if p not in flow_files]
        if not flow_files:
            raise InputError("no flow file given: name one (Hubble JSON lines, or CSV/JSON with src, dst, port, protocol) or use --flows")
        cfg = _config(config, None)
        opts = _connect_options(kubeconfig, context, request_timeout, page_size, cluster_name)
        inventory = _load_inventory(paths or None, inventory_file, opts)
        status("reading the flows and judging the policies")
        source = _flow_input(flow_files, since, until)
        assert source is not None
        stamp = parse_now(now) or dt.datetime.now(dt.UTC).replace(microsecond=0)
        # The inputs' own analysis and placed flows serve the report (without a candidate) and the proposal.
        current = analyse(inventory, cfg, assume_enforced) if propose_dir is not None or not candidate else None
        observed = observe(current, source) if current is not None else None
        if candidate:
            report = run_audit(inventory, cfg, stamp, assume_enforced=assume_enforced, flows=source, candidate=load_manifests(candidate))
        else:
            assert current is not None and observed is not None
            report = report_of(current, cfg, stamp, *observed)
        assert report.traffic is not None
        # One call writes the files and, for -f json/sarif/markdown, prints; text is the traffic section alone.
        _emit(report, format, output, True, json_file, None, html_file, pdf_file, None, None, print_report=format.canonical is not Format.text)
        if format.canonical is Format.text:
            text = render_traffic(report.traffic)
            if output:
                write_atomic(output, text)
            else:
                _echo(text, nl=False, kind="trusted")
        failed = any(row.count > row.dropped for row in report.traffic.would_break)  # already DROPPED: nothing new stops
        if propose_dir is not None:
            assert current is not None and observed is not None
            failed = _propose(inventory, cfg, current, observed[0], propose_dir) or failed
    except AuditError as exc:
        raise _fail(exc) from None
    if failed:
        raise typer.Exit(EXIT_FINDINGS)


def _propose(inventory: Inventory, cfg: Config, analysis: Analysis, observed: ObservedTraffic, out: Path) -> bool:
    """Write the proposal and say what the engine found applying it; True when verification failed."""
    from audit.checks.propose import propose, verify

    proposal = propose(analysis, observed.mapper, observed.traffic, analysis.dns_target, cfg.excluded_namespaces)
    result = verify(inventory, analysis, observed.mapper, observed.traffic, proposal)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for file in proposal.files:
            write_atomic(out / file.name, file.text)
            _echo(f"wrote {out / file.name}: {len(file.documents)} document(s)", err=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the proposal: {exc.strerror}") from None
    for note in proposal.notes:
        _echo(f"netpol-audit flows: {note}", err=True)
    for line in result.still_denied[:20]:
        _echo(f"netpol-audit flows: the proposal still denies {line}", err=True)
    for conn in result.opened[:20]:
        _echo(f"netpol-audit flows: the proposal would open {conn}", err=True)
    if result.passed:
        _echo(f"netpol-audit flows: verified by the engine: the proposal allows all {len(proposal.flows)} observed (source, destination, "
              "port) and opens nothing the current policies deny", err=True)
    return not result.passed


@app.command()
@_inputs_checked
@_shows_progress
def collect(
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the inventory (JSON)."),
    kubeconfig: Optional[Path] = KUBECONFIG,
    context: Optional[str] = CONTEXT,
    request_timeout: str = REQUEST_TIMEOUT,
    page_size: int = PAGE_SIZE,
    cluster_name: Optional[str] = CLUSTER_NAME,
) -> None:
    """Read the live cluster into a compact inventory file, to analyse later with `scan --inventory`.

    The inventory keeps only what the audit needs (labels, named ports, policies, CNI
    DaemonSet images): no environment variables, no secrets.
    """
    from audit.sources.cluster import collect as collect_cluster
    from audit.sources.replay import dump_inventory

    try:
        inventory = collect_cluster(_connect_options(kubeconfig, context, request_timeout, page_size, cluster_name))
        write_atomic(output, dump_inventory(inventory))
    except AuditError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        _interrupted()
        raise typer.Exit(EXIT_INTERRUPTED) from None
    col = inventory.collection
    counts = ", ".join(f"{k} {v}" for k, v in col.object_counts)
    _echo(f"wrote {output}: {counts} ({col.api_requests} API requests)", err=True)
    for issue in col.issues:
        _echo(f"netpol-audit: could not read {issue.resource}: {issue.reason}", err=True)
    if not col.complete:
        raise typer.Exit(EXIT_INCOMPLETE)


@app.command()
def rbac(
    name: str = typer.Option("netpol-audit", "--name", help="metadata.name of the ClusterRole (or Roles)."),
    namespace: Optional[list[str]] = typer.Option(None, "--namespace", "-n", help="Print Roles for `scan -n` of these namespaces instead (repeatable)."),
) -> None:
    """Print the ClusterRole the scanner needs: get and list on exactly what it reads, nothing else."""
    import yaml

    from audit.sources.cluster import rbac_cluster_role, rbac_namespace_roles

    docs = rbac_namespace_roles(list(namespace), name) if namespace else [rbac_cluster_role(name)]
    _echo(yaml.safe_dump_all(docs, sort_keys=False), nl=False)


@app.command("checks")
def list_checks(
    format: VerifyFormat = typer.Option(VerifyFormat.text, "--format", "-f", help="text or json."),
) -> None:
    """List the check catalogue: ids, severities, titles and compliance references."""
    checks = all_checks()
    if format is VerifyFormat.text:
        rows = [[c.id, c.severity, c.category, c.title, "; ".join(c.references[:3]) + (" ..." if len(c.references) > 3 else "")] for c in checks]
        _echo(tabulate(rows, headers=["Id", "Severity", "Category", "Title", "References"], tablefmt="simple"))
        return
    import json

    _echo(kind="json", text=json.dumps([
        {"id": c.id, "title": c.title, "severity": c.severity, "category": c.category,
         "rationale": c.rationale, "remediation": c.remediation, "references": list(c.references), "needs": c.needs}
        for c in checks
    ], indent=2))


GLOBAL_FLAGS = ("--debug", "--quiet", "-q", "--verbose", "-v")


def global_flags_first(args: list[str]) -> list[str]:
    """Global flags where people type them: `netpol-audit scan -q` as `netpol-audit -q scan`, as
    kubectl takes its global flags anywhere on the line (never after `--`)."""
    end = args.index("--") if "--" in args else len(args)
    found = [a for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    found.sort(key=lambda a: a != "--debug")  # --debug is read first, before the app parses the rest
    return found + rest + args[end:]


def main() -> None:
    """Console-script entry point: an unexpected error is one line and its own exit code (5);
    NETPOL_AUDIT_DEBUG=1 (or --debug first) shows the traceback."""
    debug = os.environ.get("NETPOL_AUDIT_DEBUG") == "1"
    sys.argv[1:] = global_flags_first(sys.argv[1:])
    if sys.argv[1:2] == ["--debug"]:
        debug = True
        del sys.argv[1]
    try:
        app()
    except Exception as exc:  # the last line of defence: never a bare traceback
        if debug:
            raise
        _echo(f"netpol-audit: internal error: {type(exc).__name__}: {str(exc)[:300]} "
              "(a bug: run again with --debug for the traceback, and report it)", err=True)
        sys.exit(EXIT_INTERNAL)


@app.command("version")
def version_command() -> None:
    """Print the version of netpol-audit and of what it runs on."""
    import platform
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    def of(name: str) -> str:
        try:
            return dist_version(name)
        except PackageNotFoundError:
            return "not installed"

    _echo(f"netpol-audit {__version__}")
    _echo(f"python {platform.python_version()}; kubernetes client {of('kubernetes')}; weasyprint {of('weasyprint')}")


