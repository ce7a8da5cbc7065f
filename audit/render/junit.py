"""JUnit XML for `verify`, so CI systems show each expectation as a test case."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from audit.engine.expectations import Outcome

# What XML 1.0 cannot carry at all (escaping with &#...; does not help): most C0 controls,
# surrogates, U+FFFE and U+FFFF. Shown as visible escapes instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 forbids written as a visible escape."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100 else f"\\u{ord(m.group(0)):04x}", value)


def render_junit(outcomes: list[Outcome], suite: str = "netpol-audit verify") -> str:
    failures = sum(1 for o in outcomes if not o.passed)
    root = ET.Element("testsuites", name=suite, tests=str(len(outcomes)), failures=str(failures))
    cases = ET.SubElement(root, "testsuite", name=suite, tests=str(len(outcomes)), failures=str(failures), errors="0")
    for outcome in outcomes:
        exp = outcome.expectation
        case = ET.SubElement(cases, "testcase", classname="netpol-audit.expectations", name=xml_text(exp.name))
        if not outcome.passed:
            failure = ET.SubElement(case, "failure", message=xml_text(f"expected {exp.expect}: {outcome.detail}"))
            failure.text = xml_text("\n".join(
                f"{r.source} -> {r.destination} : {r.port}/{r.protocol} {'allowed' if r.allowed else 'denied'}\n  "
                + "\n  ".join(r.verdict.explain_lines())
                for r in outcome.results
            ))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
