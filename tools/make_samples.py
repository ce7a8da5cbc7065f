"""Regenerate sample-reports/ (terminal, JSON, HTML, PDF) from examples/ with a fixed time.

Run `python tools/make_samples.py` from anywhere; a test fails while the committed copies
differ from what this produces.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audit.config import load_config  # noqa: E402
from audit.pipeline import run_audit  # noqa: E402
from audit.render.html import render_html  # noqa: E402
from audit.render.json_report import render_json  # noqa: E402
from audit.render.pdf import render_pdf  # noqa: E402
from audit.render.terminal import render_terminal  # noqa: E402
from audit.sources.manifests import load_manifests  # noqa: E402

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
SAMPLES = {
    "lab-before": None,
    "lab-solution": None,
    "war-story": None,
    "flannel": None,
    "mixed-cluster": "examples/config.yaml",
}


def render_samples(pdf: bool = True) -> dict[str, str | bytes]:
    """File name -> content, for every sample report (PDFs as bytes)."""
    cwd = os.getcwd()
    os.chdir(ROOT)  # reports name their inputs relative to the repository
    try:
        out = {}
        for name, config in SAMPLES.items():
            report = run_audit(load_manifests([f"examples/{name}"]), load_config(config), NOW)
            out[f"{name}.txt"] = render_terminal(report)
            out[f"{name}.json"] = render_json(report)
            out[f"{name}.html"] = render_html(report)
            if pdf:
                out[f"{name}.pdf"] = render_pdf(report)
        return out
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    target = ROOT / "sample-reports"
    target.mkdir(exist_ok=True)
    for filename, content in render_samples().items():
        if isinstance(content, bytes):
            (target / filename).write_bytes(content)
        else:
            (target / filename).write_text(content, encoding="utf-8")
        print(f"wrote sample-reports/{filename}")
