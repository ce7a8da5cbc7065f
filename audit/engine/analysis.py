"""The pure analysis engine: an Inventory compiled for selection, isolation and reachability. No I/O.

Pods are grouped into equivalence classes (``audit.engine.classes``): every verdict is the same
for all pods of a class, so selection and reachability are computed per class with set
operations, never pod by pod. Every policy kind takes its place in one stack
(``audit.engine.stack``); verdicts for one port (``audit.engine.verdict``) and coverage
(``audit.engine.coverage``) are read from it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Literal

from audit.engine.addresses import IPBlock
from audit.engine.classes import DnsTarget, PodClass, ip_value, parse_ip
from audit.engine.cni import CniReport
from audit.engine.coverage import DirectionCoverage, NamespaceCoverage, governed_classes, namespace_coverage, policies_in
from audit.engine.direction import DIRECTIONS, Direction
from audit.engine.kinds import Compiled, PolicyKind, kinds
from audit.engine.kinds.networkpolicy import ParsedPolicy, Peer, Policy, Rule, parse_policy
from audit.engine.kinds.networkpolicy import StackPolicy as NetworkPolicyLayer
from audit.engine.ports import ALL, NONE, PortSet
from audit.engine.selectors import Selector, SelectorIndex
from audit.engine.stack import TIERS, Endpoint, Outcome, StackPolicy, Tier, closes, evaluate
from audit.engine.verdict import SideVerdict, Verdict, port_in, side_verdict
from audit.gcpause import gc_paused
from audit.inventory import NAMESPACE_NAME_LABEL, ContainerPort, Inventory, Labels, Namespace, Workload

__all__ = ["Analysis", "DirectionCoverage", "DnsTarget", "Endpoint", "NamespaceCoverage", "PodClass", "SideVerdict", "Verdict",
           "ip_value", "parse_ip", "port_in"]


INGRESS_NAMESPACE = "ingress-controller-ns"
"""Where the virtual ingress-controller pod lives (np-guard's placeholder namespace)."""


_RANK = {"no": 0, "conditional": 1, "yes": 2}


def _credit(kind: PolicyKind, cni: CniReport | None, assume_enforced: bool) -> tuple[Literal["yes", "assumed", "no"], str]:
    """Whether a kind's policies take part, and why: only where the detected dataplane enforces it."""
    if cni is None or not cni.components:
        return "assumed", "the CNI was not identified: these results assume it enforces them"
    best = max((kind.enforced_by.get(c.name, "no") for c in cni.components), key=_RANK.__getitem__)
    names = ", ".join(sorted({c.name for c in cni.components}))
    if best == "yes":
        return "yes", ""
    if best == "conditional":
        return "assumed", f"{names} enforces them only in some versions or settings: these results assume it does"
    if assume_enforced:
        return "assumed", f"{names} does not enforce them; evaluated as if enforced (--assume-enforced)"
    return "no", f"{names} does not enforce them: they are present but have no effect"


class Analysis:
    """Compiled view of an Inventory that answers selection, isolation and reachability.

    ``cni`` decides which policy kinds take part: a kind the detected dataplane does not
    enforce is listed in ``unenforced`` and left out of every answer, unless
    ``assume_enforced`` (for planning). With no CNI report, or an unknown CNI, every kind
    takes part and ``assumed`` names the kinds whose enforcement is assumed.
    """

    @gc_paused()
    def __init__(self, inventory: Inventory, dns: DnsTarget = DnsTarget(), cni: CniReport | None = None,
                 assume_enforced: bool = False):
        self.inventory = inventory
        self.dns = dns
        self.cni = cni
        self.assume_enforced = assume_enforced
        self.namespaces: dict[str, Namespace] = {ns.name: ns for ns in inventory.namespaces}
        self.parsed: tuple[ParsedPolicy, ...] = tuple(parse_policy(p) for p in inventory.policies)
        self.policies: tuple[Policy, ...] = tuple(p.policy for p in self.parsed if p.policy is not None)
        self.invalid_by_ns: dict[str, list[ParsedPolicy]] = {}
        for parsed in self.parsed:
            if parsed.policy is None:
                self.invalid_by_ns.setdefault(parsed.obj.namespace, []).append(parsed)
        self.policies_by_ns: dict[str, list[Policy]] = {}
        for policy in self.policies:
            self.policies_by_ns.setdefault(policy.namespace, []).append(policy)
        self._np_layers: dict[str, NetworkPolicyLayer] = {p.key: NetworkPolicyLayer(p) for p in self.policies}

        # Every other kind, compiled into stack policies; credited only where the dataplane enforces it.
        self.kinds: dict[str, Compiled] = {}
        self.unenforced: dict[str, str] = {}
        """Kind name -> why its policies are left out (present but not enforced)."""
        self.assumed: dict[str, str] = {}
        """Kind name -> why its enforcement is assumed (unknown or version-dependent dataplane)."""
        credited: list[StackPolicy] = []
        for kind in kinds():
            objs = [e for e in inventory.extended if kind.reads(e)]
            if not objs:
                continue
            compiled = self.kinds[kind.name] = kind.compile(objs)
            verdict, why = _credit(kind, cni, assume_enforced)
            if verdict == "no":
                self.unenforced[kind.name] = why
                continue
            if verdict == "assumed":
                self.assumed[kind.name] = why
            credited.extend(compiled.policies)
        self.extended: tuple[StackPolicy, ...] = tuple(credited)
        self._stack_memo: dict[tuple[int, Direction], dict[Tier, tuple[StackPolicy, ...]]] = {}
        self._signatures: dict[int, tuple[int, ...] | None] = {}
        self._ns_labels: dict[str, dict[str, str]] = {}

        self.classes: list[PodClass] = []
        self.classes_by_ns: dict[str, list[int]] = {}
        self.dns_target: DnsTarget = dns
        """Where the DNS pods were found (the Service's selector when it selects them)."""
        self.dns_note = ""
        """How the DNS pods were found, for the report."""
        self._build_classes(inventory.workloads)
        self.dns_classes: tuple[int, ...] = self._dns_classes()
        self.ingress_controller: int | None = self._ingress_controller() if inventory.ingresses else None

        ns_names = sorted(self.namespaces)
        self._ns_index = SelectorIndex([dict(self.namespaces[n].labels) for n in ns_names])
        self._ns_names = ns_names
        self._class_index = SelectorIndex([c.label_map for c in self.classes])
        self._peer_memo: dict[tuple[str | None, Peer], frozenset[int]] = {}
        self._peer_fast: dict[tuple[str, int], frozenset[int]] = {}
        self._ns_names_memo: dict[Selector, list[str]] = {}
        self._egress_memo: dict[tuple[object, ...], SideVerdict] = {}
        self.memo: dict[tuple[object, ...], object] = {}  # for derived views (connectivity), keyed by object ids that live as long as this
        self._ip_index: dict[int, list[tuple[int, int]]] | None = None

        self.selected: dict[str, frozenset[int]] = {}
        self._isolating: dict[Direction, list[list[Policy]]] = {d: [[] for _ in self.classes] for d in DIRECTIONS}
        for policy in self.policies:
            chosen = self.select_in_namespace(policy.namespace, policy.pod_selector)
            self.selected[policy.key] = chosen
            for direction in policy.types:
                lists = self._isolating[direction]
                for cid in chosen:
                    if self.classes[cid].governed or self.classes[cid].virtual:
                        lists[cid].append(policy)
        self._extended_by_class: dict[int, tuple[StackPolicy, ...]] = {}
        if self.extended:
            for cls in self.classes:
                if cls.governed or cls.virtual:
                    mine = tuple(p for p in self.extended if p.selects(self, cls.id))
                    if mine:
                        self._extended_by_class[cls.id] = mine
        self.coverage: dict[str, NamespaceCoverage] = {ns: namespace_coverage(self, ns) for ns in ns_names}

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """A namespace's labels as a dict (empty for one the inventory does not know)."""
        hit = self._ns_labels.get(namespace)
        if hit is None:
            ns = self.namespaces.get(namespace)
            hit = self._ns_labels[namespace] = dict(ns.labels) if ns is not None else {}
        return hit

    @property
    def all_policies(self) -> Iterable[StackPolicy]:
        """Every policy that takes part, of every kind, NetworkPolicy first."""
        yield from self._np_layers.values()
        yield from self.extended

    @cached_property
    def policy_notes(self) -> dict[str, str]:
        """Each policy's note (what kind and tier it is) by key; built once, read per namespace."""
        return {p.key: p.note for p in self.all_policies}

    # -- construction -------------------------------------------------------------------

    def _build_classes(self, workloads: Sequence[Workload]) -> None:
        groups: dict[tuple[str, Labels, tuple[ContainerPort, ...], bool], list[Workload]] = {}
        for w in workloads:
            groups.setdefault((w.namespace, w.labels, w.ports, w.host_network), []).append(w)
        for (ns, labels, ports, host_network), members in sorted(groups.items(), key=lambda kv: kv[0][:2]):
            self._add_class(ns, labels, ports, host_network, sum(w.pods for w in members), tuple(members))

    def _add_class(self, ns: str, labels: Labels, ports: tuple[ContainerPort, ...], host_network: bool,
                   pods: int, workloads: tuple[Workload, ...], virtual: bool = False) -> int:
        cid = len(self.classes)
        self.classes.append(PodClass(cid, ns, labels, dict(labels), ports, host_network, pods, workloads, virtual))
        self.classes_by_ns.setdefault(ns, []).append(cid)
        return cid

    def _dns_classes(self) -> tuple[int, ...]:
        """The cluster DNS pods: those the DNS Service selects, else those with the DNS labels,
        else a virtual one where DNS usually is. ``dns_target`` and ``dns_note`` say which."""
        dns = self.dns
        service = next((s for s in self.inventory.services if s.namespace == dns.namespace and s.name == dns.service
                        and s.selector), None)
        candidates = ([dict(service.selector or ())] if service else []) + [dict(dns.labels)]
        for wanted in candidates:
            real = [cid for cid in self.classes_by_ns.get(dns.namespace, [])
                    if not self.classes[cid].host_network and all(self.classes[cid].label_map.get(k) == v for k, v in wanted.items())]
            if real:
                self.dns_target = DnsTarget(dns.namespace, tuple(sorted(wanted.items())), dns.service)
                self.dns_note = (f"the pods the {dns.namespace}/{dns.service} Service selects" if service and wanted == candidates[0]
                                 else f"the pods labelled {self.dns_target.describe()}")
                return tuple(real)
        self.dns_target = DnsTarget(dns.namespace, tuple(sorted(candidates[0].items())), dns.service)
        self.dns_note = (f"no DNS pods in the input (no {dns.namespace}/{dns.service} Service selecting pods, no pod labelled "
                         f"{dns.describe()}): DNS is judged against an assumed pod {self.dns_target.describe()}")
        if self.dns.namespace not in self.namespaces:
            self.namespaces[self.dns.namespace] = Namespace(
                self.dns.namespace, ((NAMESPACE_NAME_LABEL, self.dns.namespace),), declared=False
            )
        ports = (ContainerPort(53, "UDP", "dns"), ContainerPort(53, "TCP", "dns-tcp"))
        return (self._add_class(self.dns.namespace, self.dns_target.labels, ports, False, 0, (), virtual=True),)

    def _ingress_controller(self) -> int:
        """A virtual pod that stands for the cluster's ingress controller, as np-guard models it:
        no labels, in a namespace of its own (see audit.engine.ingress)."""
        if INGRESS_NAMESPACE not in self.namespaces:
            self.namespaces[INGRESS_NAMESPACE] = Namespace(
                INGRESS_NAMESPACE, ((NAMESPACE_NAME_LABEL, INGRESS_NAMESPACE),), declared=False
            )
        return self._add_class(INGRESS_NAMESPACE, (), (), False, 0, (), virtual=True)

    def select_in_namespace(self, ns: str, selector: Selector) -> frozenset[int]:
        """Classes of namespace ``ns`` that ``selector`` matches.

        One cluster-wide index answers each distinct selector once; a namespace's few classes
        are then filtered against that answer (an index per namespace would cost more to build).
        """
        ids = self.classes_by_ns.get(ns, ())
        if selector.empty:
            return frozenset(ids)
        matched = self._class_index.select(selector)
        return frozenset(cid for cid in ids if cid in matched)

    # -- selection ----------------------------------------------------------------------

    def namespaces_matching(self, peer: Peer) -> list[str]:
        """Names of the namespaces a peer's namespaceSelector matches, sorted."""
        assert peer.namespaces is not None
        hit = self._ns_names_memo.get(peer.namespaces)
        if hit is None:
            hit = [self._ns_names[i] for i in sorted(self._ns_index.select(peer.namespaces))]
            self._ns_names_memo[peer.namespaces] = hit
        return hit

    def peer_classes(self, policy_namespace: str, peer: Peer) -> frozenset[int]:
        """Pod classes a peer matches (hostNetwork pods never match a pod peer)."""
        fast = (policy_namespace, id(peer))  # peers live as long as the analysis; hashing one is slow
        hit = self._peer_fast.get(fast)
        if hit is not None:
            return hit
        key = (None if peer.namespaces is not None or peer.ip_block is not None else policy_namespace, peer)
        hit = self._peer_memo.get(key)
        if hit is not None:
            self._peer_fast[fast] = hit
            return hit
        if peer.ip_block is not None:
            found = self._classes_in_block(peer.ip_block)
        elif peer.namespaces is None:
            found = self.select_in_namespace(policy_namespace, peer.pods)  # type: ignore[arg-type]
        else:
            ns_ids = self._ns_index.select(peer.namespaces)
            if peer.pods is None or peer.pods.empty:
                found = frozenset(cid for i in ns_ids for cid in self.classes_by_ns.get(self._ns_names[i], ()))
            else:
                allowed_ns = {self._ns_names[i] for i in ns_ids}
                found = frozenset(cid for cid in self._class_index.select(peer.pods) if self.classes[cid].namespace in allowed_ns)
        found = frozenset(cid for cid in found if not self.classes[cid].host_network)
        self._peer_memo[key] = self._peer_fast[fast] = found
        return found

    def _classes_in_block(self, block: IPBlock) -> frozenset[int]:
        """Classes with a pod IP in the block: a bisect over the sorted pod IPs, not a scan."""
        if self._ip_index is None:
            index: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
            for c in self.classes:
                if c.governed:
                    for w in c.workloads:
                        for raw in w.ips:
                            parsed = ip_value(raw)
                            if parsed is not None:
                                index[parsed[0]].append((parsed[1], c.id))
            for entries in index.values():
                entries.sort()
            self._ip_index = index
        entries = self._ip_index[block.cidr.version]
        first, last = int(block.cidr.network_address), int(block.cidr.broadcast_address)
        lo = bisect.bisect_left(entries, (first, -1))
        hi = bisect.bisect_right(entries, (last, len(self.classes)))
        excepts = [(int(ex.network_address), int(ex.broadcast_address)) for ex in block.excepts]
        return frozenset(cid for value, cid in entries[lo:hi] if not any(a <= value <= b for a, b in excepts))

    def isolating(self, cid: int, direction: Direction) -> list[Policy]:
        """The NetworkPolicies that isolate class ``cid`` in ``direction`` (empty: none)."""
        return self._isolating[direction][cid]

    def peer_admits(self, policy: Policy, rule: Rule, other: Endpoint) -> bool:
        """Whether a rule of ``policy`` names ``other`` (a pod class or an address) among its peers."""
        if rule.all_peers:
            return True
        for peer in rule.peers:
            if isinstance(other, int):
                if other in self.peer_classes(policy.namespace, peer):
                    return True
            elif peer.ip_block is not None and peer.ip_block.contains(other):
                return True
        return False

    # -- the stack ----------------------------------------------------------------------

    def stack_for(self, cid: int, direction: Direction) -> dict[Tier, tuple[StackPolicy, ...]]:
        """The policies of every kind that act on class ``cid`` in ``direction``, per tier, in order."""
        key = (cid, direction)
        hit = self._stack_memo.get(key)
        if hit is None:
            found: dict[Tier, list[StackPolicy]] = {}
            for policy in self._isolating[direction][cid]:
                found.setdefault("namespace", []).append(self._np_layers[policy.key])
            for ext in self._extended_by_class.get(cid, ()):
                if ext.rules(direction) or ext.isolates(direction):
                    found.setdefault(ext.tier, []).append(ext)
            hit = self._stack_memo[key] = {t: tuple(sorted(ps, key=lambda p: p.order)) for t, ps in found.items()}
        return hit

    def only_networkpolicy(self, cid: int) -> bool:
        """No policy of another kind selects class ``cid``: NetworkPolicy alone decides it."""
        return cid not in self._extended_by_class

    def is_isolated(self, cid: int, direction: Direction) -> bool:
        """Whether some policy of any kind isolates class ``cid`` in ``direction``: the namespace
        tier closes for it, or an admin or baseline policy denies it every peer on every port."""
        if self._isolating[direction][cid]:
            return True
        return any(closes(p, direction) for policies in self.stack_for(cid, direction).values() for p in policies)

    def egress_signature(self, cid: int) -> tuple[int, ...] | None:
        """What a class's egress verdicts depend on: the policies of every tier that act on it.

        Classes with the same signature get the same egress verdict to any destination, so
        sources in one namespace share one verdict. None when a rule's match also depends on
        the source itself (Calico rules that narrow their own side, sameLabels peers).
        """
        if cid in self._signatures:
            return self._signatures[cid]
        stack = self.stack_for(cid, "Egress")
        if any(r.subject_dependent for ps in stack.values() for p in ps for r in p.rules("Egress")):
            signature = None
        else:
            signature = tuple(id(p) for t in TIERS for p in stack.get(t, ()))
        self._signatures[cid] = signature
        return signature

    def side_ports(self, subject: int, direction: Direction, other: Endpoint, dst_ports: tuple[ContainerPort, ...] | None) -> PortSet:
        """What one side allows between ``subject`` and ``other``, on every port: the stack's walk.

        When NetworkPolicy alone acts on the subject the walk is the union of the rules that
        name the peer (all of them Allow): computed directly, it is the same answer faster.
        """
        cls = self.classes[subject]
        if not cls.governed and not cls.virtual:
            return ALL
        if subject not in self._extended_by_class:
            policies = self._isolating[direction][subject]
            if not policies:
                return ALL
            allowed = NONE
            for policy in policies:
                for rule in self._np_layers[policy.key].rules(direction):
                    if self.peer_admits(policy, rule.rule, other):
                        allowed = allowed | rule.ports(dst_ports)
            return allowed
        return evaluate(self, subject, direction, other, dst_ports).allowed

    def outcome(self, subject: int, direction: Direction, other: Endpoint, dst_ports: tuple[ContainerPort, ...] | None) -> Outcome:
        """The stack's full evaluation of one side (every port, with what decided it)."""
        return evaluate(self, subject, direction, other, dst_ports)

    def _side(self, direction: Direction, subject: Endpoint, other: Endpoint, port: int, protocol: str,
              dst_ports: tuple[ContainerPort, ...] | None) -> SideVerdict:
        return side_verdict(self, direction, subject, other, port, protocol, dst_ports)

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> Verdict:
        """Whether ``src`` may open a connection to ``dst`` on ``port``/``protocol``.

        Allowed when the source's egress allows it (or the source is not egress-isolated)
        AND the destination's ingress allows it (or it is not ingress-isolated).
        """
        dst_ports = self.classes[dst].ports if isinstance(dst, int) else None
        egress = self._side("Egress", src, dst, port, protocol, dst_ports)
        ingress = self._side("Ingress", dst, src, port, protocol, dst_ports)
        return Verdict(egress.allowed and ingress.allowed, egress, ingress)

    # -- coverage -----------------------------------------------------------------------

    # -- coverage (see audit.engine.coverage) ----------------------------------------------

    def governed_classes(self, ns: str) -> list[PodClass]:
        return governed_classes(self, ns)

    def policies_in(self, ns: str) -> tuple[str, ...]:
        """Keys of the policies of every kind that select a pod of ``ns`` or all of it."""
        return policies_in(self, ns)

    # -- lookups ------------------------------------------------------------------------

    def find_workload(self, namespace: str, name: str) -> list[int]:
        """Class ids of the pods of workload ``namespace/name`` (any kind; a ReplicaSet's name as
        connectivity prints it works too)."""
        return [
            cid for cid in self.classes_by_ns.get(namespace, [])
            if any(w.name == name or (w.controller is not None and w.controller.split("/", 1)[1] == name)
                   for w in self.classes[cid].workloads)
        ]

    def real_classes(self) -> Iterable[PodClass]:
        return (c for c in self.classes if not c.virtual)
