"""SARIF 2.1.0 for code scanning: one result per unwaived finding, located in the manifest."""

from __future__ import annotations

import json
from typing import Any

from audit.report.model import Report

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def render_sarif(report: Report) -> str:
    rules = [
        {
            "id": c.id,
            "name": c.title,
            "shortDescription": {"text": c.title},
            "fullDescription": {"text": c.rationale},
            "help": {"text": c.remediation},
            "defaultConfiguration": {"level": _LEVEL[c.severity]},
            "properties": {"security-severity": _SCORE[c.severity], "tags": ["security", "kubernetes", c.category]},
        }
        for c in report.checks
    ]
    index = {c.id: i for i, c in enumerate(report.checks)}
    results: list[dict[str, Any]] = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.check,
            "ruleIndex": index[f.check],
            "level": _LEVEL[f.severity],
            "partialFingerprints": {"netpolAudit/v1": f.id},
        }
        obj = f"{f.namespace}/{f.name}" if f.namespace and f.kind != "Namespace" else f.name
        result["message"] = {"text": f"{f.kind} {obj}: {f.message}"}
        if f.source and f.source.file:
            result["locations"] = [{
                "physicalLocation": {
                    "artifactLocation": {"uri": f.source.file},
                    "region": {"startLine": f.source.line or 1},
                },
            }]
        else:
            result["locations"] = [{"logicalLocations": [{"name": obj, "kind": f.kind}]}]
        if f.status == "waived":
            result["suppressions"] = [{"kind": "external", "justification": f.waiver or ""}]
        results.append(result)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": report.tool.name, "version": report.tool.version,
                                "rules": rules}},
            "results": results,
            "invocations": [{
                "executionSuccessful": report.scan.complete,
                "endTimeUtc": report.generated_at,
                # An incomplete scan must never read as all-clear in a code-scanning UI.
                "toolExecutionNotifications": [
                    {"level": "error" if issue.core else "warning",
                     "message": {"text": f"INCOMPLETE: could not read {issue.resource}: {issue.reason}"}}
                    for issue in report.scan.issues
                ],
            }],
        }],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
