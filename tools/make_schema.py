"""Generate audit/report/schema/report.schema.json from the report model.

Run `python tools/make_schema.py` after changing audit/report.py; a test fails while the
committed schema differs from what this prints.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.checks.compliance import STATUSES
from audit.checks.registry import _PREFIX
from audit.report import model
from audit.report.severity import SEVERITIES
from audit.serde import camel

CATEGORIES = sorted(set(_PREFIX.values()))  # the registry's categories, one list for both places

ENUMS = {
    ("FindingRow", "severity"): list(SEVERITIES),
    ("CheckRow", "severity"): list(SEVERITIES),
    ("FindingRow", "status"): ["fail", "waived"],
    ("FindingRow", "category"): CATEGORIES,
    ("CheckRow", "category"): CATEGORIES,
    ("ControlRow", "status"): list(STATUSES),
    ("ControlRow", "kind"): ["segmentation", "cni", "manual"],
    ("Summary", "verdict"): ["pass", "warn", "fail", "incomplete"],
    ("CniInfo", "verdict"): ["enforced", "conditional", "not-enforced", "unknown"],
    ("CniComponentRow", "enforces"): ["yes", "no", "conditional"],
    ("ScanInfo", "source"): ["manifests", "cluster", "inventory"],
}

DESCRIPTIONS = {
    "Report": "A netpol-audit result. Every renderer (terminal, HTML, PDF, SARIF) reads only this.",
    "ScanInfo": "What was scanned, when, and how completely.",
    "Summary": "Headline numbers over audited (not excluded) namespaces; findings counts exclude waived ones.",
    "NamespaceRow": "Coverage of one namespace, judged by effect.",
    "PolicyRow": "One NetworkPolicy: what it selects and what its rules allow (rules in effect only).",
    "FindingRow": "One finding; `id` is a stable fingerprint of check + object.",
    "ControlRow": "A compliance control and whether the findings of its checks fail it.",
}


def _type(tp, owner: str, name: str) -> dict:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return {"anyOf": [_type(options[0], owner, name), {"type": "null"}]}
    if origin is tuple:
        args = typing.get_args(tp)
        if (len(args) == 2 and args[1] is Ellipsis) or len(args) == 1:
            return {"type": "array", "items": _type(args[0], owner, name)}
        # A fixed-length tuple (a (name, count) pair): each place its own type.
        return {"type": "array", "prefixItems": [_type(a, owner, name) for a in args], "minItems": len(args), "maxItems": len(args)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type(typing.get_args(tp)[1], owner, name)}
    if dataclasses.is_dataclass(tp):
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if (owner, name) in ENUMS:
        return {"type": "string", "enum": ENUMS[(owner, name)]}
    return {str: {"type": "string"}, int: {"type": "integer"}, bool: {"type": "boolean"}}[tp]


def build() -> dict:
    defs = {}
    pending = [model.Report]
    while pending:
        cls = pending.pop()
        if cls.__name__ in defs:
            continue
        hints = typing.get_type_hints(cls)
        props = {}
        for f in dataclasses.fields(cls):
            props[camel(f.name)] = _type(hints[f.name], cls.__name__, f.name)
            for arg in [hints[f.name], *typing.get_args(hints[f.name])]:
                for inner in [arg, *typing.get_args(arg)]:
                    if dataclasses.is_dataclass(inner):
                        pending.append(inner)
        entry = {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
        if cls.__name__ in DESCRIPTIONS:
            entry = {"description": DESCRIPTIONS[cls.__name__], **entry}
        defs[cls.__name__] = entry
    root = defs.pop("Report")
    root["properties"]["schemaVersion"] = {"type": "string", "const": model.SCHEMA_VERSION}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"netpol-audit/report-{model.SCHEMA_VERSION}.schema.json",
        "title": "netpol-audit report",
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "audit" / "report" / "schema" / "report.schema.json"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
