"""The JSON Schema is current, and a result round-trips through the report model."""

from __future__ import annotations

import importlib.util

from audit.render.json_report import load_report, render_json
from tests.conftest import ROOT, audit
from tests.test_checks import CASES


def test_committed_schema_matches_the_model():
    spec = importlib.util.spec_from_file_location("make_schema", ROOT / "tools" / "make_schema.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "audit" / "report" / "schema" / "report.schema.json").read_text()
    assert committed == module.render(), "run: python tools/make_schema.py"


def test_results_validate_and_round_trip():
    import jsonschema

    from audit.render.json_report import schema

    for positive, _negative, _ns in list(CASES.values())[:8]:
        text = render_json(audit(positive))
        import json

        jsonschema.validate(json.loads(text), schema())
        assert render_json(load_report(text, "r.json")) == text
