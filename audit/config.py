"""Audit configuration: excluded namespaces, sensitive ports, severity overrides, waivers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audit.engine.analysis import DnsTarget
from audit.errors import ConfigError
from audit.inventory import freeze_labels
from audit.report.severity import SEVERITIES
from audit.yaml_loader import KubeLoader

DEFAULT_EXCLUDED = ("kube-system", "kube-public", "kube-node-lease")
# PostgreSQL, MySQL, Redis, MongoDB, Elasticsearch, Kafka, RabbitMQ, memcached, etcd.
DEFAULT_SENSITIVE_PORTS = (5432, 3306, 6379, 27017, 9200, 9092, 5672, 11211, 2379)

BROAD_SELECTOR_ANNOTATION = "netpol-audit.io/broad-selector-reason"
"""On a NetworkPolicy: its broad selector is intended, for this reason (the war story's remedy)."""


@dataclass(frozen=True)
class Waiver:
    """Accept findings of one check on matching objects, for a reason, until a date."""

    check: str
    reason: str
    namespace: str = "*"
    object: str = "*"
    expires: dt.date | None = None

    def matches(self, check: str, namespace: str | None, obj: str | None) -> bool:
        return (
            fnmatch.fnmatchcase(check, self.check)
            and fnmatch.fnmatchcase(namespace or "", self.namespace)
            and fnmatch.fnmatchcase(obj or "", self.object)
        )

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today

    def describe(self) -> str:
        until = f" until {self.expires.isoformat()}" if self.expires else ""
        return f"{self.check} on {self.namespace}/{self.object}{until}: {self.reason}"


@dataclass(frozen=True)
class Config:
    excluded_namespaces: tuple[str, ...] = DEFAULT_EXCLUDED
    sensitive_ports: tuple[int, ...] = DEFAULT_SENSITIVE_PORTS
    severity_overrides: Mapping[str, str] = field(default_factory=dict)
    waivers: tuple[Waiver, ...] = ()
    dns: DnsTarget = DnsTarget()
    environment_label: str = "env"
    """The namespace label that names an environment (prod, staging, ...) for cross-environment checks."""
    only_namespaces: tuple[str, ...] = ()
    """`-n`: audit only these namespaces (globs); every other one counts as excluded."""
    path: str | None = None
    """The file this configuration was read from (None: the built-in defaults)."""
    sha256: str | None = None

    def is_excluded(self, namespace: str | None) -> bool:
        if namespace is None:
            return False
        if self.only_namespaces and not _matches_any(namespace, self.only_namespaces):
            return True
        return _matches_any(namespace, self.excluded_namespaces)


@functools.lru_cache(maxsize=65536)
def _matches_any(name: str, patterns: tuple[str, ...]) -> bool:
    # Checks ask once per object; a cluster has few namespaces, asked about many times.
    return any(fnmatch.fnmatchcase(name, pat) for pat in patterns)


_KEYS = {"excludeNamespaces", "sensitivePorts", "severityOverrides", "waivers", "dns", "environmentLabel"}


def load_config(path: str | None, known_checks: set[str] | None = None) -> Config:
    """Read a YAML config file; every problem is a ConfigError naming the file and field."""
    if path is None:
        return Config()
    try:
        data = Path(path).read_bytes()
        raw = yaml.load(data.decode("utf-8"), Loader=KubeLoader)  # a safe loader: dates stay text
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}".splitlines()[0]) from None
    config = parse_config(raw or {}, path, known_checks)
    # The report names the file and its digest: a verdict can be tied to the settings behind it.
    return dataclasses.replace(config, path=path, sha256=hashlib.sha256(data).hexdigest())


def parse_config(raw: Any, path: str = "config", known_checks: set[str] | None = None) -> Config:
    def fail(fld: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {fld}: {problem}")

    if not isinstance(raw, Mapping):
        raise fail("(top level)", "must be a mapping")
    for key in raw:
        if key not in _KEYS:
            raise fail(str(key), f"unknown setting (known: {', '.join(sorted(_KEYS))})")
    kwargs: dict[str, Any] = {}
    if "excludeNamespaces" in raw:
        value = raw["excludeNamespaces"] or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail("excludeNamespaces", "must be a list of namespace names or glob patterns")
        kwargs["excluded_namespaces"] = tuple(value)
    if "sensitivePorts" in raw:
        value = raw["sensitivePorts"] or []
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535 for v in value):
            raise fail("sensitivePorts", "must be a list of port numbers (1-65535)")
        kwargs["sensitive_ports"] = tuple(sorted(set(value)))
    if "severityOverrides" in raw:
        value = raw["severityOverrides"] or {}
        if not isinstance(value, Mapping):
            raise fail("severityOverrides", "must map check ids to severities")
        for check, sev in value.items():
            if known_checks is not None and check not in known_checks:
                raise fail(f"severityOverrides.{check}", "unknown check id (see `netpol-audit checks`)")
            if sev not in SEVERITIES:
                raise fail(f"severityOverrides.{check}", f"{sev!r} is not one of {', '.join(SEVERITIES)}")
        kwargs["severity_overrides"] = dict(value)
    if "waivers" in raw:
        value = raw["waivers"] or []
        if not isinstance(value, list):
            raise fail("waivers", "must be a list")
        kwargs["waivers"] = tuple(_waiver(item, f"waivers[{i}]", fail, known_checks) for i, item in enumerate(value))
    if "dns" in raw:
        value = raw["dns"] or {}
        if not isinstance(value, Mapping):
            raise fail("dns", "must be a mapping with namespace and podLabels")
        unknown = sorted(set(value) - {"namespace", "podLabels", "service"}, key=str)
        if unknown:
            raise fail(f"dns.{unknown[0]}", "unknown field (namespace, service, podLabels)")
        labels = value.get("podLabels", {"k8s-app": "kube-dns"})
        if not isinstance(labels, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise fail("dns.podLabels", "must be a map of strings")
        namespace, service = value.get("namespace", "kube-system"), value.get("service", "kube-dns")
        if not isinstance(namespace, str) or not namespace or not isinstance(service, str) or not service:
            raise fail("dns", "namespace and service must be names")
        kwargs["dns"] = DnsTarget(namespace, freeze_labels(labels), service)
    if "environmentLabel" in raw:
        value = raw["environmentLabel"]
        if not isinstance(value, str) or not value:
            raise fail("environmentLabel", "must be a namespace label key, e.g. env")
        kwargs["environment_label"] = value
    return Config(**kwargs)


def _waiver(item: Any, fld: str, fail: Callable[[str, str], ConfigError], known_checks: set[str] | None) -> Waiver:
    if not isinstance(item, Mapping):
        raise fail(fld, "must be a mapping with check, reason and optionally namespace, object, expires")
    unknown = set(item) - {"check", "reason", "namespace", "object", "expires"}
    if unknown:
        raise fail(f"{fld}.{sorted(unknown)[0]}", "unknown field")
    check, reason = item.get("check"), item.get("reason")
    if not isinstance(check, str) or not check:
        raise fail(f"{fld}.check", "required (a check id or glob)")
    if known_checks is not None and not any(fnmatch.fnmatchcase(c, check) for c in known_checks):
        raise fail(f"{fld}.check", f"{check!r} matches no check id (see `netpol-audit checks`)")
    if not isinstance(reason, str) or not reason.strip():
        raise fail(f"{fld}.reason", "required: say why the finding is accepted")
    expires = item.get("expires")
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            raise fail(f"{fld}.expires", f"{expires!r} is not a date (YYYY-MM-DD)") from None
    if isinstance(expires, dt.datetime):
        expires = expires.date()
    if expires is not None and not isinstance(expires, dt.date):
        raise fail(f"{fld}.expires", "must be a date (YYYY-MM-DD)")
    return Waiver(check, reason.strip(), str(item.get("namespace", "*")), str(item.get("object", "*")), expires)
