"""`connectivity` against netpol-analyzer's own published outputs, line for line.

The inputs and expected outputs are netpol-analyzer's (tests/netpol_analyzer/README.md says which
and from where). The comparison puts the expected output in canonical form with code written here,
independently of the engine: outside ranges that are adjacent and have the same connections with the
same workload are merged, and lines sort by source then destination (outside ranges first in address
order, IPv4 before IPv6, then names, the ingress controller last).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from audit.engine.analysis import Analysis
from audit.engine.connectivity import connections
from audit.sources.manifests import load_manifests

CASES = Path(__file__).resolve().parent / "netpol_analyzer" / "cases"
RANGE = re.compile(r"^(?P<first>[^-\[]+)-(?P<last>[^\[]+)\[External\]$")
API_SERVER_REJECTS = {"netpol_named_port_test_2": "a container port without containerPort (required)"}
NO_IPV6 = {"anp_and_banp_using_networks_with_ipv6_test"}
"""netpol-analyzer skips IPv6 networks with a warning; netpol-audit evaluates them (its IPv4 lines must still match)."""


def _key(end: str) -> tuple:
    if end == "{ingress-controller}":
        return (2,)
    found = RANGE.match(end)
    if found:
        ip = ipaddress.ip_address(found["first"])
        return (0, ip.version, int(ip))
    return (1, end)


def canonical(lines: list[str]) -> list[str]:
    triples = []
    for line in lines:
        src, rest = line.split(" => ", 1)
        dst, conns = rest.split(" : ", 1)
        triples.append((src, dst, conns))
    for side in (0, 1):
        kept, ranges = [], {}
        for t in triples:
            found = RANGE.match(t[side])
            if not found:
                kept.append(t)
                continue
            first, last = ipaddress.ip_address(found["first"]), ipaddress.ip_address(found["last"])
            ranges.setdefault((t[1 - side], t[2], first.version), []).append([int(first), int(last)])
        for (other, conns, version), spans in ranges.items():
            spans.sort()
            joined: list[list[int]] = []
            for first, last in spans:
                if joined and first == joined[-1][1] + 1:
                    joined[-1][1] = last
                else:
                    joined.append([first, last])
            make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
            for first, last in joined:
                text = f"{make(first)}-{make(last)}[External]"
                kept.append((text, other, conns) if side == 0 else (other, text, conns))
        triples = kept
    triples.sort(key=lambda t: (0 if t[0] != "{ingress-controller}" else 1, _key(t[0]), _key(t[1])))
    return [f"{s} => {d} : {c}" for s, d, c in triples]


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.name not in API_SERVER_REJECTS))
def test_connectivity_matches_netpol_analyzer(case):
    expected = canonical([line for line in (CASES / case / "expected.txt").read_text().splitlines() if line.strip()])
    ours = [str(c) for c in connections(Analysis(load_manifests([str(CASES / case / "input")])))]
    if case in NO_IPV6:
        ours = [line for line in ours if ":" not in line.split(" : ")[0]]
    assert ours == expected


def test_the_canonical_form_merges_and_orders():
    lines = ["ns/a[Pod] => 60.0.0.0-60.0.0.255[External] : All Connections",
             "ns/a[Pod] => 208.0.0.0-208.0.0.255[External] : All Connections",
             "ns/a[Pod] => 60.0.1.0-60.0.1.255[External] : All Connections",
             "ns/a[Pod] => 60.0.2.0-60.0.2.255[External] : TCP 80"]
    assert canonical(lines) == ["ns/a[Pod] => 60.0.0.0-60.0.1.255[External] : All Connections",
                                "ns/a[Pod] => 60.0.2.0-60.0.2.255[External] : TCP 80",
                                "ns/a[Pod] => 208.0.0.0-208.0.0.255[External] : All Connections"]
