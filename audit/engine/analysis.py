"""The pure analysis engine: selection, isolation, coverage and reachability. No I/O.

Pods are grouped into equivalence classes (namespace + labels + named ports + hostNetwork):
every NetworkPolicy verdict is the same for all pods of a class, so selection and
reachability are computed per class with set operations, never pod by pod.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence, Union

from audit.engine.kinds.admin import ANP, BANP, AdminPeer, AdminPolicy, ParsedAdmin, network_contains, parse_admin
from audit.engine.kinds.cilium import CCNP, CNP, NAMESPACE_KEY, CiliumPeer, CiliumPolicy, CiliumRule, cilium_labels, parse_cilium
from audit.engine.kinds.cilium import peer_matches as cilium_peer_matches
from audit.engine.kinds.calico import CalicoPolicy, CalicoRule, calico_labels, parse_calico
from audit.engine.kinds.calico import entity_matches as calico_entity_matches
from audit.gcpause import gc_paused
from audit.inventory import NAMESPACE_NAME_LABEL, ContainerPort, ExtendedPolicy, Inventory, Labels, Namespace, Workload
from audit.engine.kinds.networkpolicy import DIRECTIONS, Direction, IPAddress, IPBlock, ParsedPolicy, Peer, Policy, Rule, parse_policy
from audit.engine.ports import PortSet
from audit.engine.selectors import FieldError, Selector, SelectorIndex


INGRESS_NAMESPACE = "ingress-controller-ns"
"""Where the virtual ingress-controller pod lives (np-guard's placeholder namespace)."""


def ip_value(raw: str) -> tuple[int, int] | None:
    """(version, integer) of an IP address, or None; through inet_pton, no address objects."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, raw), "big")
    except OSError:
        pass
    try:
        return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, raw), "big")
    except OSError:
        return None


def parse_ip(raw: str) -> IPAddress | None:
    """An IP address, or None; through inet_pton, about 20x faster than ipaddress's parser."""
    parsed = ip_value(raw)
    if parsed is None:
        return None
    return ipaddress.IPv4Address(parsed[1]) if parsed[0] == 4 else ipaddress.IPv6Address(parsed[1])


@dataclass(eq=False)
class PodClass:
    """Pods that every NetworkPolicy treats alike."""

    id: int
    namespace: str
    labels: Labels
    label_map: Mapping[str, str]
    ports: tuple[ContainerPort, ...]
    host_network: bool
    pods: int
    workloads: tuple[Workload, ...]
    virtual: bool = False

    @functools.cached_property
    def ips(self) -> tuple[IPAddress, ...]:
        """The pods' IPs (live clusters), parsed on first use: only ipBlock peers need them."""
        parsed = (parse_ip(raw) for w in self.workloads for raw in w.ips)
        return tuple(ip for ip in parsed if ip is not None)

    @property
    def governed(self) -> bool:
        """Real pods that NetworkPolicy can govern (hostNetwork pods share the node's network)."""
        return not self.host_network and not self.virtual

    def describe(self) -> str:
        names = ", ".join(w.ref for w in self.workloads[:3])
        more = f" (+{len(self.workloads) - 3} more)" if len(self.workloads) > 3 else ""
        return names + more


@dataclass(frozen=True)
class DnsTarget:
    """Where the cluster DNS pods live, for the DNS check and the virtual DNS class."""

    namespace: str = "kube-system"
    labels: Labels = (("k8s-app", "kube-dns"),)


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A rule of a policy, as an explanation names it."""

    policy: str
    direction: Direction
    index: int

    def __str__(self) -> str:
        return f"{self.policy} {self.direction.lower()}[{self.index}]"


@dataclass(frozen=True)
class SideVerdict:
    """One side of a connection: the source's egress or the destination's ingress."""

    direction: Direction
    isolated: bool
    policies: tuple[str, ...]
    allowed_by: tuple[RuleRef, ...]
    governed: bool = True
    rejected_by: tuple[tuple[RuleRef, str], ...] = ()
    """When denied: each rule in force on this side, and why it did not match."""
    admin: tuple[str, str] | None = None
    """(action, rule) of the AdminNetworkPolicy rule that matched first, if any."""
    baseline: tuple[str, str] | None = None
    """(action, rule) of the BaselineAdminNetworkPolicy rule that decided, when NetworkPolicy did not isolate."""
    cilium_deny: str | None = None
    """The Cilium deny rule that matched: it wins over every NetworkPolicy and Cilium allow."""
    calico: tuple[str, str] | None = None
    """(action, rule) that decided in Calico's ordered walk (NetworkPolicy runs there at order 1000)."""

    @property
    def allowed(self) -> bool:
        if self.admin is not None and self.admin[0] != "Pass":
            return self.admin[0] == "Allow"
        if self.cilium_deny is not None:
            return False
        if self.calico is not None:
            return self.calico[0] in ("Allow", "Pass")
        if self.isolated:
            return bool(self.allowed_by)
        return self.baseline is None or self.baseline[0] == "Allow"

    def explain(self) -> str:
        side = "egress of the source" if self.direction == "Egress" else "ingress of the destination"
        if not self.governed:
            return f"{side}: not governed by NetworkPolicy (hostNetwork or outside the cluster)"
        if self.admin is not None and self.admin[0] != "Pass":
            return f"{side}: {'allowed' if self.admin[0] == 'Allow' else 'denied'} by {self.admin[1]} (AdminNetworkPolicy, before any NetworkPolicy)"
        passed = f"passed on by {self.admin[1]}; " if self.admin is not None else ""
        if self.cilium_deny is not None:
            return f"{side}: {passed}denied by {self.cilium_deny} (Cilium deny rules win over allows)"
        if self.calico is not None:
            word = {"Allow": "allowed by", "Deny": "denied by", "Pass": "passed by"}.get(self.calico[0], "decided by")
            tail = " (the namespace default allows)" if self.calico[0] == "Pass" else ""
            return f"{side}: {passed}{word} {self.calico[1]} (Calico order){tail}"
        if not self.isolated and self.baseline is not None:
            return (f"{side}: {passed}not isolated by NetworkPolicy; {'allowed' if self.baseline[0] == 'Allow' else 'denied'} "
                    f"by {self.baseline[1]} (BaselineAdminNetworkPolicy)")
        if passed and self.isolated:
            side = f"{side}: {passed.rstrip('; ')}, then"
            return f"{side} isolated by {', '.join(self.policies)}; " + (
                f"allowed by {', '.join(map(str, self.allowed_by))}" if self.allowed_by else "no rule allows it: denied")
        if not self.isolated:
            return f"{side}: {passed}not isolated (no policy with {self.direction} selects it): allowed"
        if self.allowed_by:
            return f"{side}: isolated by {', '.join(self.policies)}; allowed by {', '.join(map(str, self.allowed_by))}"
        return f"{side}: isolated by {', '.join(self.policies)}; no rule allows it: denied"

    def explain_lines(self) -> list[str]:
        """The explanation, then (when denied) one line per rule in force and why it did not match."""
        lines = [self.explain()]
        decided_elsewhere = ((self.admin is not None and self.admin[0] != "Pass") or not self.isolated
                             or self.cilium_deny is not None or self.calico is not None)
        if not decided_elsewhere and not self.allowed_by:
            lines += [f"  {ref}: {reason}" for ref, reason in self.rejected_by] or ["  (its policies have no rules in this direction)"]
        return lines


@dataclass(frozen=True)
class Verdict:
    """Whether a connection is allowed, and the rules on each side that decided it."""

    allowed: bool
    egress: SideVerdict
    ingress: SideVerdict

    def explain(self) -> list[str]:
        return [self.egress.explain(), self.ingress.explain()]

    def explain_lines(self) -> list[str]:
        return self.egress.explain_lines() + self.ingress.explain_lines()


@dataclass(frozen=True)
class DirectionCoverage:
    """Coverage of one namespace in one direction, judged by effect."""

    pods: int
    isolated_pods: int
    default_deny: bool
    baseline: tuple[str, ...]
    opened_by: tuple[RuleRef, ...]
    reason: str


@dataclass(frozen=True)
class NamespaceCoverage:
    name: str
    policies: tuple[str, ...]
    workloads: int
    pods: int
    host_network_pods: int
    ingress: DirectionCoverage
    egress: DirectionCoverage

    def direction(self, direction: Direction) -> DirectionCoverage:
        return self.ingress if direction == "Ingress" else self.egress


Endpoint = Union[int, IPAddress]
"""A pod class id, or an IP address outside the cluster's pods."""


def _protocol_ok(rule_protocol: str | None, protocol: str) -> bool:
    numbers = {"6": "TCP", "17": "UDP", "132": "SCTP"}
    return rule_protocol is None or numbers.get(rule_protocol, rule_protocol) == protocol


def port_in(ports: PortSet, port: int, protocol: str) -> bool:
    return any(lo <= port <= hi for lo, hi in ports.as_dict().get(protocol, ()))


def rule_opens_everything(rule: Rule) -> bool:
    """All ports from (to) every peer, or from (to) every pod of the cluster."""
    return rule.all_ports and (rule.all_peers or any(p.all_cluster_pods for p in rule.peers))


class Analysis:
    """Compiled view of an Inventory that answers selection, isolation and reachability."""

    @gc_paused()
    def __init__(self, inventory: Inventory, dns: DnsTarget = DnsTarget()):
        self.inventory = inventory
        self.dns = dns
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

        self.admin_parsed: tuple[ParsedAdmin, ...] = tuple(parse_admin(e) for e in inventory.extended if e.kind in (ANP, BANP))
        valid = [p.policy for p in self.admin_parsed if p.policy is not None]
        self.anps: tuple[AdminPolicy, ...] = tuple(sorted((p for p in valid if p.kind == ANP), key=lambda p: (p.priority, p.name)))
        self.banps: tuple[AdminPolicy, ...] = tuple(sorted((p for p in valid if p.kind == BANP), key=lambda p: p.name))
        self._admin_memo: dict[int, tuple[tuple[AdminPolicy, ...], tuple[AdminPolicy, ...]]] = {}
        self.cilium_parsed: list[tuple[ExtendedPolicy, list[CiliumPolicy], list[FieldError]]] = [
            (e, *parse_cilium(e)) for e in inventory.extended if e.kind in (CNP, CCNP)]
        self.cilium_policies: tuple[CiliumPolicy, ...] = tuple(p for _, ps, _ in self.cilium_parsed for p in ps)
        self._cilium_memo: dict[int, tuple[CiliumPolicy, ...]] = {}
        self._cilium_labels: dict[int, dict[str, str]] = {}
        self.calico_parsed: list[tuple[ExtendedPolicy, CalicoPolicy | None, list[FieldError]]] = [
            (e, *parse_calico(e)) for e in inventory.extended if e.kind in ("NetworkPolicy", "GlobalNetworkPolicy")]
        self.calico_policies: tuple[CalicoPolicy, ...] = tuple(p for _, p, _ in self.calico_parsed if p is not None)
        self._calico_memo: dict[int, tuple[CalicoPolicy, ...]] = {}

        self.classes: list[PodClass] = []
        self.classes_by_ns: dict[str, list[int]] = {}
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
        self._egress_memo: dict[tuple, SideVerdict] = {}
        self.memo: dict[tuple, object] = {}  # for derived views (connectivity), keyed by object ids that live as long as this
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
        self.coverage: dict[str, NamespaceCoverage] = {ns: self._coverage(ns) for ns in ns_names}

    # -- construction -------------------------------------------------------------------

    def _build_classes(self, workloads: Sequence[Workload]) -> None:
        groups: dict[tuple, list[Workload]] = {}
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
        """Real DNS pods when the input has them; otherwise a virtual one where DNS usually is."""
        wanted = dict(self.dns.labels)
        real = [
            cid for cid in self.classes_by_ns.get(self.dns.namespace, [])
            if all(self.classes[cid].label_map.get(k) == v for k, v in wanted.items())
        ]
        if real:
            return tuple(real)
        if self.dns.namespace not in self.namespaces:
            self.namespaces[self.dns.namespace] = Namespace(
                self.dns.namespace, ((NAMESPACE_NAME_LABEL, self.dns.namespace),), declared=False
            )
        ports = (ContainerPort(53, "UDP", "dns"), ContainerPort(53, "TCP", "dns-tcp"))
        return (self._add_class(self.dns.namespace, self.dns.labels, ports, False, 0, (), virtual=True),)

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

    def is_isolated(self, cid: int, direction: Direction) -> bool:
        """Isolated by a NetworkPolicy, or enforced by a Cilium or Calico policy, in ``direction``."""
        return (bool(self._isolating[direction][cid]) or any(direction in p.enforces for p in self.cilium_for(cid))
                or any(direction in p.types for p in self.calico_for(cid)))

    def calico_view(self, other: Endpoint) -> tuple[dict[str, str] | None, str | None, dict[str, str] | None, tuple[IPAddress, ...]]:
        """(Calico labels, namespace, namespace labels, IPs) of an endpoint, for rule matching."""
        if isinstance(other, int):
            cls = self.classes[other]
            ns_labels = dict(self.namespaces[cls.namespace].labels)
            return calico_labels(cls.label_map, cls.namespace, ns_labels), cls.namespace, ns_labels, cls.ips
        return None, None, None, (other,)

    def calico_for(self, cid: int) -> tuple[CalicoPolicy, ...]:
        """The Calico policies that select class ``cid``."""
        if not self.calico_policies:
            return ()
        hit = self._calico_memo.get(cid)
        if hit is None:
            cls = self.classes[cid]
            labels, ns, ns_labels, _ = self.calico_view(cid)
            hit = self._calico_memo[cid] = tuple(
                p for p in self.calico_policies
                if (cls.governed or cls.virtual) and (p.namespace is None or p.namespace == ns)
                and (p.namespace_selector is None or p.namespace_selector(ns_labels or {})) and p.selector(labels or {}))
        return hit

    def calico_rule_has(self, policy: CalicoPolicy, rule: CalicoRule, subject: int, other: Endpoint) -> bool:
        """Whether a Calico rule's source and destination match this connection (ports aside)."""
        o = self.calico_view(other)
        s = self.calico_view(subject)
        src, dst = (o, s) if rule.direction == "Ingress" else (s, o)
        return (calico_entity_matches(rule.source, policy, *src)
                and calico_entity_matches(dataclasses.replace(rule.destination, ports=()), policy, *dst))

    def calico_order(self, subject: int, direction: Direction, np_policies: list[Policy]) -> list[tuple[float, str, object]]:
        """Calico's walk for one side: its policies and the NetworkPolicies (order 1000), in order."""
        items: list[tuple[float, str, object]] = [(p.order, p.name, p) for p in self.calico_for(subject) if direction in p.types]
        items += [(1000.0, p.key, p) for p in np_policies]
        return sorted(items, key=lambda item: (item[0], item[1]))

    def labels_for_cilium(self, cid: int) -> dict[str, str]:
        hit = self._cilium_labels.get(cid)
        if hit is None:
            cls = self.classes[cid]
            hit = self._cilium_labels[cid] = cilium_labels(cls.label_map, cls.namespace, dict(self.namespaces[cls.namespace].labels))
        return hit

    def cilium_for(self, cid: int) -> tuple[CiliumPolicy, ...]:
        """The Cilium policies whose endpointSelector selects class ``cid``."""
        if not self.cilium_policies:
            return ()
        hit = self._cilium_memo.get(cid)
        if hit is None:
            cls = self.classes[cid]
            labels = self.labels_for_cilium(cid)
            hit = self._cilium_memo[cid] = tuple(
                p for p in self.cilium_policies
                if (p.namespace is None or p.namespace == cls.namespace) and p.subject.matches(labels)
                and (cls.governed or cls.virtual))
        return hit

    def cilium_peer_has(self, peer: CiliumPeer, other: Endpoint) -> bool:
        if isinstance(other, int):
            cls = self.classes[other]
            if not cls.governed and not cls.virtual:
                return False
            return cilium_peer_matches(peer, self.labels_for_cilium(other), cls.namespace, None)
        return cilium_peer_matches(peer, None, None, other)

    def cilium_rule_has(self, rule: CiliumRule, other: Endpoint) -> bool:
        """Whether a Cilium rule names ``other`` (an empty L3 part with ports means any peer)."""
        if rule.empty:
            return False
        return not rule.peers or any(self.cilium_peer_has(p, other) for p in rule.peers)

    # -- reachability -------------------------------------------------------------------

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

    # -- AdminNetworkPolicy layers ---------------------------------------------------------

    def admin_for(self, cid: int) -> tuple[tuple[AdminPolicy, ...], tuple[AdminPolicy, ...]]:
        """The ANPs (in evaluation order) and BANPs whose subject selects class ``cid``."""
        hit = self._admin_memo.get(cid)
        if hit is None:
            cls = self.classes[cid]
            ns_labels = dict(self.namespaces[cls.namespace].labels)
            hit = (tuple(p for p in self.anps if self._subject_has(p, ns_labels, cls)),
                   tuple(p for p in self.banps if self._subject_has(p, ns_labels, cls)))
            self._admin_memo[cid] = hit
        return hit

    @staticmethod
    def _subject_has(policy: AdminPolicy, ns_labels: Mapping[str, str], cls: PodClass) -> bool:
        if policy.subject_namespaces is not None:
            return policy.subject_namespaces.matches(ns_labels)
        return (policy.subject_pod_namespaces is not None and policy.subject_pod_namespaces.matches(ns_labels)
                and policy.subject_pods is not None and policy.subject_pods.matches(cls.label_map))

    def admin_peer_has(self, peer: AdminPeer, other: Endpoint) -> bool:
        if isinstance(other, int):
            cls = self.classes[other]
            if not cls.governed and not cls.virtual:
                return False
            ns_labels = dict(self.namespaces[cls.namespace].labels)
            if peer.namespaces is not None:
                return peer.namespaces.matches(ns_labels)
            if peer.pods is not None:
                return (peer.pod_namespaces is not None and peer.pod_namespaces.matches(ns_labels)
                        and peer.pods.matches(cls.label_map))
            return any(network_contains(peer, ip) for ip in cls.ips)
        return network_contains(peer, other)

    def admin_decision(self, policies: tuple[AdminPolicy, ...], direction: Direction, other: Endpoint, port: int,
                       protocol: str, dst_ports: tuple[ContainerPort, ...] | None) -> tuple[str, str] | None:
        """(action, "Kind/name rule") of the first rule that matches, in evaluation order; None if none does."""
        for policy in policies:
            for rule in policy.rules(direction):
                if any(self.admin_peer_has(peer, other) for peer in rule.peers) and port_in(rule.port_set(dst_ports), port, protocol):
                    label = f"{policy.key} {direction.lower()}[{rule.index}]" + (f" ({rule.name})" if rule.name else "")
                    return rule.action, label
        return None

    def _side(self, direction: Direction, subject: Endpoint, other: Endpoint, port: int, protocol: str,
              dst_ports: tuple[ContainerPort, ...] | None) -> SideVerdict:
        if not isinstance(subject, int) or not self.classes[subject].governed and not self.classes[subject].virtual:
            return SideVerdict(direction, False, (), (), governed=False)
        policies = self.isolating(subject, direction)
        anps, banps = self.admin_for(subject)
        cilium = self.cilium_for(subject)
        signature = self.egress_signature(subject) if direction == "Egress" else None
        if signature is not None:
            key = (signature, other, port, protocol, dst_ports)
            hit = self._egress_memo.get(key)
            if hit is None:
                hit = self._egress_memo[key] = self._layered(direction, subject, policies, anps, banps, cilium, other, port, protocol, dst_ports)
            return hit
        return self._layered(direction, subject, policies, anps, banps, cilium, other, port, protocol, dst_ports)

    def egress_signature(self, cid: int) -> tuple | None:
        """What a class's egress verdicts depend on: the policies of every layer that select it.

        Classes with the same signature get the same egress verdict to any destination, so
        sources in one namespace share one verdict. None when Calico selects the class: its
        rules may also match the source's own labels.
        """
        if self.calico_for(cid):
            return None
        anps, banps = self.admin_for(cid)
        return (tuple(map(id, self.isolating(cid, "Egress"))), tuple(map(id, anps)), tuple(map(id, banps)),
                tuple(map(id, self.cilium_for(cid))))

    def _layered(self, direction: Direction, subject_id: int, policies: list[Policy], anps: tuple[AdminPolicy, ...], banps: tuple[AdminPolicy, ...],
                 cilium: tuple[CiliumPolicy, ...], other: Endpoint, port: int, protocol: str,
                 dst_ports: tuple[ContainerPort, ...] | None) -> SideVerdict:
        """ANP first; on no match or Pass, NetworkPolicy and Cilium (deny rules first); when
        neither isolates, the BANP."""
        admin = self.admin_decision(anps, direction, other, port, protocol, dst_ports) if anps else None
        verdict = self._evaluate(direction, policies, other, port, protocol, dst_ports)
        enforced = [p for p in cilium if direction in p.enforces]
        cilium_deny = None
        if cilium:
            cilium_allows: list[RuleRef] = []
            for policy in cilium:
                for rule in policy.rules(direction):
                    if self.cilium_rule_has(rule, other) and port_in(rule.port_set(dst_ports), port, protocol):
                        if rule.deny and cilium_deny is None:
                            cilium_deny = f"{policy.key} {rule.field}"
                        elif not rule.deny:
                            cilium_allows.append(RuleRef(policy.key, direction, rule.index))
            verdict = dataclasses.replace(
                verdict, isolated=verdict.isolated or bool(enforced),
                policies=verdict.policies + tuple(p.key for p in enforced),
                allowed_by=verdict.allowed_by + tuple(cilium_allows), cilium_deny=cilium_deny)
        calico_items = self.calico_order(subject_id, direction, policies) if self.calico_policies and isinstance(subject_id, int) else []
        if any(isinstance(item[2], CalicoPolicy) for item in calico_items):
            decision: tuple[str, str] | None = None
            for _order, _name, item in calico_items:
                if isinstance(item, CalicoPolicy):
                    for rule in item.rules(direction):
                        if rule.action == "Log" or not self.calico_rule_has(item, rule, subject_id, other):
                            continue
                        if port_in(rule.port_set(dst_ports), port, protocol) and _protocol_ok(rule.protocol, protocol):
                            decision = (rule.action, f"{item.key} {rule.field}")
                            break
                elif any(r.policy == item.key for r in verdict.allowed_by):  # type: ignore[attr-defined]
                    decision = ("Allow", next(str(r) for r in verdict.allowed_by if r.policy == item.key))  # type: ignore[attr-defined]
                if decision is not None:
                    break
            verdict = dataclasses.replace(verdict, isolated=True, calico=decision or ("Deny", "the end of the tier: no rule of the selecting policies matched"),
                                          policies=verdict.policies + tuple(i[2].key for i in calico_items if isinstance(i[2], CalicoPolicy)))
        baseline = None
        if not verdict.isolated and banps and (admin is None or admin[0] == "Pass"):
            baseline = self.admin_decision(banps, direction, other, port, protocol, dst_ports)
        if admin is None and baseline is None:
            return verdict
        return dataclasses.replace(verdict, admin=admin, baseline=baseline)

    def _evaluate(self, direction: Direction, policies: list[Policy], other: Endpoint, port: int, protocol: str,
                  dst_ports: tuple[ContainerPort, ...] | None) -> SideVerdict:
        allowed_by = tuple(
            RuleRef(policy.key, direction, rule.index)
            for policy in policies
            for rule in policy.rules(direction)
            if self.peer_admits(policy, rule, other) and rule.allows_port(port, protocol, dst_ports)
        )
        rejected: tuple[tuple[RuleRef, str], ...] = ()
        if policies and not allowed_by:
            # Denied: say for every rule in force why it did not match, so the fix is obvious.
            peer_word = "destination" if direction == "Egress" else "source"
            rejected = tuple(
                (RuleRef(policy.key, direction, rule.index),
                 f"{peer_word} matches none of its peers ({rule.describe()})" if not self.peer_admits(policy, rule, other)
                 else f"{port}/{protocol} is not among its ports ({rule.describe()})")
                for policy in policies
                for rule in policy.rules(direction)
            )
        return SideVerdict(direction, bool(policies), tuple(p.key for p in policies), allowed_by, rejected_by=rejected)

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

    def governed_classes(self, ns: str) -> list[PodClass]:
        return [self.classes[cid] for cid in self.classes_by_ns.get(ns, []) if self.classes[cid].governed]

    def _coverage(self, ns: str) -> NamespaceCoverage:
        policies = self.policies_by_ns.get(ns, [])
        governed = self.governed_classes(ns)
        host = [self.classes[cid] for cid in self.classes_by_ns.get(ns, []) if self.classes[cid].host_network]
        sides = {d: self._direction_coverage(ns, d, policies, governed) for d in DIRECTIONS}
        return NamespaceCoverage(
            name=ns,
            policies=tuple(p.key for p in policies),
            workloads=sum(len(c.workloads) for c in governed) + sum(len(c.workloads) for c in host),
            pods=sum(c.pods for c in governed),
            host_network_pods=sum(c.pods for c in host),
            ingress=sides["Ingress"],
            egress=sides["Egress"],
        )

    def _direction_coverage(self, ns: str, direction: Direction, policies: list[Policy], governed: list[PodClass]) -> DirectionCoverage:
        """Default-deny by effect: a policy selecting every pod (present and future) isolates
        the direction, and no rule opens all ports to everyone for every pod of the namespace."""
        pods = sum(c.pods for c in governed)
        isolated = sum(c.pods for c in governed if self.is_isolated(c.id, direction))
        baseline = tuple(p.key for p in policies if direction in p.types and p.pod_selector.empty)
        governed_ids = {c.id for c in governed}
        opened = tuple(
            RuleRef(p.key, direction, rule.index)
            for p in policies
            if p.pod_selector.empty or (governed_ids and governed_ids <= self.selected[p.key])
            for rule in p.rules(direction)
            if rule_opens_everything(rule)
        )
        word = "ingress" if direction == "Ingress" else "egress"
        if not policies:
            reason = "no NetworkPolicy in the namespace"
        elif not baseline:
            if pods and isolated == pods:
                reason = f"every current pod is isolated for {word} by workload policies, but no policy with an empty podSelector isolates new pods"
            else:
                reason = f"no policy with an empty podSelector and {direction} in its policyTypes"
        elif opened:
            reason = f"{opened[0]} allows all {word} on all ports for every pod, undoing the default-deny"
        else:
            reason = f"default-deny {word} by {', '.join(baseline)}"
        default_deny = bool(baseline) and not opened
        if not default_deny and self.calico_policies:
            calico_baseline = self._calico_deny_all(ns, direction)
            if calico_baseline is not None:
                default_deny, baseline = True, (calico_baseline,)
                reason = f"default-deny {word} by {calico_baseline} (Calico)"
        if not default_deny and self.cilium_policies:
            cilium_baseline = self._cilium_deny_all(ns, direction)
            if cilium_baseline is not None:
                default_deny, baseline = True, (cilium_baseline,)
                reason = f"default-deny {word} by {cilium_baseline} (Cilium)"
        if not default_deny:
            admin = self._admin_deny_all(ns, direction, banp_ok=not opened)
            if admin is not None:
                default_deny, baseline = True, (admin,)
                reason = f"default-deny {word} by {admin} (cluster-wide admin policy)"
        return DirectionCoverage(pods, isolated, default_deny, baseline, opened, reason)

    def _calico_deny_all(self, ns: str, direction: Direction) -> str | None:
        """A Calico policy that selects any pod of ``ns`` (probed with an unlabelled pod) in
        ``direction`` and has no Allow or Pass rule open to every peer on every port."""
        ns_labels = dict(self.namespaces[ns].labels) if ns in self.namespaces else {}
        probe = calico_labels({}, ns, ns_labels)
        for policy in sorted(self.calico_policies, key=lambda p: (p.order, p.name)):
            if direction not in policy.types or policy.namespace not in (None, ns):
                continue
            if policy.namespace_selector is not None and not policy.namespace_selector(ns_labels):
                continue
            if not policy.selector(probe):
                continue
            opens = False
            for rule in policy.rules(direction):
                rule_side = rule.source if direction == "Ingress" else rule.destination
                peer = rule_side.selector is None and rule_side.namespace_selector is None and not rule_side.nets
                if peer and rule.action in ("Allow", "Pass") and not rule.destination.ports and rule.protocol is None:
                    opens = True
                    break
                if peer and rule.action == "Deny" and not rule.destination.ports and rule.protocol is None:
                    break
            if not opens:
                return policy.key
        return None

    def _cilium_deny_all(self, ns: str, direction: Direction) -> str | None:
        """A Cilium policy enforcing ``direction`` on every pod of ``ns`` (empty endpointSelector,
        or only the namespace named) with no rule that allows every peer on every port."""
        for policy in self.cilium_policies:
            if policy.namespace not in (None, ns) or direction not in policy.enforces:
                continue
            if any(r.key != NAMESPACE_KEY for r in policy.subject.requirements):
                continue
            if not policy.subject.matches({NAMESPACE_KEY: ns}):
                continue
            opens = any(not r.deny and not r.empty and not r.ports and
                        (not r.peers or any("all" in p.entities or "cluster" in p.entities or
                                            (p.selector is not None and p.selector.empty and p.namespace is None)
                                            for p in r.peers))
                        for r in policy.rules(direction))
            if not opens:
                return policy.key
        return None

    def _admin_deny_all(self, ns: str, direction: Direction, banp_ok: bool) -> str | None:
        """An ANP (or, unless NetworkPolicy opens everything, the BANP) that denies every cluster
        peer on every port to every pod of ``ns``, present and future."""
        ns_labels = dict(self.namespaces[ns].labels) if ns in self.namespaces else {}
        layers = [self.anps] + ([self.banps] if banp_ok else [])
        for policies in layers:
            for policy in policies:
                whole_ns = (policy.subject_namespaces is not None and policy.subject_namespaces.matches(ns_labels)) or (
                    policy.subject_pods is not None and policy.subject_pods.empty and policy.subject_pod_namespaces is not None
                    and policy.subject_pod_namespaces.matches(ns_labels))
                if not whole_ns:
                    continue
                for rule in policy.rules(direction):
                    everyone = not rule.ports and any(p.namespaces is not None and p.namespaces.empty for p in rule.peers)
                    if everyone and rule.action == "Deny":
                        return policy.key
                    if everyone:
                        break  # an earlier Allow or Pass of everything: this policy denies nothing wholesale
        return None

    # -- lookups ------------------------------------------------------------------------

    def find_workload(self, namespace: str, name: str) -> list[int]:
        """Class ids of the pods of workload ``namespace/name`` (any kind; a ReplicaSet's name as
        connectivity prints it works too)."""
        return [
            cid for cid in self.classes_by_ns.get(namespace, [])
            if any(w.name == name or w.controller is not None and w.controller.split("/", 1)[1] == name
                   for w in self.classes[cid].workloads)
        ]

    def real_classes(self) -> Iterable[PodClass]:
        return (c for c in self.classes if not c.virtual)
