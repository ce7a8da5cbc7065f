"""Expected connections (allowed or denied), checked before deploying: `netpol-audit verify`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.engine.analysis import Analysis
from audit.engine.l7 import HttpRequest, parse_request
from audit.engine.reach import PathResult, check_paths, parse_label_selector, parse_port, resolve
from audit.errors import InputError

_FIELDS = {"name", "from", "to", "port", "expect", "fromSelector", "toSelector", "http", "headers", "address"}


@dataclass(frozen=True)
class Expectation:
    name: str
    source: str
    destination: str
    port: str
    expect: str  # "allowed" | "denied"
    source_selector: str | None = None
    destination_selector: str | None = None
    http: str | None = None
    """An HTTP request (`GET /api/v1/orders`): the expectation is about it, not only the port."""
    headers: tuple[str, ...] = ()
    address: str | None = None
    """For a DNS name destination: the address it resolves to."""

    @property
    def request(self) -> HttpRequest | None:
        return parse_request(self.http, self.headers) if self.http else None


@dataclass(frozen=True)
class Outcome:
    """An expectation checked (``audit.report.model.ExpectationResult``)."""

    expectation: Expectation
    passed: bool
    detail: str
    results: tuple[PathResult, ...]

    @property
    def name(self) -> str:
        return self.expectation.name

    @property
    def expect(self) -> str:
        return self.expectation.expect

    @property
    def paths(self) -> tuple[PathResult, ...]:
        return self.results


def parse_expectations(raw: Any, path: str) -> list[Expectation]:
    """An expectations document (read by audit.sources.documents); every problem names the file, the entry and the field."""
    if not isinstance(raw, dict) or not isinstance(raw.get("expectations"), list) or not raw["expectations"]:
        raise InputError(f"{path}: expectations: required, a non-empty list")
    out = []
    for i, item in enumerate(raw["expectations"]):
        where = f"{path}: expectations[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{where}: must be a mapping with from, to, port and expect")
        unknown = sorted(set(item) - _FIELDS)
        if unknown:
            raise InputError(f"{where}.{unknown[0]}: unknown field (known: {', '.join(sorted(_FIELDS))})")
        for field in ("from", "to", "port", "expect"):
            if item.get(field) in (None, ""):
                raise InputError(f"{where}.{field}: required")
        expect = str(item["expect"]).lower()
        if expect not in ("allowed", "denied"):
            raise InputError(f"{where}.expect: {item['expect']!r} must be allowed or denied")
        headers = item.get("headers") or []
        if not isinstance(headers, list) or not all(isinstance(h, str) for h in headers):
            raise InputError(f"{where}.headers: must be a list of `Name: value` strings")
        try:
            parse_port(str(item["port"]))
            parse_label_selector(_opt(item.get("fromSelector")))
            parse_label_selector(_opt(item.get("toSelector")))
            if item.get("http") is not None:
                parse_request(str(item["http"]), headers)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        asked = f" {item['http']}" if item.get("http") else ""
        name = str(item.get("name") or f"{item['from']} -> {item['to']} : {item['port']}{asked} {expect}")
        out.append(Expectation(name, str(item["from"]), str(item["to"]), str(item["port"]), expect,
                               _opt(item.get("fromSelector")), _opt(item.get("toSelector")), _opt(item.get("http")), tuple(headers),
                               _opt(item.get("address"))))
    return out


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def evaluate(analysis: Analysis, expectations: list[Expectation]) -> list[Outcome]:
    """An expectation holds when every path it names (every source pod to every destination) agrees."""
    outcomes = []
    for exp in expectations:
        try:
            sources = resolve(analysis, exp.source, parse_label_selector(exp.source_selector))
            destinations = resolve(analysis, exp.destination, parse_label_selector(exp.destination_selector))
            results = tuple(check_paths(analysis, sources, destinations, exp.port, exp.request, exp.address))
        except InputError as exc:
            outcomes.append(Outcome(exp, False, f"cannot evaluate: {exc}", ()))
            continue
        want = exp.expect == "allowed"
        unknown = [r for r in results if r.answer in ("unknown", "conditional")]
        if unknown:
            why = "; ".join(s.reason for s in unknown[0].l7 if s.answer == "unknown") or "; ".join(unknown[0].explain()[-1:])
            outcomes.append(Outcome(exp, False, f"cannot decide {len(unknown)} of {len(results)} path(s): {why}", results))
            continue
        wrong = [r for r in results if r.allowed != want]
        if not wrong:
            outcomes.append(Outcome(exp, True, f"{len(results)} path(s) {exp.expect}", results))
            continue
        first = wrong[0]
        side = first.verdict.egress if (want and not first.verdict.egress.allowed) else first.verdict.ingress
        if want and first.verdict.allowed:  # allowed at L4, refused above it
            l7 = "; ".join(s.reason for s in first.l7 if s.answer == "denied")
            detail = f"{len(wrong)} of {len(results)} path(s) denied; {first.source} -> {first.destination}: {l7}"
        elif want:
            detail = f"{len(wrong)} of {len(results)} path(s) denied; {first.source} -> {first.destination}: {side.explain()}"
        else:
            why = "; ".join(first.verdict.explain())
            detail = f"{len(wrong)} of {len(results)} path(s) allowed; {first.source} -> {first.destination}: {why}"
        outcomes.append(Outcome(exp, False, detail, results))
    return outcomes
