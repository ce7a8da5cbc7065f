"""sample-reports/ is what the current code produces from examples/ (byte for byte)."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def test_sample_reports_are_current():
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "tools" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for filename, content in module.render_samples().items():
        committed = ROOT / "sample-reports" / filename
        assert committed.exists(), f"missing {filename}: run python tools/make_samples.py"
        assert committed.read_text(encoding="utf-8") == content, f"{filename} is stale: run python tools/make_samples.py"
