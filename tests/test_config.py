"""Configuration files: every mistake is a clear error naming the file and the field."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.checks.catalogue import all_checks
from audit.config import DEFAULT_EXCLUDED, load_config, parse_config
from audit.errors import ConfigError

KNOWN = {c.id for c in all_checks()}


def test_defaults():
    cfg = load_config(None)
    assert cfg.excluded_namespaces == DEFAULT_EXCLUDED and 5432 in cfg.sensitive_ports
    assert cfg.is_excluded("kube-system") and not cfg.is_excluded("default")


def test_full_config_parses(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("excludeNamespaces: [sys-*]\nsensitivePorts: [1433]\nseverityOverrides: {NP-COV-001: critical}\n"
                    "dns: {namespace: dns, podLabels: {app: coredns}}\n"
                    "waivers:\n  - {check: NP-PERM-*, namespace: edge, reason: public edge, expires: 2027-01-31}\n")
    cfg = load_config(str(path), KNOWN)
    assert cfg.is_excluded("sys-x") and cfg.sensitive_ports == (1433,)
    assert cfg.dns.namespace == "dns" and dict(cfg.dns.labels) == {"app": "coredns"}
    (w,) = cfg.waivers
    assert w.expires == dt.date(2027, 1, 31) and w.matches("NP-PERM-004", "edge", "anything")
    assert not w.matches("NP-COV-001", "edge", "x") and not w.expired(dt.date(2027, 1, 31))


@pytest.mark.parametrize("raw,field", [
    ({"excludeNamespace": []}, "excludeNamespace: unknown setting"),
    ({"sensitivePorts": [0]}, "sensitivePorts"),
    ({"sensitivePorts": ["5432"]}, "sensitivePorts"),
    ({"severityOverrides": {"NP-COV-001": "urgent"}}, "severityOverrides.NP-COV-001"),
    ({"severityOverrides": {"NP-XXX-001": "high"}}, "severityOverrides.NP-XXX-001: unknown check"),
    ({"waivers": [{"check": "NP-COV-001"}]}, "waivers[0].reason: required"),
    ({"waivers": [{"check": "NP-COV-001", "reason": "r", "expires": "next week"}]}, "waivers[0].expires"),
    ({"waivers": [{"check": "NP-COV-001", "reason": "r", "until": "2027-01-01"}]}, "waivers[0].until: unknown field"),
    ({"waivers": [{"reason": "r"}]}, "waivers[0].check: required"),
    ([1, 2], "(top level)"),
])
def test_config_errors_name_the_field(raw, field):
    with pytest.raises(ConfigError) as err:
        parse_config(raw, "cfg.yaml", KNOWN)
    assert str(err.value).startswith("cfg.yaml: ") and field in str(err.value)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("waivers: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(str(bad))
