"""sample-reports/ is what the current code produces from examples/.

Terminal text, JSON and HTML byte for byte; PDF by extracted text (PDF bytes carry font
subsets and object ids that are not worth pinning).
"""

from __future__ import annotations

import importlib.util
import io

import pytest

from tests.conftest import ROOT

pypdf = pytest.importorskip("pypdf")


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_sample_reports_are_current():
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "tools" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stale = []
    for filename, content in module.render_samples().items():
        committed = ROOT / "sample-reports" / filename
        assert committed.exists(), f"missing {filename}: run python tools/make_samples.py"
        if isinstance(content, bytes):
            if pdf_text(committed.read_bytes()) != pdf_text(content):
                stale.append(filename)
        elif committed.read_text(encoding="utf-8") != content:
            stale.append(filename)
    assert not stale, f"stale: {stale}; run python tools/make_samples.py"
