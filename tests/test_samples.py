"""sample-reports/ is what the current code produces from examples/.

Terminal text, JSON and HTML byte for byte; PDF by extracted text (PDF bytes carry font
subsets and object ids that are not worth pinning).
"""

from __future__ import annotations

import difflib
import importlib.util
import io
import itertools

import pytest

from tests.conftest import ROOT

pypdf = pytest.importorskip("pypdf")


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_sample_reports_are_current():
    """The committed sample reports are what the code renders now. A difference fails with the
    diff itself, to be reviewed line by line: only a change meant by the commit is regenerated
    (tools/make_samples.py), never one the test merely reports."""
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "tools" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    diffs = []
    for filename, content in module.render_samples().items():
        committed = ROOT / "sample-reports" / filename
        assert committed.exists(), f"sample-reports/{filename} is missing"
        old, new = ((pdf_text(committed.read_bytes()), pdf_text(content)) if isinstance(content, bytes)
                    else (committed.read_text(encoding="utf-8"), content))
        if old != new:
            lines = difflib.unified_diff(old.splitlines(), new.splitlines(), f"committed/{filename}", f"rendered/{filename}", lineterm="", n=2)
            diffs.append("\n".join(itertools.islice(lines, 200)))
    assert not diffs, "the rendered samples differ from the committed ones:\n" + "\n\n".join(diffs)
