"""JUnit XML for `verify` and `scan`, so CI systems show expectations and checks as test cases."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from audit.report.model import ExpectationResult, FindingRow, Report

# What XML 1.0 cannot carry at all (escaping with &#...; does not help): most C0 controls,
# surrogates, U+FFFE and U+FFFF. Shown as visible escapes instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 forbids written as a visible escape."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100 else f"\\u{ord(m.group(0)):04x}", value)


def render_junit(outcomes: Sequence[ExpectationResult], suite: str = "netpol-audit verify") -> str:
    failures = sum(1 for o in outcomes if not o.passed)
    root = ET.Element("testsuites", name=suite, tests=str(len(outcomes)), failures=str(failures))
    cases = ET.SubElement(root, "testsuite", name=suite, tests=str(len(outcomes)), failures=str(failures), errors="0")
    for outcome in outcomes:
        case = ET.SubElement(cases, "testcase", classname="netpol-audit.expectations", name=xml_text(outcome.name))
        if not outcome.passed:
            failure = ET.SubElement(case, "failure", message=xml_text(f"expected {outcome.expect}: {outcome.detail}"))
            failure.text = xml_text("\n".join(
                f"{r.source} -> {r.destination} : {r.port}/{r.protocol} {'allowed' if r.allowed else 'denied'}\n  "
                + "\n  ".join(r.explain())
                for r in outcome.paths
            ))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def render_scan_junit(report: Report) -> str:
    """JUnit for `scan`: one test case per check and audited namespace (and one per check for
    cluster-wide findings), failing with one line per unwaived finding; a CI system shows each
    namespace's checks as tests."""
    audited = [n.name for n in report.namespaces if not n.excluded]
    fails: dict[tuple[str, str | None], list[FindingRow]] = {}
    for f in report.findings:
        if f.status == "fail":
            fails.setdefault((f.check, f.namespace), []).append(f)
    cases: list[tuple[str, str, list[FindingRow]]] = []
    for check in report.checks:
        for ns in audited:
            cases.append((check.id, ns, fails.get((check.id, ns), [])))
        if (check.id, None) in fails:
            cases.append((check.id, "(cluster)", fails[(check.id, None)]))
    failures = sum(1 for *_, found in cases if found)
    root = ET.Element("testsuites", name="netpol-audit scan", tests=str(len(cases)), failures=str(failures))
    suite = ET.SubElement(root, "testsuite", name="netpol-audit scan", tests=str(len(cases)), failures=str(failures),
                          errors="0" if report.scan.complete else "1", timestamp=report.generated_at)
    titles = {c.id: c.title for c in report.checks}
    for check_id, ns, found in cases:
        case = ET.SubElement(suite, "testcase", classname=xml_text(f"netpol-audit.{ns}"), name=xml_text(f"{check_id} {titles[check_id]}"))
        if found:
            failure = ET.SubElement(case, "failure", message=xml_text(f"{len(found)} finding(s), {found[0].severity}"),
                                    type=found[0].severity)
            failure.text = xml_text("\n".join(f"{f.kind} {f.name}: {f.message}" for f in found))
    if not report.scan.complete:
        error = ET.SubElement(ET.SubElement(suite, "testcase", classname="netpol-audit", name="scan complete"), "error",
                              message="the scan is INCOMPLETE: this is not an all-clear")
        error.text = xml_text("\n".join(f"{i.resource}: {i.reason}" for i in report.scan.issues))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
