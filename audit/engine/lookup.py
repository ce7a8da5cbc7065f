"""Whether a pod can reach a DNS name: its lookup, then the connection to what the name resolves to.

The lookup: the pod must reach the cluster DNS on 53 (UDP or TCP) at layer 4; where the allows that
let it through carry DNS rules (Cilium's `rules.dns`), the DNS proxy intercepts the lookup and answers
REFUSED to a name none of their patterns matches. Cilium learns which addresses a toFQDNs rule names
only from lookups its proxy intercepted, and shares what it learned with every pod of the node: a pod
whose lookups go through at layer 4 only reaches a name its toFQDNs rule allows only while another pod
on the same node looks the name up through the proxy (a qualified answer, never a plain "allowed").

The connection: judged at the address the name resolves to. Without `--address`, at every range of
addresses the policies cut: the same verdict everywhere is the answer; different verdicts make it
unknown (the policies decide by address, and the name's address is not in the input).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from audit.engine.analysis import Analysis, Verdict
from audit.engine.compiled import L7
from audit.engine.connectivity import segments
from audit.engine.dnsnames import fqdn, name_matches, named
from audit.engine.ports import resolve_ports
from audit.engine.verdict import port_in

LookupState = Literal["intercepted", "plain", "refused", "blocked"]
NameAnswer = Literal["allowed", "denied", "unknown", "conditional"]


@dataclass(frozen=True)
class Lookup:
    """How a pod's lookup of a name goes."""

    state: LookupState
    reason: str


def lookup(analysis: Analysis, src: int, name: str) -> Lookup:
    """Whether ``src`` can look ``name`` up, and whether Cilium's DNS proxy sees the lookup."""
    reachable = [(cid, protocol) for cid in analysis.dns_classes for protocol in ("UDP", "TCP")
                 if analysis.allowed(src, cid, 53, protocol).allowed]
    if not reachable:
        return Lookup("blocked", f"its egress does not reach the cluster DNS ({analysis.dns_note or 'kube-dns'}) on 53: it cannot look "
                      f"{name} up")
    if not analysis.is_isolated(src, "Egress"):
        return Lookup("plain", "its lookups are not intercepted (no policy isolates its egress)")
    patterns: list[tuple[str, str]] = []
    for cid, protocol in reachable:
        for label, l7 in _covering(analysis, src, cid, protocol):
            if l7 is None or l7.protocol != "DNS":
                return Lookup("plain", f"{label} allows DNS at layer 4 only: its lookups are not intercepted")
            patterns += [(label, p) for p in l7.dns]
    hit = next(((label, p) for label, p in patterns if name_matches(p, name)), None)
    if hit is None:
        return Lookup("refused", f"the DNS proxy refuses a lookup of {fqdn(name)} (its DNS rules allow {', '.join(sorted({p for _l, p in patterns}))})")
    return Lookup("intercepted", f"{hit[0]} lets the lookup of {fqdn(name)} through the DNS proxy (rules.dns {hit[1]})")


def _covering(analysis: Analysis, src: int, dst: int, protocol: str) -> list[tuple[str, L7 | None]]:
    """The egress allows of ``src`` (namespace tier) that name ``dst`` on 53, with each one's L7 rules."""
    out: list[tuple[str, L7 | None]] = []
    ports = analysis.classes[dst].ports
    for entry in analysis.stack_for(src, "Egress").get("namespace", ()):
        for rule in entry.rules("Egress"):
            if rule.action != "Allow" or not analysis.rule_names(rule, src, dst):
                continue
            if rule.ports is None:
                out.append((rule.label, None))
                continue
            out += [(rule.label, p.l7) for p in rule.ports if port_in(resolve_ports([p.entry()], ports), 53, protocol)]
    return out


@dataclass(frozen=True)
class NameResult:
    """The answer for a pod and a name on one port."""

    answer: NameAnswer
    lines: tuple[str, ...]
    verdict: Verdict | None = None


def reach_name(analysis: Analysis, src: int, name: str, port: int, protocol: str,
               address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None) -> NameResult:
    """Whether pod class ``src`` can connect to DNS name ``name`` on ``port``."""
    found = lookup(analysis, src, name)
    lines = [f"lookup: {found.reason}"]
    if found.state in ("blocked", "refused"):
        return NameResult("denied", tuple(lines))
    if address is not None:
        verdict = analysis.allowed(src, named(address, name), port, protocol)
        lines += [f"at {address}: {step}" for step in verdict.explain_lines()]
        answer: NameAnswer = "allowed" if verdict.allowed else "denied"
        plain = analysis.allowed(src, address, port, protocol).allowed
    else:
        by_range = [(seg, analysis.allowed(src, named(seg.probe, name), port, protocol)) for seg in segments(analysis)
                    if seg.version == 4]
        outcomes = {v.allowed for _seg, v in by_range}
        if len(outcomes) > 1:
            ranges = [f"{seg.text().removesuffix('[External]')} {'allowed' if v.allowed else 'denied'}" for seg, v in by_range]
            lines.append("the policies decide by address and the address the name resolves to is not in the input: "
                         + "; ".join(ranges[:6]) + (" ..." if len(ranges) > 6 else "") + " (give --address)")
            return NameResult("unknown", tuple(lines))
        verdict = by_range[0][1]
        lines += verdict.explain_lines()
        answer = "allowed" if verdict.allowed else "denied"
        plain = analysis.allowed(src, by_range[0][0].probe, port, protocol).allowed
    if answer == "allowed" and not plain and found.state == "plain":
        # Allowed only by a toFQDNs rule, while the pod's own lookups teach Cilium nothing.
        lines.append(f"only a toFQDNs rule allows it, and {found.reason.split(':')[0]}: it works only while another pod on the same "
                     "node looks the name up through Cilium's DNS proxy")
        return NameResult("conditional", tuple(lines), verdict)
    return NameResult(answer, tuple(lines), verdict)
