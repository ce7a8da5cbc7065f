"""Prometheus metrics of a result, for a textfile collector or a Pushgateway."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from http.client import HTTPException

from prometheus_client import CollectorRegistry, Gauge, Info, push_to_gateway, write_to_textfile
from prometheus_client.exposition import basic_auth_handler, default_handler

from audit.errors import InputError, OutputError
from audit.report.model import Report
from audit.report.severity import SEVERITIES


def registry_for(report: Report, duration_seconds: float, finished_unix: float,
                 previous_success_unix: float | None = None) -> CollectorRegistry:
    """A fresh registry holding the result's gauges (labels are bounded: namespaces, checks, severities).

    An incomplete scan exposes only what is true of it: that it was incomplete, how long it took,
    and when the last complete scan finished (``previous_success_unix``). Coverage, findings
    and score of a half-read cluster would read as a posture, so they are left out.
    """
    reg = CollectorRegistry()
    Info("netpol_audit", "The scanner that produced these metrics.", registry=reg).info(
        {"version": report.tool.version, "schema": report.schema_version, "source": report.scan.source}
    )
    Gauge("netpol_audit_scan_complete", "1 when every core resource was read.", registry=reg).set(int(report.scan.complete))
    Gauge("netpol_audit_scan_duration_seconds", "Wall time of the scan.", registry=reg).set(duration_seconds)
    last = Gauge("netpol_audit_last_success_timestamp_seconds", "When the last complete scan finished (Unix time).", registry=reg)
    if report.scan.complete:
        last.set(finished_unix)
    elif previous_success_unix is not None:
        last.set(previous_success_unix)
    else:
        reg.unregister(last)
    if not report.scan.complete:
        return reg
    score = Gauge("netpol_audit_score", "Posture score, 0-100 (formula in the report); absent when the scan was incomplete.", registry=reg)
    if report.summary.score is not None:
        score.set(report.summary.score)
    else:
        reg.unregister(score)
    cov = Gauge("netpol_audit_namespace_default_deny", "1 when the namespace has default-deny in the direction (by effect).",
                ["namespace", "direction"], registry=reg)
    ratio = Gauge("netpol_audit_namespace_pods_isolated_ratio", "Share of the namespace's pods isolated in the direction.",
                  ["namespace", "direction"], registry=reg)
    for ns in report.namespaces:
        if ns.excluded:
            continue
        for direction, deny, isolated in (("ingress", ns.default_deny_ingress, ns.isolated_ingress),
                                          ("egress", ns.default_deny_egress, ns.isolated_egress)):
            cov.labels(ns.name, direction).set(int(deny))
            ratio.labels(ns.name, direction).set(isolated / ns.pods if ns.pods else 1.0)
    s = report.summary
    unselected = Gauge("netpol_audit_pods_unselected", "Pods no policy isolates, per direction.", ["direction"], registry=reg)
    unselected.labels("ingress").set(s.pods - s.pods_isolated_ingress)
    unselected.labels("egress").set(s.pods - s.pods_isolated_egress)
    by_severity = Gauge("netpol_audit_findings", "Unwaived findings per severity.", ["severity"], registry=reg)
    for sev in SEVERITIES:
        by_severity.labels(sev).set(s.findings[sev])
    by_check = Gauge("netpol_audit_check_findings", "Unwaived findings per check.", ["check"], registry=reg)
    for check in report.checks:
        by_check.labels(check.id)  # present at 0, so alert rules need no absent()
    for f in report.findings:
        if f.status == "fail":
            by_check.labels(f.check).inc()
    policies = Gauge("netpol_audit_policies", "Policy objects per kind: enforced, present but not enforced by the CNI, invalid.",
                     ["kind", "state"], registry=reg)
    for row in report.policies:
        policies.labels(row.kind, "invalid" if not row.valid else "enforced" if row.enforced else "not-enforced").inc()
    return reg


def write_metrics(path: str, registry: CollectorRegistry) -> None:
    """Write the exposition file atomically (prometheus_client renames a temp file into place)."""
    try:
        write_to_textfile(path, registry)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write metrics: {exc.strerror or exc}") from None


def check_pushgateway_url(url: str) -> str:
    """The URL, if a Pushgateway can be reached at it at all (checked before the scan, so a typo
    fails at once and never after the reports are written)."""
    from urllib.parse import urlsplit

    problem = None
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        problem = "contains spaces or control characters"
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError as exc:
            problem = str(exc)
        else:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problem = "must be an http:// or https:// URL with a host"
    if problem:
        raise InputError(f"--pushgateway {url!r}: {problem}")
    return url


TOKEN_ENV = "NETPOL_AUDIT_PUSHGATEWAY_TOKEN"
USER_ENV, PASSWORD_ENV = "NETPOL_AUDIT_PUSHGATEWAY_USERNAME", "NETPOL_AUDIT_PUSHGATEWAY_PASSWORD"


def push_handler(environ: Mapping[str, str]) -> Callable[..., Callable[[], None]]:
    """How to reach the Pushgateway: a bearer token or basic auth from the environment (the
    CronJob maps them from a Secret), else no credentials."""
    token, user, password = environ.get(TOKEN_ENV), environ.get(USER_ENV), environ.get(PASSWORD_ENV)

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes) -> Callable[[], None]:
        if token:
            return default_handler(url, method, timeout, [*headers, ("Authorization", f"Bearer {token}")], data)
        if user:
            return basic_auth_handler(url, method, timeout, headers, data, user, password or "")
        return default_handler(url, method, timeout, headers, data)

    return handler


def push_metrics(url: str, registry: CollectorRegistry, job: str = "netpol-audit", timeout: float = 30,
                 grouping: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Push (replace) this run's metrics under the job and ``grouping`` key: each cluster keeps its
    own group, so clusters pushing to one gateway never overwrite each other."""
    check_pushgateway_url(url)
    try:
        push_to_gateway(url, job=job, registry=registry, timeout=timeout, grouping_key=dict(grouping or {}),
                        handler=push_handler(os.environ if environ is None else environ))
    except (OSError, ValueError, HTTPException) as exc:
        raise OutputError(f"pushgateway {url}: {exc}") from None
