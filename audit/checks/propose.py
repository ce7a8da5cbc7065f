"""Least-privilege NetworkPolicies from observed traffic, verified by the engine before they are offered.

Per namespace with observed pods: default-deny both ways, DNS to the cluster DNS pods, then per
workload one ingress policy (a rule per observed source, on the ports seen) and one egress
policy (a rule per observed destination). Selectors come from stable labels only (never
pod-template-hash, StatefulSet pod names or other per-pod labels, see fixes.PER_POD_LABELS);
ports by the destination's name for them when it declares one. Flows the capture saw only as
DROPPED were refused, not needed: they are not proposed.

`verify` applies the proposal to the inventory: every proposed-from flow must be allowed, and
`widened` (every connection after that was not before) must be empty.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any

from audit.checks import fixes
from audit.checks.bundle import BundleFile, apply, file_name
from audit.engine.analysis import Analysis, DnsTarget, Endpoint
from audit.engine.connectivity import Connection
from audit.engine.diff import widened
from audit.engine.flows import MAX_IPS, End, FlowMapper, Tally, Traffic
from audit.inventory import Inventory

NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Proposal:
    """The proposed files, and what could not be expressed (said, never left out silently)."""

    files: tuple[BundleFile, ...]
    notes: tuple[str, ...]
    flows: tuple[tuple[End, End, int, str], ...]
    """The observed (source, destination, port, protocol) the proposal is meant to allow."""


def _needed(traffic: Traffic) -> dict[tuple[End, End, int, str], Tally]:
    return {k: t for k, t in traffic.pairs.items() if t.dropped < t.count}


def propose(analysis: Analysis, mapper: FlowMapper, traffic: Traffic, dns: DnsTarget, excluded: tuple[str, ...] = ()) -> Proposal:
    """The least-privilege policies for the observed traffic (see the module docstring)."""
    needed = _needed(traffic)
    allows, notes, namespaces = _allows(analysis, mapper, needed, excluded, None, set(analysis.dns_classes))
    docs: dict[str, list[dict[str, Any]]] = {}
    for ns in sorted(namespaces):
        docs[ns] = [fixes.default_deny_policy(ns), fixes.allow_dns_policy(ns, dns)]
    for ns, items in allows.items():
        docs.setdefault(ns, []).extend(items)
    files = tuple(BundleFile(file_name(i, ns), "# netpol-audit flows --propose: least privilege for the traffic observed\n"
                             + fixes.dump(*items), tuple(items), ()) for i, (ns, items) in enumerate(sorted(docs.items()), 1))
    return Proposal(files, tuple(notes), tuple(sorted(needed, key=str)))


Key = tuple[End, End, int, str]


def keep_open(analysis: Analysis, mapper: FlowMapper, broken: dict[Key, tuple[Tally, frozenset[str]]],
              excluded: tuple[str, ...] = ()) -> tuple[dict[str, list[dict[str, Any]]], tuple[str, ...]]:
    """Allow policies (by namespace) that keep observed flows open on the sides that would deny
    them (``broken``: flow -> its tally and the directions, Ingress and/or Egress, that deny it).
    A policy of one direction added to a pod already isolated in that direction only adds what it
    names: it closes nothing. With the notes on flows no stable labels can name."""
    tallies = {key: tally for key, (tally, _) in broken.items()}
    allows, notes, _ = _allows(analysis, mapper, tallies, excluded, {key: sides for key, (_, sides) in broken.items()}, set())
    return allows, tuple(notes)


def _allows(analysis: Analysis, mapper: FlowMapper, needed: dict[Key, Tally], excluded: tuple[str, ...],
            sides: dict[Key, frozenset[str]] | None, dns_ids: set[int]
            ) -> tuple[dict[str, list[dict[str, Any]]], list[str], set[str]]:
    """Per namespace, one ingress policy per destination workload (a rule per source) and one
    egress policy per source workload (a rule per destination) for the flows ``needed``: on both
    sides, or on the ``sides`` named per flow. DNS to ``dns_ids`` is left to the allow-dns policy."""
    inbound: dict[int, dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    outbound: dict[int, dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    notes: list[str] = []
    namespaces: set[str] = set()
    for (src, dst, port, protocol), tally in sorted(needed.items(), key=lambda kv: str(kv[0])):
        for subject, other, side, table in ((dst, src, "src", inbound), (src, dst, "dst", outbound)):
            if sides is not None and ("Ingress" if table is inbound else "Egress") not in sides[(src, dst, port, protocol)]:
                continue
            if not isinstance(subject, int) or analysis.classes[subject].namespace in excluded:
                continue
            if table is outbound and other in dns_ids and port == 53:
                namespaces.add(analysis.classes[subject].namespace)
                continue  # allow-dns covers it
            dst_cls = analysis.classes[dst] if isinstance(dst, int) else None
            named = next((p.name for p in (dst_cls.ports if dst_cls else ()) if p.port == port and p.protocol == protocol and p.name), None)
            peers = _peers(analysis, mapper, analysis.classes[subject].namespace, other, tally, side)
            if not peers:
                notes.append(f"{mapper.describe(other, tally, side)}: no stable labels name it (an empty podSelector would admit its "
                             f"whole namespace); its flows with {analysis.classes[subject].describe()} are not proposed")
            for peer in peers:
                key = str(sorted(peer.items()))
                rules = table.setdefault(subject, {})
                entry = rules.setdefault(key, (peer, []))
                spec_port = {"protocol": protocol, "port": named or port}
                if spec_port not in entry[1]:
                    entry[1].append(spec_port)
            namespaces.add(analysis.classes[subject].namespace)
    docs: dict[str, list[dict[str, Any]]] = {}
    for table, direction in ((inbound, "Ingress"), (outbound, "Egress")):
        for cid in sorted(table):
            cls = analysis.classes[cid]
            selector = _workload_selector(analysis, cid)
            if selector is None:
                notes.append(f"{cls.describe()}: no stable labels select this workload alone; its observed {direction.lower()} "
                             "is not proposed")
                continue
            word = "from" if direction == "Ingress" else "to"
            spec_rules = [{word: [peer], "ports": sorted(ports, key=lambda p: (p["protocol"], str(p["port"])))}
                          for peer, ports in sorted(table[cid].values(), key=lambda e: str(sorted(e[0].items())))]
            name = fixes.object_name(cls.workloads[0].name, f"{word}-observed")
            docs.setdefault(cls.namespace, []).append(fixes.policy_doc(cls.namespace, name, {
                "podSelector": selector, "policyTypes": [direction], direction.lower(): spec_rules}))
    return docs, notes, namespaces


def _workload_selector(analysis: Analysis, cid: int) -> dict[str, Any] | None:
    """matchLabels of stable labels that select exactly the pod classes of this class's workloads."""
    cls = analysis.classes[cid]
    refs = set(cls.refs)
    same = frozenset(c for c in analysis.classes_by_ns.get(cls.namespace, ()) if refs.intersection(analysis.classes[c].refs))
    common = dict(fixes.stable_labels(cls.label_map))
    for other in same:
        labels = analysis.classes[other].label_map
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    return fixes.exact_selector(analysis, cls.namespace, common, same)


def _peers(analysis: Analysis, mapper: FlowMapper, own_ns: str, other: End, tally: Tally, side: str) -> list[dict[str, Any]]:
    """The peer entries that name ``other`` as narrowly as its labels (or addresses) allow."""
    if isinstance(other, int):
        cls = analysis.classes[other]
        labels = fixes.stable_labels(cls.label_map)
        if not labels:
            return []
        pods = {"matchLabels": labels}
        if cls.namespace == own_ns:
            return [{"podSelector": pods}]
        return [{"namespaceSelector": {"matchLabels": {NAME_LABEL: cls.namespace}}, "podSelector": pods}]
    seen = sorted(tally.seen(side), key=lambda ip: (ipaddress.ip_address(ip).version, int(ipaddress.ip_address(ip))))
    if seen and len(seen) < MAX_IPS:  # fewer than the tally keeps: these are all the addresses seen
        return [{"ipBlock": {"cidr": str(ipaddress.ip_network(ip))}} for ip in seen]
    seg = mapper.segments[other[1]]
    make = ipaddress.IPv4Address if seg.version == 4 else ipaddress.IPv6Address
    return [{"ipBlock": {"cidr": str(net)}} for net in ipaddress.summarize_address_range(make(seg.first), make(seg.last))]


@dataclass(frozen=True)
class ProposalCheck:
    """The engine's verdict on a proposal: observed flows it still denies, connections it opens."""

    still_denied: tuple[str, ...]
    opened: tuple[Connection, ...]

    @property
    def passed(self) -> bool:
        return not self.still_denied and not self.opened


def verify(inventory: Inventory, before: Analysis, mapper: FlowMapper, traffic: Traffic, proposal: Proposal) -> ProposalCheck:
    """Apply the proposal: every flow it was made for must be allowed, and nothing the current
    policies deny may become allowed."""
    applied = apply(inventory, list(proposal.files))
    after = Analysis(applied, before.dns, before.cni, before.assume_enforced)
    denied = []
    for key in proposal.flows:
        tally = traffic.pairs[key]
        for src in probes(mapper, key[0], tally, "src"):
            for dst in probes(mapper, key[1], tally, "dst"):
                if not after.allowed(src, dst, key[2], key[3]).allowed:
                    denied.append(f"{mapper.describe(key[0], tally, 'src')} -> {mapper.describe(key[1], tally, 'dst')} {key[3]}/{key[2]}")
    return ProposalCheck(tuple(dict.fromkeys(denied)), tuple(widened(before, after)))


def probes(mapper: FlowMapper, end: End, tally: Tally, side: str) -> list[Endpoint]:
    """Where an end is evaluated: the class; for outside ends, each address seen (the proposal
    names those), else the segment's first address."""
    if isinstance(end, int):
        return [end]
    seen = tally.seen(side)
    return [ipaddress.ip_address(ip) for ip in sorted(seen)] if seen else [mapper.endpoint(end)]


def with_candidate(inventory: Inventory, candidate: Inventory) -> Inventory:
    """``inventory`` with a candidate folder applied as `kubectl apply` would: its policies added,
    a policy of the same namespace and name replaced."""
    policies = {p.identity: p for p in inventory.policies}
    policies.update({p.identity: p for p in candidate.policies})
    return dataclasses.replace(inventory, policies=tuple(policies[k] for k in sorted(policies)))
