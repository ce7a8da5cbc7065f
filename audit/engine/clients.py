"""Named clients: the workloads whose own egress rules name a destination, by policy of any kind.

When a data port is open to whole namespaces, the fix keeps it open to the clients someone meant:
the sources whose egress rules select the destination by a pod-selecting peer that reaches into
other namespaces. Built once per analysis, per peer set (the analysis shares one set among equal
peers), then answered per destination.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from audit.engine.compiled import CompiledRule
from audit.engine.verdict import port_in

if TYPE_CHECKING:
    from audit.engine.analysis import Analysis


@dataclass
class Clients:
    """Egress rules by the peer set they name, and per pod class the peer sets that hold it."""

    analysis: Analysis
    rules: dict[int, list[tuple[tuple[int, ...], CompiledRule]]] = field(default_factory=dict)
    holders: dict[int, list[int]] = field(default_factory=dict)
    _memo: dict[tuple[object, ...], list[tuple[str, tuple[int, ...]]]] = field(default_factory=dict)
    _spread: dict[tuple[object, ...], tuple[list[int], dict[str, set[int]]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        analysis = self.analysis
        sets: dict[int, frozenset[int]] = {}
        for policy in analysis.policies:
            sources = tuple(s for s in analysis.selected(policy) if analysis.classes[s].governed)
            if not sources:
                continue
            for rule in policy.rules_in("Egress"):
                if rule.action != "Allow":
                    continue
                for peer in rule.peers:
                    sel = peer.pods
                    if sel is None or sel.namespace is not None or sel.every_pod or peer.blocks:
                        continue  # only pod-selecting peers that reach into other namespaces name a client's destination
                    classes = analysis.peer_classes(peer)
                    if classes:
                        sets[id(classes)] = classes
                        self.rules.setdefault(id(classes), []).append((sources, rule))
        for key, classes in sets.items():
            for target in classes:
                self.holders.setdefault(target, []).append(key)

    def of(self, cid: int, ports: frozenset[int]) -> list[int]:
        """Workloads of other namespaces whose egress rules name class ``cid`` on one of ``ports`` (TCP)."""
        analysis = self.analysis
        dst = analysis.classes[cid]
        held_by = tuple(self.holders.get(cid, ()))
        # Destinations in one peer set with the same ports share the clients, but for their own namespace's.
        key = (held_by, ports, dst.ports)
        clients = self._memo.get(key)
        if clients is None:
            clients = []
            for set_key in held_by:
                for sources, rule in self.rules[set_key]:
                    if any(port_in(analysis.rule_ports(rule, dst.ports), p, "TCP") for p in ports):
                        clients.append((analysis.classes[sources[0]].namespace, sources))
            self._memo[key] = clients
        spread = self._spread.get(key)
        if spread is None:
            # Every client class, sorted, and per namespace the classes only its entries hold: a
            # destination's answer is every client but those of its own namespace's entries.
            holders: dict[int, set[str]] = {}
            for namespace, sources in clients:
                for cid in sources:
                    holders.setdefault(cid, set()).add(namespace)
            only: dict[str, set[int]] = {}
            for cid, namespaces in holders.items():
                if len(namespaces) == 1:
                    only.setdefault(next(iter(namespaces)), set()).add(cid)
            spread = self._spread[key] = (sorted(holders), only)
        everyone, only = spread
        mine = only.get(dst.namespace)
        return [cid for cid in everyone if cid not in mine] if mine else list(everyone)
