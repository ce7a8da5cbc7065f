"""Reachability questions: can this reach that, and why (or why not).

Endpoints are named the way people think of them: ``ns/name`` (a pod or a workload),
``ns`` (every pod of a namespace, optionally narrowed by a label selector), ``dns`` (the
cluster DNS pods) or an IP address. Answers come from Analysis.allowed, with the policies
and rules that decided each side.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass

from audit.engine.analysis import Analysis, Endpoint, Verdict
from audit.engine.dnsnames import fqdn, is_dns_name
from audit.engine.l7 import HttpRequest, SideAnswer
from audit.engine.l7 import answer as l7_answer
from audit.engine.l7 import side as l7_side
from audit.engine.lookup import NameResult, reach_name
from audit.engine.ports import PROTOCOLS
from audit.engine.selectors import Selector, parse_selector
from audit.errors import InputError

_SELECTOR_TERM = re.compile(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*([^,\s]*)\s*$")


@dataclass(frozen=True)
class Target:
    """One resolved endpoint: a pod class (with a readable name), an address, or a DNS name."""

    label: str
    endpoint: Endpoint
    name: str | None = None
    """A DNS name: the destination is what it resolves to (``endpoint`` is then unused)."""


@dataclass(frozen=True)
class PathResult:
    source: str
    destination: str
    port: int
    protocol: str
    verdict: Verdict
    rejected: tuple[str, ...] = ()
    """Policies that would have selected either end but are invalid, so they take no part."""
    request: HttpRequest | None = None
    l7: tuple[SideAnswer, ...] = ()
    """Each side's L7 answer (for a request), or the request shapes that pass it."""
    name: NameResult | None = None
    """For a DNS name destination: the lookup and the connection to what it resolves to."""

    @property
    def answer(self) -> str:
        """allowed, denied, unknown (the answer depends on what the input does not hold), or
        conditional (it depends on what another pod does)."""
        if self.name is not None and self.name.answer != "allowed":
            return self.name.answer
        if not self.verdict.allowed:
            return "denied"
        return l7_answer(self.l7) if self.request is not None else "allowed"

    @property
    def allowed(self) -> bool:
        return self.answer == "allowed"

    def explain(self) -> list[str]:
        if self.name is not None:
            return list(self.name.lines) + [f"note: {note}" for note in self.rejected]
        lines = self.verdict.explain_lines()
        if self.verdict.allowed:
            if self.request is not None:
                lines += [f"L7 {s.reason}" for s in self.l7]
            else:
                shapes = [s for s in self.l7 if s.shapes]
                lines += [f"allowed at L4 for: {'; '.join(s.shapes)} ({'egress' if s.direction == 'Egress' else 'ingress'} HTTP rules; "
                          "ask about one request with --http)" for s in shapes]
        return lines + [f"note: {note}" for note in self.rejected]


def parse_port(value: str) -> tuple[int, str]:
    """``8080``, ``53/UDP``: a port number and protocol (TCP by default)."""
    number, _, protocol = str(value).partition("/")
    protocol = (protocol or "TCP").upper()
    if protocol not in PROTOCOLS:
        raise InputError(f"port {value!r}: protocol must be one of {', '.join(PROTOCOLS)}")
    try:
        port = int(number)
    except ValueError:
        raise InputError(f"port {value!r}: not a port number (use e.g. 8080 or 53/UDP)") from None
    if not 1 <= port <= 65535:
        raise InputError(f"port {value!r}: must be between 1 and 65535")
    return port, protocol


def _selector_terms(text: str) -> list[str]:
    """Split a selector at the commas outside parentheses (`app in (a,b),tier=web`)."""
    terms, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    return terms + [current]


_SET_TERM = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s*\(([^()]*)\)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


def parse_label_selector(text: str | None) -> Selector | None:
    """A label selector as kubectl -l takes it: `key=value`, `key==value`, `key!=value`,
    `key in (a,b)`, `key notin (a,b)`, `key` (exists) and `!key` (does not exist), comma-separated."""
    if not text:
        return None
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, object]] = []
    for term in _selector_terms(text):
        if found := _SET_TERM.match(term):
            key, op, values = found.groups()
            expressions.append({"key": key, "operator": "In" if op == "in" else "NotIn",
                                "values": [v.strip() for v in values.split(",") if v.strip()]})
        elif found := _SELECTOR_TERM.match(term.replace("==", "=")):
            key, op, value = found.groups()
            if op == "!=":
                expressions.append({"key": key, "operator": "NotIn", "values": [value]})
            else:
                match_labels[key] = value
        elif found := _EXISTS_TERM.match(term):
            negated, key = found.groups()
            expressions.append({"key": key, "operator": "DoesNotExist" if negated else "Exists"})
        else:
            raise InputError(f"selector {text!r}: cannot read {term.strip()!r} (use key=value, key!=value, "
                             "key in (a,b), key notin (a,b), key or !key, comma-separated)")
    selector, errors = parse_selector({"matchLabels": match_labels, "matchExpressions": expressions}, "selector")
    if errors:
        raise InputError(f"selector {text!r}: {errors[0]}")
    return selector


_WORKLOAD_KIND = re.compile(r"\[[A-Za-z]+\]$")
# What controllers append to a pod's name: a ReplicaSet's pod-template-hash and a random suffix
# (Deployments), a random suffix (ReplicaSets, DaemonSets, Jobs), a scheduled time and a suffix
# (CronJobs' Jobs), an ordinal (StatefulSets).
_POD_SUFFIXES = (re.compile(r"-[a-z0-9]{5,10}-[a-z0-9]{5}$"), re.compile(r"-[0-9]{8,10}-[a-z0-9]{5}$"),
                 re.compile(r"-[a-z0-9]{5}$"), re.compile(r"-[0-9]+$"))


def _by_pod_name(analysis: Analysis, namespace: str, name: str) -> list[int]:
    """The pod named ``name``: its own class where the input names its pods; else, where it does
    not (a template), the pods of the workload whose controller would have named it so."""
    exact = analysis.find_pod(namespace, name)
    if exact:
        return exact
    for suffix in _POD_SUFFIXES:
        owner = suffix.sub("", name)
        if owner != name:
            found = analysis.find_workload(namespace, owner)
            if found and not any(w.pod_names for cid in found for w in analysis.classes[cid].workloads):
                return found
    return []


def resolve(analysis: Analysis, spec: str, selector: Selector | None = None) -> list[Target]:
    """The endpoints a name stands for; an InputError names what was not found."""
    spec = spec.strip()
    if spec == "dns":
        return [Target(f"dns ({analysis.dns.namespace})", cid) for cid in analysis.dns_classes]
    try:
        return [Target(spec, ipaddress.ip_address(spec))]
    except ValueError:
        pass
    if is_dns_name(spec):
        return [Target(fqdn(spec).rstrip("."), ipaddress.ip_address(0), fqdn(spec))]
    namespace, _, name = spec.partition("/")
    if namespace not in analysis.namespaces:
        raise InputError(f"{spec!r}: no namespace {namespace!r} in the input")
    if name:
        name = _WORKLOAD_KIND.sub("", name)  # `web[Deployment]`, as connectivity prints it
        cids = analysis.find_workload(namespace, name) or _by_pod_name(analysis, namespace, name)
        if not cids:
            known = sorted({ref.split("/", 1)[1].split("[")[0] for cid in analysis.classes_by_ns.get(namespace, [])
                            for w in analysis.classes[cid].workloads for ref in (w.ref, w.pod_ref)})
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(f'{namespace}/{c}' for c in close)}?" if close else ""
            raise InputError(f"{spec!r}: no pod or workload named {name!r} in namespace {namespace!r}{hint}")
    else:
        cids = list(analysis.classes_by_ns.get(namespace, []))
    if selector is not None:
        cids = [c for c in cids if selector.matches(analysis.classes[c].label_map)]
    cids = [c for c in cids if not analysis.classes[c].virtual]
    # A named workload with one pod class keeps the name it was asked by.
    targets = [Target(spec if name and len(cids) == 1 else analysis.classes[c].describe(), c) for c in cids]
    if not targets:
        raise InputError(f"{spec!r}: no pod matches{' the selector' if selector is not None else ''}")
    return targets


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InputError(f"--address {text!r}: not an IP address") from None


def ports_to_check(analysis: Analysis, destination: Target, port: str | None) -> list[tuple[int, str]]:
    """The port asked for, or every container port the destination declares."""
    if port is not None:
        return [parse_port(port)]
    if isinstance(destination.endpoint, int):
        declared = sorted({(p.port, p.protocol) for p in analysis.classes[destination.endpoint].ports})
        if declared:
            return declared
    raise InputError(f"{destination.label}: declares no container port; give --port")


def check_paths(analysis: Analysis, sources: list[Target], destinations: list[Target], port: str | None,
                request: HttpRequest | None = None, address: str | None = None) -> list[PathResult]:
    """Each source to each destination on each port; with ``request``, the HTTP request too; a DNS
    name destination at ``address`` when given (what it resolves to)."""
    results = []
    resolved = _address(address) if address is not None else None
    for dst in destinations:
        for number, protocol in ports_to_check(analysis, dst, port):
            for src in sources:
                if dst.name is not None:
                    if not isinstance(src.endpoint, int) or src.name is not None:
                        raise InputError(f"{dst.label}: a DNS name is a destination for a pod (the source must be a pod or workload)")
                    found = reach_name(analysis, src.endpoint, dst.name, number, protocol, resolved)
                    verdict = found.verdict or analysis.allowed(src.endpoint, resolved or ipaddress.ip_address(0), number, protocol)
                    results.append(PathResult(src.label, dst.label, number, protocol, verdict, (), request, (), found))
                    continue
                verdict = analysis.allowed(src.endpoint, dst.endpoint, number, protocol)
                rejected = tuple(dict.fromkeys(bad.describe() for end in (src.endpoint, dst.endpoint) if isinstance(end, int)
                                               for bad in analysis.rejected_for(end)))
                l7: tuple[SideAnswer, ...] = ()
                if verdict.allowed:
                    l7 = (l7_side(analysis, "Egress", src.endpoint, dst.endpoint, number, protocol, request),
                          l7_side(analysis, "Ingress", dst.endpoint, src.endpoint, number, protocol, request))
                results.append(PathResult(src.label, dst.label, number, protocol, verdict, rejected, request, l7))
    return results


def render_paths(results: list[PathResult]) -> str:
    """The explanation chain for each path, as `cilium policy trace` would give it."""
    lines = []
    for r in results:
        word = r.answer.upper()
        asked = f" {r.request}" if r.request is not None else ""
        lines.append(f"{r.source} -> {r.destination} : {r.port}/{r.protocol}{asked}  {word}")
        lines.extend(f"  {step}" for step in r.explain())
    return "\n".join(lines) + "\n"
