"""JUnit XML for `verify`, so CI systems show each expectation as a test case."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from audit.engine.expectations import Outcome


def render_junit(outcomes: list[Outcome], suite: str = "netpol-audit verify") -> str:
    failures = sum(1 for o in outcomes if not o.passed)
    root = ET.Element("testsuites", name=suite, tests=str(len(outcomes)), failures=str(failures))
    cases = ET.SubElement(root, "testsuite", name=suite, tests=str(len(outcomes)), failures=str(failures), errors="0")
    for outcome in outcomes:
        exp = outcome.expectation
        case = ET.SubElement(cases, "testcase", classname="netpol-audit.engine.expectations", name=exp.name)
        if not outcome.passed:
            failure = ET.SubElement(case, "failure", message=f"expected {exp.expect}: {outcome.detail}")
            failure.text = "\n".join(
                f"{r.source} -> {r.destination} : {r.port}/{r.protocol} {'allowed' if r.allowed else 'denied'}\n  "
                + "\n  ".join(r.verdict.explain_lines())
                for r in outcome.results
            )
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
