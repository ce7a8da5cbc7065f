"""Canonical listings: outside ranges merged where they connect alike, address order, and `diff`
comparing two listings that cut the address space differently address by address."""

from __future__ import annotations

from audit.engine.connectivity import Connection, connections
from audit.engine.diff import diff
from audit.engine.ports import ALL, parse_port_set
from tests.conftest import analyse

EXT = "[External]"


def test_diff_compares_outside_ranges_address_by_address():
    before = [Connection("ns/a[Pod]", f"0.0.0.0-255.255.255.255{EXT}", ALL)]
    after = [Connection("ns/a[Pod]", f"0.0.0.0-9.255.255.255{EXT}", ALL),
             Connection("ns/a[Pod]", f"11.0.0.0-255.255.255.255{EXT}", ALL)]
    assert [str(c) for c in diff(before, after)] == [f"- ns/a[Pod] => 10.0.0.0-10.255.255.255{EXT} : All Connections"]
    assert [str(c) for c in diff(after, before)] == [f"+ ns/a[Pod] => 10.0.0.0-10.255.255.255{EXT} : All Connections"]
    assert diff(before, before) == []


def test_diff_joins_adjacent_ranges_changed_alike_and_keeps_others_apart():
    tcp80 = parse_port_set("TCP 80")
    before = [Connection(f"10.0.0.0-10.0.0.255{EXT}", "ns/a[Pod]", tcp80), Connection(f"10.0.1.0-10.0.1.255{EXT}", "ns/a[Pod]", tcp80)]
    after = [Connection(f"10.0.0.0-10.0.1.255{EXT}", "ns/a[Pod]", ALL)]
    assert [str(c) for c in diff(before, after)] == [f"+~ 10.0.0.0-10.0.1.255{EXT} => ns/a[Pod] : TCP 80 -> All Connections"]
    after2 = [Connection(f"10.0.0.0-10.0.0.255{EXT}", "ns/a[Pod]", ALL)]
    assert [str(c) for c in diff(before, after2)] == [f"+~ 10.0.0.0-10.0.0.255{EXT} => ns/a[Pod] : TCP 80 -> All Connections",
                                                      f"- 10.0.1.0-10.0.1.255{EXT} => ns/a[Pod] : TCP 80"]


ORDERED = """
apiVersion: v1
kind: Namespace
metadata: {name: ns1}
---
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: ns1, labels: {app: x}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: ns1}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 208.0.0.0/8}}]
      ports: [{port: 443}]
    - to: [{ipBlock: {cidr: 60.0.0.0/8}}]
      ports: [{port: 80}]
    - to: [{ipBlock: {cidr: "2001:db8::/32"}}]
      ports: [{port: 80}]
"""


def test_outside_ranges_sort_by_address_ipv4_first():
    lines = [str(c) for c in connections(analyse(ORDERED)) if c.src == "ns1/app[Pod]"]
    assert lines == [f"ns1/app[Pod] => 60.0.0.0-60.255.255.255{EXT} : TCP 80",
                     f"ns1/app[Pod] => 208.0.0.0-208.255.255.255{EXT} : TCP 443",
                     f"ns1/app[Pod] => 2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff{EXT} : TCP 80"]
    sources = [c.src for c in connections(analyse(ORDERED)) if c.dst == "ns1/app[Pod]"]
    assert sources == [f"0.0.0.0-255.255.255.255{EXT}", f"::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff{EXT}"]
