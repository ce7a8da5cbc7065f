"""What every command shares: printing safely, failing with one line, reading inputs (manifests,
a saved inventory, the live cluster, flows, a saved result) and the exit-code conventions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from audit.checks.catalogue import all_checks
from audit.cli.progress import display, status
from audit.config import DEFAULT_EXCLUDED, Config, load_config
from audit.errors import AuditError, InputError
from audit.inventory import Inventory
from audit.observed import FlowInput
from audit.ops.atomic import written
from audit.ops.run import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from audit.pipeline import analyse
from audit.render.safe import json_terminal_safe, terminal_safe
from audit.report.model import Report
from audit.sources.manifests import load_manifests

if TYPE_CHECKING:
    from audit.engine.analysis import Analysis
    from audit.ops.evidence import SigningKey
    from audit.sources.cluster import ConnectOptions


def echo(text: str, err: bool = False, nl: bool = True, kind: str = "text") -> None:
    """Print ``text`` with every control character from the input escaped (see audit.render.safe):
    ``json`` stays the same JSON (characters escaped as \\uXXXX); ``trusted`` text (the terminal
    report, already made safe, with its colours) is printed as is."""
    safe = text if kind == "trusted" else json_terminal_safe(text) if kind == "json" else terminal_safe(text)
    typer.echo(safe, err=err, nl=nl)


def interrupted() -> None:
    """Ctrl-C: say exactly what was written before it (every write is whole or absent)."""
    done = written()
    echo("netpol-audit: interrupted; " + (f"already written in full: {', '.join(done)}; nothing else" if done else "nothing was written"),
         err=True)


def fail(exc: AuditError) -> typer.Exit:
    """The one line an error is, and the exit carrying its code."""
    echo(f"netpol-audit: error: {exc}", err=True)
    return typer.Exit(exc.exit_code)


@contextmanager
def failing_cleanly(on_interrupt: bool = False) -> Iterator[None]:
    """An input, cluster or output error ends the command with its one line and exit code; with
    ``on_interrupt``, Ctrl-C says what was already written and exits 130."""
    try:
        yield
    except AuditError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        if not on_interrupt:
            raise
        interrupted()
        raise typer.Exit(EXIT_INTERRUPTED) from None


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


def use_colour(no_color: bool) -> bool:
    """ANSI colour only on a terminal, never with --no-color or NO_COLOR set."""
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def signing(key: Optional[Path], cert: Optional[Path], pass_env: Optional[str], directory: Optional[Path], tsa_url: Optional[str]
            ) -> SigningKey | None:
    """The signing key the options name (checked before anything is written), or None."""
    if (key is None) != (cert is None):
        raise InputError("--sign-key and --sign-cert go together")
    if key is not None or directory is not None:
        # pyHanko and cryptography: about 40 MB and a third of a second, only when signing.
        from audit.ops.evidence import SigningKey

        if key is not None and cert is not None:
            if directory is not None:
                raise InputError("--sign-dir or --sign-key/--sign-cert, not both")
            return SigningKey.load(key, cert, pass_env, tsa_url)
        assert directory is not None
        return SigningKey.from_dir(directory, tsa_url)
    if tsa_url or pass_env:
        raise InputError("--tsa-url and --sign-pass-env need a signing key (--sign-key and --sign-cert, or --sign-dir)")
    return None


def connect_options(kubeconfig: Optional[Path], context: Optional[str], request_timeout: str | float, page_size: int,
                    cluster_name: Optional[str], namespaces: Optional[list[str]] = None) -> ConnectOptions:
    """The live source's options from the command line's."""
    from audit.sources.cluster import ConnectOptions

    timeout = request_timeout if isinstance(request_timeout, float) else parse_duration(request_timeout)
    scoped = tuple(namespaces or ())
    if any(ch in ns for ns in scoped for ch in "*?["):
        scoped = ()  # globs scope the audit; the API lists by name, so a glob reads the whole cluster
    return ConnectOptions(str(kubeconfig) if kubeconfig else None, context, timeout, page_size, cluster_name,
                          namespaces=scoped, progress=status)


def load_result(path: Path) -> Report:
    """A JSON result saved by `scan`."""
    from audit.render.json_report import load_report

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    return load_report(text, str(path))


_LEFT_OUT: ContextVar[int] = ContextVar("left_out", default=0)
"""How many invalid manifest objects the running command left out (set by `inputs_checked`)."""


def left_out() -> int:
    """Invalid manifest objects the running command left out so far."""
    return _LEFT_OUT.get()


def config_of(config: Optional[Path], exclude_namespace: Optional[list[str]], namespaces: Optional[list[str]] = None,
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


def check_output(output: Optional[Path], formats: str) -> None:
    """kubectl's `-o json` here would write a file named json: say what to type instead."""
    if output is not None and str(output) in ("json", "yaml", "wide", "name", "sarif", "text", "csv") and not output.exists():
        raise InputError(f"-o is the file to write here, not the format: for {output} output use -f {output} ({formats}); "
                         f"to write a file of that name, give a folder or an extension (-o ./out/{output} or -o {output}.out)")


def _named(inventory: Inventory, cluster_name: str | None) -> Inventory:
    """``--cluster-name`` is honoured for manifests and replayed inventories too."""
    if not cluster_name:
        return inventory
    return dataclasses.replace(inventory, collection=dataclasses.replace(inventory.collection, cluster=cluster_name))


def load_inventory(paths: Optional[list[str]], inventory_file: Optional[Path], opts: ConnectOptions) -> Inventory:
    """Manifests when paths are given, a saved inventory with --inventory, else the live cluster.

    An invalid object that is not a policy is left out: one error line each on stderr, the run
    goes on, and the command ends with exit 2 (see `inputs_checked`).
    """
    if paths and inventory_file:
        raise InputError("give manifest paths or --inventory, not both")
    if paths:
        inventory = load_manifests(paths, sys.stdin)
        invalid = inventory.collection.invalid_objects
        for issue in invalid:
            echo(f"netpol-audit: error: {issue.reason} ({issue.resource} left out; the run goes on)", err=True)
        _LEFT_OUT.set(_LEFT_OUT.get() + len(invalid))
        return _named(inventory, opts.cluster_name)
    if inventory_file:
        from audit.sources.replay import load_inventory as replay

        return _named(replay(str(inventory_file)), opts.cluster_name)
    from audit.sources.cluster import collect

    return collect(opts)


def analysis_of(paths: Optional[list[str]], inventory_file: Optional[Path], config: Optional[Path], opts: ConnectOptions,
                assume_enforced: bool = False) -> tuple[Analysis, Inventory]:
    """The analysis of any input, for the commands that ask reachability questions."""
    cfg = load_config(str(config) if config else None, {c.id for c in all_checks()})
    inventory = load_inventory(paths, inventory_file, opts)
    return analyse(inventory, cfg, assume_enforced), inventory


def say_enforcement(analysis: Analysis, label: str = "") -> None:
    """At the top of every answer (stderr, so data on stdout stays parseable): whether the network
    enforces what the policies declare."""
    from audit.engine.cni import enforcement_note

    note = enforcement_note(analysis.cni, analysis.assume_enforced)
    if note:
        echo(f"{label}{note}", err=True)


def flow_input(flows: Optional[list[Path]] | list[str], since: str | None = None, until: str | None = None) -> FlowInput | None:
    """The flow files named, read lazily, within --since/--until."""
    if not flows:
        return None
    from audit.sources.flows import flow_input as read
    from audit.sources.flowsql import Window

    return read([str(p) for p in flows], Window(parse_now(since, "--since"), parse_now(until, "--until")))


def shows_progress(command: Callable[..., None]) -> Callable[..., None]:
    """A command whose long work shows progress on stderr when it is a terminal (see audit.cli.progress)."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        with display():
            command(*args, **kwargs)
    return run


def inputs_checked(command: Callable[..., None]) -> Callable[..., None]:
    """A command that read invalid manifest objects ends with exit 2 (input error) once its work is
    done, instead of 0, 1 (findings, a denied path) or 4 (incomplete); other codes stand."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        token = _LEFT_OUT.set(0)
        try:
            try:
                command(*args, **kwargs)
            except typer.Exit as exc:
                if exc.exit_code not in (EXIT_OK, EXIT_FINDINGS, EXIT_INCOMPLETE) or not left_out():
                    raise
            if left_out():
                echo(f"netpol-audit: {left_out()} invalid object(s) left out (see above); exit 2", err=True)
                raise typer.Exit(EXIT_USAGE)
        finally:
            _LEFT_OUT.reset(token)
    return run
