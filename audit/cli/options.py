"""Every command-line option, declared once; the groups several commands share (a live cluster's
connection, the report files, signing, what is printed) as frozen dataclasses a command takes as
one parameter (see `grouped`)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from audit.observed import TOP as DENIED_ROWS
from audit.render.formats import RenderOptions

if TYPE_CHECKING:
    from audit.ops.evidence import SigningKey
    from audit.sources.cluster import ConnectOptions


class Format(str, enum.Enum):
    """What `-f` prints: names from the format registry (audit.render.formats)."""

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


class ConnFormat(str, enum.Enum):
    txt = "txt"
    json = "json"
    csv = "csv"
    dot = "dot"
    matrix = "matrix"
    blast = "blast"


class FailOn(str, enum.Enum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"
    none = "none"


# Single options several commands take.
AUDIT_CONFIG = typer.Option(None, "--config", "-c", help="Audit configuration (YAML).")
DNS_CONFIG = typer.Option(None, "--config", "-c", help="Audit configuration (for the DNS location).")
EXCLUDE_NAMESPACE = typer.Option(None, "--exclude-namespace", "-x", help="Also exclude this namespace (glob; repeatable).")
NOW = typer.Option(None, "--now", help="Report time (ISO 8601), for reproducible output.")
ASSUME_ENFORCED = typer.Option(False, "--assume-enforced", help="Evaluate policy kinds the detected CNI does not enforce as if it did (planning a migration); reports say so.")
FLOWS = typer.Option(None, "--flows", help="Observed flows to judge the policies against (Hubble JSON lines, or CSV/JSON with src, dst, port, protocol); repeatable.")
JOBS = typer.Option(0, "--jobs", "-j", min=0, help="Processes sharing the checks and the report files (default 0: one per available CPU on Linux, a cgroup CPU limit counted; 1: no worker). The results are the same. A forked worker copies what it reads: on 150k pods, two processes took the checks from 3.8 to 2.5 s for 500 MB more at the peak.")
TOP = typer.Option(DENIED_ROWS, "--top", min=0, help=f"Denied flow rows kept in every format, most flows first, beside the totals of all (default {DENIED_ROWS}; 0: every row).")
INVENTORY = typer.Option(None, "--inventory", help="Read an inventory saved by `netpol-audit collect` instead.")
MANIFESTS = typer.Argument(None, help="Manifest files or folders; none: --inventory or the live cluster.")
FORMAT = typer.Option(Format.text, "--format", "-f", help="What to print (or write with -o).")
OUTPUT = typer.Option(None, "--output", "-o", help="Write the --format output to this file instead of stdout.")
NO_COLOR = typer.Option(False, "--no-color", help="No ANSI colour (also off when NO_COLOR is set or stdout is not a terminal).")


@dataclass(frozen=True)
class Cluster:
    """How to reach a live cluster: every command that reads one takes these options."""

    kubeconfig: Optional[Path] = typer.Option(None, "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; in a pod: its ServiceAccount).")
    context: Optional[str] = typer.Option(None, "--context", help="Kubeconfig context to use (default: the current one).")
    request_timeout: str = typer.Option("30s", "--request-timeout", help="How long one API request may take in all (connect, headers, body), kubectl style: 30, 30s, 1m, 1m30s, 500ms (at least 1s); the whole collection stops after 30 minutes.")
    page_size: int = typer.Option(500, "--page-size", min=1, max=10000, help="Objects per list page (limit/continue paging).")
    cluster_name: Optional[str] = typer.Option(None, "--cluster-name", help="Name to show for the cluster in reports (default: the kubeconfig cluster name).")

    def connect(self, namespaces: Optional[list[str]] = None) -> ConnectOptions:
        """The source's connection options (``namespaces`` scopes the lists, globs read everything)."""
        from audit.cli.common import connect_options

        return connect_options(self.kubeconfig, self.context, self.request_timeout, self.page_size, self.cluster_name, namespaces)


@dataclass(frozen=True)
class ReportFiles:
    """The report files a command can write beside what it prints, and how they are rendered."""

    json_file: Optional[Path] = typer.Option(None, "--json", help="Also write the JSON result to this file.")
    sarif_file: Optional[Path] = typer.Option(None, "--sarif", help="Also write SARIF 2.1.0 to this file.")
    html_file: Optional[Path] = typer.Option(None, "--html", help="Also write the self-contained HTML report to this file.")
    pdf_file: Optional[Path] = typer.Option(None, "--pdf", help="Also write the PDF report (with the JSON result attached) to this file.")
    junit_file: Optional[Path] = typer.Option(None, "--junit", help="Also write JUnit XML: a test case per check and namespace, a failure per finding.")
    max_rows: Optional[int] = typer.Option(None, "--max-rows", min=1, help="Rows per table in HTML/PDF (default 5000 in HTML, 500 in PDF); totals always show.")
    pdf_variant: Optional[str] = typer.Option(None, "--pdf-variant", help="PDF variant: pdf/a-3b or pdf/a-3u (archival, with the JSON attached).")
    sarif_root: Optional[Path] = typer.Option(None, "--sarif-root", help="SARIF file paths are relative to this folder (default: the current directory), under the SRCROOT base.")
    stdin_name: str = typer.Option("stdin.yaml", "--stdin-name", help="The file name SARIF gives to manifests read from stdin (-).")

    def files(self) -> tuple[tuple[str, Path], ...]:
        """(format, path) for each file asked for, in the order they are written."""
        pairs = (("json", self.json_file), ("sarif", self.sarif_file), ("html", self.html_file), ("pdf", self.pdf_file),
                 ("junit", self.junit_file))
        return tuple((name, path) for name, path in pairs if path is not None)

    def render_options(self) -> RenderOptions:
        return RenderOptions(self.max_rows, self.pdf_variant, self.sarif_root, self.stdin_name)


@dataclass(frozen=True)
class Signing:
    """Signed evidence (audit.ops.evidence) for what `scan` and `report` write."""

    sign_key: Optional[Path] = typer.Option(None, "--sign-key", help="Sign the PDF (PAdES) and the JSON (FILE.sig, detached CMS) with this private key (PEM or DER).")
    sign_cert: Optional[Path] = typer.Option(None, "--sign-cert", help="The signing certificate (PEM; the file may hold its chain).")
    sign_pass_env: Optional[str] = typer.Option(None, "--sign-pass-env", help="The environment variable holding the passphrase of an encrypted --sign-key.")
    sign_dir: Optional[Path] = typer.Option(None, "--sign-dir", help="A mounted kubernetes.io/tls Secret (tls.key, tls.crt): sign with it when it holds a key; else do not sign.")
    tsa_url: Optional[str] = typer.Option(None, "--tsa-url", help="Add an RFC 3161 timestamp from this Time Stamping Authority to every signature.")

    def signer(self) -> SigningKey | None:
        """The signing key the options name (checked before anything is written), or None."""
        from audit.cli.common import signing

        return signing(self.sign_key, self.sign_cert, self.sign_pass_env, self.sign_dir, self.tsa_url)


@dataclass(frozen=True)
class Printed:
    """What a report command prints (or writes with -o)."""

    format: Format = FORMAT
    output: Optional[Path] = OUTPUT
    no_color: bool = NO_COLOR


GROUPS = (Cluster, ReportFiles, Signing, Printed)


def grouped(command: Callable[..., None]) -> Callable[..., None]:
    """Expand each parameter annotated with an option group into the group's own options, at the
    same place in the signature (typer reads the signature), and hand the command one instance."""
    hints = typing.get_type_hints(command)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, tuple[str, ...]]] = {}
    for param in inspect.signature(command).parameters.values():
        group = hints.get(param.name)
        if group in GROUPS:
            fields = dataclasses.fields(group)
            group_hints = typing.get_type_hints(group)
            groups[param.name] = (group, tuple(f.name for f in fields))
            params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=group_hints[f.name])
                       for f in fields]
        else:
            params.append(param.replace(annotation=hints.get(param.name, param.annotation), kind=inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        for name, (group, names) in groups.items():
            kwargs[name] = group(**{n: kwargs.pop(n) for n in names})
        command(**kwargs)

    run.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return run
