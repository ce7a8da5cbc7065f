"""SARIF 2.1.0 that code scanning accepts: one result per finding, each with a file location.

GitHub refuses a whole SARIF file when one result lacks a physical location, so every result
gets one: the manifest line of its object; for a namespace-level finding the Namespace object's
file, else the first policy of that namespace; for a cluster-wide one the first input file.
Manifest paths are relative to ``root`` (``--sarif-root``, default the current directory) under
the ``SRCROOT`` base, percent-encoded; stdin is named ``stdin_name``. Results of a live scan
point at ``cluster://CLUSTER/NAMESPACE/KIND/NAME`` URIs: stable names, not files.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from audit.report.model import FindingRow, Report, SourceLocation

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
_HELP = {
    "cni": "https://kubernetes.io/docs/concepts/services-networking/network-policies/#prerequisites",
    "coverage": "https://kubernetes.io/docs/concepts/services-networking/network-policies/#default-policies",
    "dns": "https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/",
    "config": "https://kubernetes.io/docs/concepts/services-networking/network-policies/",
}
_DEFAULT_HELP = "https://kubernetes.io/docs/concepts/services-networking/network-policies/"
BASE_ID = "SRCROOT"
STDIN = "<stdin>"


def rule_name(title: str) -> str:
    """An identifier-style rule name from a check title: "Namespace has no NetworkPolicy" -> NamespaceHasNoNetworkPolicy."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    # Keep a word's inner capitals (NetworkPolicy, hostNetwork): only its first letter is raised.
    return "".join(w[:1].upper() + w[1:] for w in words)


class _Locator:
    """Where each result points: relative, encoded URIs under SRCROOT, or cluster:// names."""

    def __init__(self, report: Report, root: Path, stdin_name: str):
        self.report = report
        self.root = root.resolve()
        self.stdin_name = stdin_name
        self.cluster = report.scan.source == "cluster"
        self.namespaces = {n.name: n.source for n in report.namespaces if n.source}
        self.policies: dict[str, SourceLocation] = {}
        for p in report.policies:
            if p.source and p.source.file and p.namespace is not None:
                self.policies.setdefault(p.namespace, p.source)
        self.first_input = next((i for i in report.scan.inputs), None)

    def artifact(self, path: str) -> dict[str, Any]:
        if path == STDIN:
            return {"uri": quote(self.stdin_name), "uriBaseId": BASE_ID}
        absolute = Path(path).resolve()
        try:
            relative = absolute.relative_to(self.root)
        except ValueError:
            return {"uri": absolute.as_uri()}  # outside the root: an absolute file URI, still valid
        return {"uri": quote(relative.as_posix()), "uriBaseId": BASE_ID}

    def cluster_uri(self, f: FindingRow) -> str:
        name = self.report.scan.cluster or self.report.scan.context or "cluster"
        parts = [name] + ([f.namespace] if f.namespace else []) + ([f.kind, f.name] if f.kind != "Namespace" or not f.namespace else [])
        return "cluster://" + "/".join(quote(p, safe="") for p in parts)

    def locate(self, f: FindingRow) -> dict[str, Any]:
        if self.cluster:
            return {"artifactLocation": {"uri": self.cluster_uri(f)}}
        src = f.source if f.source and f.source.file else None
        if src is None and f.namespace:
            src = self.namespaces.get(f.namespace) or self.policies.get(f.namespace)
        if src is not None and src.file:
            return {"artifactLocation": self.artifact(src.file), "region": {"startLine": src.line or 1}}
        if self.first_input:
            return {"artifactLocation": self.artifact(self.first_input), "region": {"startLine": 1}}
        return {"artifactLocation": {"uri": self.cluster_uri(f)}}


def render_sarif(report: Report, root: Path | None = None, stdin_name: str = "stdin.yaml") -> str:
    """SARIF 2.1.0 of the report (see the module docstring for where results point)."""
    locator = _Locator(report, root or Path(os.getcwd()), stdin_name)
    rules = [
        {
            "id": c.id,
            "name": rule_name(c.title),
            "shortDescription": {"text": c.title},
            "fullDescription": {"text": " ".join(c.rationale.split())},
            "help": {"text": c.remediation, "markdown": f"**{c.title}**\n\n{' '.join(c.rationale.split())}\n\n**Fix:** {c.remediation}"},
            "helpUri": _HELP.get(c.category, _DEFAULT_HELP),
            "defaultConfiguration": {"level": _LEVEL[c.severity]},
            "properties": {"security-severity": _SCORE[c.severity], "tags": ["security", "kubernetes", c.category],
                           "references": list(c.references)},
        }
        for c in report.checks
    ]
    index = {c.id: i for i, c in enumerate(report.checks)}
    results: list[dict[str, Any]] = []
    for f in report.findings:
        obj = f"{f.namespace}/{f.name}" if f.namespace and f.kind != "Namespace" else f.name
        result: dict[str, Any] = {
            "ruleId": f.check,
            "ruleIndex": index[f.check],
            "level": _LEVEL[f.severity],
            "message": {"text": f"{f.kind} {obj}: {f.message}"},
            "locations": [{"physicalLocation": locator.locate(f), "logicalLocations": [{"name": obj, "kind": f.kind}]}],
            # The finding id is derived from check, object and the rule's field, never from line
            # numbers or pod names: stable across runs, edits elsewhere in a file and pod restarts.
            "partialFingerprints": {"netpolAudit/v1": f.id},
        }
        if f.status == "waived":
            result["suppressions"] = [{"kind": "external", "justification": f.waiver or ""}]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": report.tool.name, "version": report.tool.version, "semanticVersion": report.tool.version,
                            "informationUri": _DEFAULT_HELP, "rules": rules}},
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
    }
    if not locator.cluster:
        run["originalUriBaseIds"] = {BASE_ID: {"uri": locator.root.as_uri() + "/"}}
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
