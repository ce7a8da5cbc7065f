"""Answers above layer 4: whether an HTTP request passes the L7 rules of the policies that allow its
connection (Cilium's `toPorts[].rules.http`), side by side as the proxies enforce them.

A side (the source's egress, the destination's ingress) lets a request through when layer 4 allows
the connection and: no policy there isolates the pod (no proxy, or one that lets everything
through); or the namespace tier did not decide it (an admin tier's Allow: no L7 there); or some
allow that names the peer on the port has no L7 rule (an L4-only allow lets every request
through); or one of the HTTP rules of those allows matches the request: the method, path and host
are regular expressions that must match the whole value, case-sensitive (the path with its query
string); each header must be present, or have exactly the value. An allow whose L7 rules speak
another protocol (Kafka, DNS) refuses an HTTP request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from audit.engine.analysis import Analysis, Endpoint
from audit.engine.compiled import L7, HttpRule
from audit.engine.direction import Direction
from audit.engine.ports import resolve_ports
from audit.engine.verdict import port_in
from audit.errors import InputError

Answer = Literal["allowed", "denied", "unknown"]
_METHOD = re.compile(r"^[A-Za-z]+$")


@dataclass(frozen=True)
class HttpRequest:
    """What `--http "GET /path"` and `--header "Name: value"` ask about."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def host(self) -> str | None:
        return dict(self.headers).get("host")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def parse_request(text: str, headers: list[str] | tuple[str, ...] = ()) -> HttpRequest:
    """``GET /api/v1/products/42`` and ``Name: value`` headers; an InputError says what is wrong."""
    method, _, path = text.strip().partition(" ")
    path = path.strip()
    if not _METHOD.match(method) or not path.startswith("/") or " " in path:
        raise InputError(f"--http {text!r}: give a method and a path, as `GET /api/v1/products/42`")
    parsed = []
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise InputError(f"--header {header!r}: give `Name: value`")
        parsed.append((name.strip().lower(), value.strip()))
    return HttpRequest(method, path, tuple(parsed))


def rule_matches(rule: HttpRule, request: HttpRequest) -> bool | None:
    """Whether one HTTP rule lets the request through; None when that cannot be judged here."""
    if rule.unknown is not None:
        return None
    for pattern, value in ((rule.method, request.method), (rule.path, request.path), (rule.host, request.host)):
        if pattern is not None and (value is None or re.fullmatch(pattern, value) is None):
            return False
    sent = dict(request.headers)
    for name, value in rule.headers:
        if name not in sent or (value is not None and sent[name] != value):
            return False
    return True


@dataclass(frozen=True)
class SideAnswer:
    """One side's answer to an HTTP request."""

    direction: Direction
    answer: Answer
    reason: str
    rules: tuple[str, ...] = ()
    """The L7 rules (field paths) that let it through, or that it was judged against."""
    shapes: tuple[str, ...] = field(default=())
    """The requests that pass this side (empty: every request)."""


def side(analysis: Analysis, direction: Direction, subject: Endpoint, other: Endpoint, port: int, protocol: str,
         request: HttpRequest | None) -> SideAnswer:
    """What one side's L7 rules do to ``request`` (None: only which request shapes pass)."""
    word = "egress of the source" if direction == "Egress" else "ingress of the destination"
    if not isinstance(subject, int) or not analysis.is_isolated(subject, direction):
        return SideAnswer(direction, "allowed", f"{word}: no L7 rule applies (not isolated)")
    dst = other if direction == "Egress" else subject
    dst_ports = analysis.classes[dst].ports if isinstance(dst, int) else None
    covering: list[tuple[str, L7 | None]] = []
    for entry in analysis.stack_for(subject, direction).get("namespace", ()):
        for rule in entry.rules(direction):
            if rule.action != "Allow" or not analysis.rule_names(rule, subject, other):
                continue
            if rule.ports is None:
                covering.append((rule.label, None))
                continue
            for p in rule.ports:
                if port_in(resolve_ports([p.entry()], dst_ports), port, protocol):
                    covering.append((rule.label, p.l7))
    if not covering:
        return SideAnswer(direction, "allowed", f"{word}: decided above the namespace tier (no L7 rule there)")
    plain = [label for label, l7 in covering if l7 is None]
    if plain:
        return SideAnswer(direction, "allowed", f"{word}: {plain[0]} allows the port at layer 4 (every request)")
    http = [(label, l7) for label, l7 in covering if l7 is not None and l7.protocol == "HTTP"]
    shapes = tuple(dict.fromkeys(r.text for _label, l7 in http for r in l7.http))
    others = sorted({l7.protocol for _label, l7 in covering if l7 is not None and l7.protocol != "HTTP"})
    if request is None:
        return SideAnswer(direction, "allowed", f"{word}: HTTP rules restrict the port", shapes=shapes)
    unknown: list[str] = []
    for label, l7 in http:
        for match in l7.http:
            verdict = rule_matches(match, request)
            if verdict:
                return SideAnswer(direction, "allowed", f"{word}: {label} {match.field} ({match.text}) lets {request} through",
                                  (match.field,), shapes)
            if verdict is None:
                unknown.append(f"{match.field}: {match.unknown}")
    if unknown:
        return SideAnswer(direction, "unknown", f"{word}: cannot be judged: {'; '.join(unknown)}", shapes=shapes)
    if not http:
        return SideAnswer(direction, "denied", f"{word}: the port's L7 rules speak {', '.join(others)}, not HTTP", shapes=shapes)
    return SideAnswer(direction, "denied", f"{word}: no HTTP rule matches {request} (allowed: {'; '.join(shapes)}); "
                      "the proxy answers 403", tuple(r.field for _l, l7 in http for r in l7.http), shapes)


def answer(sides: tuple[SideAnswer, ...]) -> Answer:
    """Both sides must let a request through."""
    if any(s.answer == "denied" for s in sides):
        return "denied"
    if any(s.answer == "unknown" for s in sides):
        return "unknown"
    return "allowed"
