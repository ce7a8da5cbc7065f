"""Shared helpers: audit YAML given inline, as a user would write it."""

from __future__ import annotations

import datetime as dt
import io
import textwrap
from pathlib import Path

import pytest

from audit.config import Config, parse_config
from audit.engine.analysis import Analysis
from audit.inventory import Inventory
from audit.observed import FlowInput
from audit.pipeline import run_audit
from audit.report.model import Report
from audit.sources.manifests import load_manifests

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def inventory(text: str) -> Inventory:
    return load_manifests(["-"], io.StringIO(textwrap.dedent(text)))


def analyse(text: str) -> Analysis:
    return Analysis(inventory(text))


def audit(text: str, config: dict | Config | None = None, flows: FlowInput | None = None) -> Report:
    cfg = parse_config(config) if isinstance(config, dict) else config
    return run_audit(inventory(text), cfg, NOW, flows=flows)


def findings(report: Report, check: str, status: str = "fail") -> list:
    return [f for f in report.findings if f.check == check and f.status == status]


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


# Which suites say what the APIs mean, and which hold one implementation of the engine equal to
# another (valuable, but they test the optimisations, not the semantics): `-m semantic` runs the first.
SEMANTIC = {"test_semantics", "test_kind_fields", "test_kind_boundaries", "test_cilium", "test_calico", "test_admin", "test_l7",
            "test_dnsnames", "test_enforcement", "test_netpol_analyzer_cases", "test_netpol_analyzer", "test_coverage", "test_reach",
            "test_checks", "test_kind_checks", "test_listings", "test_ingress", "test_exposure_algebra", "test_compliance"}
CONSISTENCY = {"test_stack", "test_connectivity_graph", "test_slim", "test_flowsql"}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module is not None else ""
        if module in SEMANTIC:
            item.add_marker(pytest.mark.semantic)
        elif module in CONSISTENCY:
            item.add_marker(pytest.mark.consistency)
