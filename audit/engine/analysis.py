"""The pure analysis engine: an Inventory compiled for selection, isolation and reachability. No I/O.

Pods are grouped into equivalence classes (``audit.engine.classes``): every verdict is the same
for all pods of a class, so selection and reachability are computed per class with set
operations, never pod by pod. Every policy kind takes its place in one stack
(``audit.engine.stack``); verdicts for one port (``audit.engine.verdict``) and coverage
(``audit.engine.coverage``) are read from it.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Literal, TypeVar

from audit.engine.addresses import IPBlock
from audit.engine.cached import cached
from audit.engine.classes import DnsTarget, PodClass, ip_value, parse_ip
from audit.engine.clients import Clients
from audit.engine.cni import CniComponent, CniReport
from audit.engine.compiled import TIERS, CompiledPeer, CompiledPolicy, CompiledRule, CompiledSubject, Layer, Tier
from audit.engine.coverage import DirectionCoverage, NamespaceCoverage, governed_classes, namespace_coverage, policies_in
from audit.engine.direction import Direction
from audit.engine.dnsnames import NamedAddress, name_matches
from audit.engine.enforcement import credit
from audit.engine.kinds import group_of, kind_of, kinds, resource_of
from audit.engine.ports import ALL, NONE, PortSet, resolve_ports
from audit.engine.selection import LabelView, PodSelection
from audit.engine.selectors import FieldError, Selector, SelectorIndex
from audit.engine.stack import DstPorts, Endpoint, Entry, Outcome, closes, evaluate
from audit.engine.verdict import SideVerdict, Verdict, port_in, side_verdict
from audit.gcpause import gc_paused
from audit.inventory import NAMESPACE_NAME_LABEL, ContainerPort, Inventory, Labels, Namespace, PolicyObject, Workload

__all__ = ["Analysis", "DirectionCoverage", "DnsTarget", "Endpoint", "Invalid", "NamespaceCoverage", "PodClass", "SideVerdict", "Verdict",
           "ip_value", "parse_ip", "port_in"]


_T = TypeVar("_T")

_NO_STACK: dict[Tier, tuple[Entry, ...]] = {}
"""The stack of a class no layer acts on (shared: never written to)."""
_BIG: Literal["big"] = "big"
"""The byte order of an address's integer (network order)."""

INGRESS_NAMESPACE = "ingress-controller-ns"
"""Where the virtual ingress-controller pod lives (np-guard's placeholder namespace)."""


_EVERY_POD = PodSelection()


@dataclass(frozen=True)
class Invalid:
    """A policy object its kind rejected: it takes no part, and a finding names why."""

    obj: PolicyObject
    errors: tuple[FieldError, ...]
    family: str
    core: bool = False
    """Of a core kind (NetworkPolicy)."""
    display_kind: str = ""
    """How reports name its kind (the resource's display name: "Calico NetworkPolicy")."""
    subject: PodSelection | None = None
    """The pods it would have selected, read on its own (None: unreadable)."""

    def describe(self) -> str:
        errors = "; ".join(map(str, self.errors[:2])) + ("; ..." if len(self.errors) > 2 else "")
        where = f"{self.obj.namespace}/" if self.obj.namespace else ""
        return f"{self.display_kind or self.obj.kind} {where}{self.obj.name} is invalid ({errors}) and was left out"


def _display(obj: PolicyObject) -> str:
    found = resource_of(group_of(obj.api_version), obj.kind)
    return found[1].name if found else obj.kind


def _resource_kind(obj: PolicyObject) -> tuple[str, bool]:
    """(the resource's kind, whether it is auxiliary: read beside the policies, never one)."""
    found = resource_of(group_of(obj.api_version), obj.kind)
    return (found[1].kind, found[1].auxiliary) if found else (obj.kind, False)


def cni_setting_policy(component: CniComponent) -> CompiledPolicy:
    """A CNI setting that isolates every pod both ways (Cilium's enable-policy=always), as a layer
    of the namespace tier that selects every pod and allows nothing: the allows of the policies
    beside it are all that passes, exactly as where a policy selects the pod."""
    setting = str(component.isolates_all)
    directions: tuple[Direction, ...] = ("Ingress", "Egress")
    return CompiledPolicy(
        kind="CNI setting", family="CNI", namespace=None, name=setting, key=setting,
        subject=CompiledSubject(setting, "every pod", _EVERY_POD), rules=(), types=directions,
        layers=(Layer("namespace", (1000.0, setting), f"{component.title or component.name} setting", (), directions),),
        setting=True)


class Analysis:
    """Compiled view of an Inventory that answers selection, isolation and reachability.

    Every policy kind (NetworkPolicy included) is compiled by its module into the one model of
    ``audit.engine.compiled``. ``cni`` decides which kinds take part: a kind the detected
    dataplane does not enforce is listed in ``unenforced`` and left out of every answer, unless
    ``assume_enforced`` (for planning). With no CNI report, or an unknown CNI, every kind takes
    part and ``assumed`` names the kinds whose enforcement is assumed.
    """

    @gc_paused()
    def __init__(self, inventory: Inventory, dns: DnsTarget = DnsTarget(), cni: CniReport | None = None,
                 assume_enforced: bool = False):
        self.inventory = inventory
        self.dns = dns
        self.cni = cni
        self.assume_enforced = assume_enforced
        self.namespaces: dict[str, Namespace] = {ns.name: ns for ns in inventory.namespaces}

        compiled: list[CompiledPolicy] = []
        invalid: list[Invalid] = []
        self.unenforced: dict[str, str] = {}
        """Kind name -> why its policies are left out (present but not enforced)."""
        self.assumed: dict[str, str] = {}
        """Kind name -> why its enforcement is assumed (unknown or version-dependent dataplane)."""
        self.uncredited: dict[str, tuple[str, ...]] = {}
        """Kind name -> the keys of its valid policies that take no part (not enforced)."""
        unenforced: list[CompiledPolicy] = []
        self._core: dict[str, bool] = {k.declaration.name: k.declaration.core for k in kinds()}
        by_kind: dict[int, list[PolicyObject]] = {}
        known = kinds()
        for obj in inventory.policies:
            kind = kind_of(obj.api_version, obj.kind)
            if kind is not None:
                by_kind.setdefault(id(kind), []).append(obj)
        for kind in known:
            objs = by_kind.get(id(kind))
            if not objs:
                continue
            name = kind.declaration.name
            # Resources of one kind may be enforced apart (Cilium's two switches, Calico's versions).
            credits = {r.kind: credit(kind.declaration, r, cni, assume_enforced) for r in kind.declaration.resources if not r.auxiliary}
            auxiliary = [o for o in objs if _resource_kind(o)[1]]
            groups: dict[tuple[str, str], list[PolicyObject]] = {}
            for obj in objs:
                resource, aux = _resource_kind(obj)
                if not aux:
                    groups.setdefault(credits.get(resource, ("yes", "")), []).append(obj)
            for (verdict, why), members in (groups or {("yes", ""): []}).items():
                result = kind.compile(members + auxiliary, inventory)
                auxiliary = []  # compiled once
                invalid += (Invalid(obj, errors, name, kind.declaration.core, _display(obj), kind.subject(obj)) for obj, errors in result.invalid)
                label = name if len(groups) <= 1 else " / ".join(dict.fromkeys(_display(o) for o in members))
                if verdict == "no":
                    self.unenforced[label] = why
                    self.uncredited[label] = tuple(dict.fromkeys(p.key for p in result.policies))
                    unenforced.extend(result.policies)
                    continue
                if verdict == "assumed":
                    self.assumed[label] = why
                compiled.extend(result.policies)
        self.settings: tuple[CompiledPolicy, ...] = tuple(
            cni_setting_policy(c) for c in (cni.isolates_all if cni is not None else ()))
        """CNI settings that act as policies (every pod isolated): in the stack, never listed as objects."""
        compiled.extend(self.settings)
        self.policies: tuple[CompiledPolicy, ...] = tuple(compiled)
        """Every valid policy that takes part, of every kind, in kind order."""
        self.invalid: tuple[Invalid, ...] = tuple(invalid)
        """Every policy object a kind rejected, with its errors."""
        self.unenforced_policies: tuple[CompiledPolicy, ...] = tuple(unenforced)
        """Valid policies of kinds the dataplane does not enforce: listed, never evaluated."""
        families: dict[str, list[str]] = {}
        for policy in self.policies:
            if not policy.setting:
                families.setdefault(policy.family, []).append(policy.key)
        self.families: dict[str, tuple[str, ...]] = {k: tuple(dict.fromkeys(v)) for k, v in families.items()}
        """Kind name -> the keys of its policies that take part."""

        self.classes: list[PodClass] = []
        self.classes_by_ns: dict[str, list[int]] = {}
        self.dns_target: DnsTarget = dns
        """Where the DNS pods were found (the Service's selector when it selects them)."""
        self.dns_note = ""
        """How the DNS pods were found, for the report."""
        self._build_classes(inventory.workloads)
        self._host_network: frozenset[int] = frozenset(c.id for c in self.classes if c.host_network)
        self.dns_classes: tuple[int, ...] = self._dns_classes()
        self.ingress_controller: int | None = self._ingress_controller() if inventory.ingresses else None

        ns_names = sorted(self.namespaces)
        self._ns_index = SelectorIndex([dict(self.namespaces[n].labels) for n in ns_names])
        self._ns_names = ns_names
        self._class_index = SelectorIndex([c.label_map for c in self.classes])
        self._ns_labels: dict[str, dict[str, str]] = {}
        self._account_labels: dict[tuple[str, str], dict[str, str]] = {(a.namespace, a.name): dict(a.labels) for a in inventory.service_accounts}
        self._view_labels: dict[tuple[LabelView, int], Mapping[str, str]] = {}
        self._view_ns_labels: dict[tuple[LabelView, str], Mapping[str, str]] = {}
        self._selection_fast: dict[int, tuple[PodSelection, frozenset[int]]] = {}
        self._selection_memo: dict[PodSelection, frozenset[int]] = {}
        self._ns_selection_memo: dict[PodSelection, list[str]] = {}
        self._peer_memo: dict[int, frozenset[int] | None] = {}
        self._ports_memo: dict[tuple[int, DstPorts], PortSet] = {}
        self._ip_index: dict[int, tuple[list[int], list[int]]] | None = None
        self._block_memo: dict[IPBlock, frozenset[int]] = {}
        self._pods: dict[tuple[str, str], int] | None = None
        self._egress_memo: dict[tuple[object, ...], SideVerdict] = {}
        self._stacks: dict[Direction, dict[int, dict[Tier, tuple[Entry, ...]]]] = {}
        self._acting: dict[int, tuple[CompiledPolicy, ...]] | None = None
        self._signatures: dict[int, tuple[int, ...] | None] | None = None
        self._contents: dict[int, int | None] | None = None
        self._governed_with_pods: dict[str, list[PodClass]] = {}

        # Each policy's layers, and per pod class the layers of the policies that select it.
        self._entries_of: dict[int, tuple[Entry, ...]] = {id(p): tuple(Entry(p, layer) for layer in p.layers) for p in self.policies}
        self.entries: tuple[Entry, ...] = tuple(e for p in self.policies for e in self._entries_of[id(p)])
        self.policies_by_ns: dict[str, list[CompiledPolicy]] = {}
        """Namespaced policies by namespace."""
        self.cluster_policies: tuple[CompiledPolicy, ...] = tuple(p for p in self.policies if p.namespace is None)
        for policy in self.policies:
            if policy.namespace is not None:
                self.policies_by_ns.setdefault(policy.namespace, []).append(policy)
        self._selected: dict[int, frozenset[int]] = {}
        self._by_class: dict[int, list[Entry]] = {}
        for policy in self.policies:
            self._selected[id(policy)] = self.select(policy.subject.selection)  # governed or virtual: never hostNetwork
        self._isolated: dict[Direction, set[int]] = {"Ingress": set(), "Egress": set()}
        for entry in self.entries:
            chosen = self._selected[id(entry.policy)]
            for cid in chosen:
                self._by_class.setdefault(cid, []).append(entry)
            for direction, isolated in self._isolated.items():
                if closes(entry, direction):
                    isolated.update(chosen)
        self.coverage: dict[str, NamespaceCoverage] = {ns: namespace_coverage(self, ns) for ns in ns_names}

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """A namespace's labels as a dict (empty for one the inventory does not know)."""
        hit = self._ns_labels.get(namespace)
        if hit is None:
            ns = self.namespaces.get(namespace)
            hit = self._ns_labels[namespace] = dict(ns.labels) if ns is not None else {}
        return hit

    @cached
    def policy_notes(self) -> dict[str, str]:
        """Each policy's note (what kind and tier it is) by key; built once, read per namespace."""
        return {e.key: e.note for e in self.entries}

    # -- construction -------------------------------------------------------------------

    def _build_classes(self, workloads: Sequence[Workload]) -> None:
        groups: dict[tuple[str, Labels, tuple[ContainerPort, ...], bool, str], list[Workload]] = {}
        for w in workloads:
            groups.setdefault((w.namespace, w.labels, w.ports, w.host_network, w.service_account), []).append(w)
        # In (namespace, labels, account) order: namespaces sorted, then each one's few groups (a
        # whole-list sort would compare namespaces again and again); ties keep their first-seen order.
        by_ns: dict[str, list[tuple[tuple[str, Labels, tuple[ContainerPort, ...], bool, str], list[Workload]]]] = {}
        for item in groups.items():
            by_ns.setdefault(item[0][0], []).append(item)
        for ns in sorted(by_ns):
            for (_, labels, ports, host_network, account), members in sorted(by_ns[ns], key=lambda kv: (kv[0][1], kv[0][4])):
                self._add_class(ns, labels, ports, host_network, sum(w.pods for w in members), tuple(members), account=account)

    def _add_class(self, ns: str, labels: Labels, ports: tuple[ContainerPort, ...], host_network: bool,
                   pods: int, workloads: tuple[Workload, ...], virtual: bool = False, account: str = "default") -> int:
        cid = len(self.classes)
        self.classes.append(PodClass(cid, ns, labels, dict(labels), ports, host_network, pods, workloads, virtual, account))
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
        """Classes of namespace ``ns`` that ``selector`` matches (a fix's narrowed podSelector)."""
        return self.select(PodSelection(namespace=ns, pods=selector))

    # -- selection ----------------------------------------------------------------------

    def select(self, selection: PodSelection) -> frozenset[int]:
        """Pod classes a selection names (hostNetwork pods are never selected).

        Label selectors over the objects' own labels go through one cluster-wide index (each
        distinct selector answered once); a kind's own expressions and label views are matched
        class by class, once per distinct selection.
        """
        fast = self._selection_fast.get(id(selection))  # hashing a selection is slow; most are asked again and again
        if fast is not None and fast[0] is selection:
            return fast[1]
        hit = self._selection_memo.get(selection)
        if hit is None:
            hit = self._selection_memo[selection] = self._select(selection)
        self._selection_fast[id(selection)] = (selection, hit)  # the selection kept alive: its id is not reused
        return hit

    def _select(self, sel: PodSelection) -> frozenset[int]:
        if sel.namespace is not None and (sel.namespaces is None or sel.namespaces.empty):
            candidates: Iterable[int] = self.classes_by_ns.get(sel.namespace, ())
        elif sel.namespaces is None or sel.namespaces.empty:
            candidates = range(len(self.classes))
        else:
            candidates = itertools.chain.from_iterable(self.classes_by_ns.get(ns, ()) for ns in self.namespaces_of(sel))  # walked in C
        pods = sel.pods
        found: frozenset[int]
        if pods is None or pods.empty:
            found = frozenset(candidates)
        elif sel.view is None and isinstance(pods, Selector):
            matched = self._class_index.select(pods)
            found = frozenset(matched) if isinstance(candidates, range) else frozenset(matched).intersection(candidates)
        else:
            view = sel.view
            found = frozenset(cid for cid in candidates
                              if pods.matches(self.view_labels(view, cid) if view is not None else self.classes[cid].label_map))
        # Set operations in C: a Python filter over every class cost seconds per 100k selections.
        return found - self._host_network if self._host_network else found

    def namespaces_of(self, sel: PodSelection) -> list[str]:
        """Names of the namespaces a selection can reach into, sorted."""
        matcher = sel.namespaces
        if sel.namespace is not None and (matcher is None or matcher.empty):
            return [sel.namespace] if sel.namespace in self.namespaces else []
        if matcher is None or matcher.empty:
            return self._ns_names
        hit = self._ns_selection_memo.get(sel)
        if hit is None:
            if sel.view is None and isinstance(matcher, Selector):
                hit = [self._ns_names[i] for i in sorted(self._ns_index.select(matcher))]
            else:
                view = sel.view
                hit = [n for n in self._ns_names
                       if matcher.matches(self._view_namespace_labels(view, n) if view is not None else self.namespace_labels(n))]
            if sel.namespace is not None:
                hit = [n for n in hit if n == sel.namespace]
            self._ns_selection_memo[sel] = hit
        return hit

    def view_labels(self, view: LabelView, cid: int) -> Mapping[str, str]:
        """The labels a kind's selectors see on pod class ``cid`` (computed once per view and class)."""
        key = (view, cid)
        hit = self._view_labels.get(key)
        if hit is None:
            cls = self.classes[cid]
            hit = self._view_labels[key] = view.pod(cls.label_map, cls.namespace, self.namespace_labels(cls.namespace), cls.service_account,
                                                    self._account_labels.get((cls.namespace, cls.service_account), {}))
        return hit

    def _view_namespace_labels(self, view: LabelView, namespace: str) -> Mapping[str, str]:
        key = (view, namespace)
        hit = self._view_ns_labels.get(key)
        if hit is None:
            hit = self._view_ns_labels[key] = view.namespace(namespace, self.namespace_labels(namespace))
        return hit

    def classes_in_block(self, block: IPBlock) -> frozenset[int]:
        """Classes with a pod IP in the block: a bisect over the sorted pod IPs, not a scan."""
        hit = self._block_memo.get(block)
        if hit is not None:
            return hit
        if self._ip_index is None:
            raws: list[str] = []
            ids: list[int] = []
            for c in self.classes:
                if c.governed:
                    for w in c.workloads:
                        if w.ips:
                            raws += w.ips
                            ids += itertools.repeat(c.id, len(w.ips))
            pairs: dict[int, tuple[list[int], list[int]]] = {4: ([], []), 6: ([], [])}
            try:  # nearly always every address is IPv4: parsed by maps of C functions, no call of ours per address
                pairs[4] = (list(map(int.from_bytes, map(functools.partial(socket.inet_pton, socket.AF_INET), raws), itertools.repeat(_BIG))), ids)
            except (OSError, TypeError, ValueError):
                for raw, cid in zip(raws, ids):
                    parsed = ip_value(raw)
                    if parsed is not None:
                        pairs[parsed[0]][0].append(parsed[1])
                        pairs[parsed[0]][1].append(cid)
            # Per IP version the sorted addresses, and beside them their classes: a range of
            # addresses is a slice of classes, taken in C. (Classes of one address may come in any
            # order: a slice of them is taken as a set.)
            self._ip_index = {}
            for version, (values, owners) in pairs.items():
                order = sorted(range(len(values)), key=values.__getitem__)
                self._ip_index[version] = ([values[i] for i in order], [owners[i] for i in order])
        values, owners = self._ip_index[block.cidr.version]
        lo = bisect.bisect_left(values, int(block.cidr.network_address))
        hi = bisect.bisect_right(values, int(block.cidr.broadcast_address))
        kept: set[int] = set()
        at = lo
        # The except ranges as slices, in order: what lies between them (and after the last) is kept.
        for start, end in sorted((bisect.bisect_left(values, int(ex.network_address)), bisect.bisect_right(values, int(ex.broadcast_address)))
                                 for ex in block.excepts):
            start = min(start, hi)  # an except may reach past the block (one before it moves nothing)
            if start > at:
                kept.update(owners[at:start])
            at = max(at, end)
        if at < hi:
            kept.update(owners[at:hi])
        hit = self._block_memo[block] = frozenset(kept)
        return hit

    def rejected_for(self, cid: int) -> tuple[Invalid, ...]:
        """The invalid policy objects that would have selected class ``cid`` (or may have: their
        subject is unreadable and they are of its namespace or cluster-wide): they take no part."""
        namespace = self.classes[cid].namespace
        return tuple(bad for bad in self.invalid if bad.obj.namespace in (None, namespace) and (
            bad.subject is None or cid in self.select(bad.subject)))

    def policies_of(self, core: bool) -> tuple[CompiledPolicy, ...]:
        """The policies of the core kinds (NetworkPolicy), or of every other kind."""
        return tuple(p for p in self.policies if not p.setting and self._core[p.family] == core)

    def entries_of(self, policy: CompiledPolicy) -> tuple[Entry, ...]:
        """A policy's layers in the stack."""
        return self._entries_of[id(policy)]

    def selected(self, policy: CompiledPolicy) -> frozenset[int]:
        """The pod classes (governed, or the virtual DNS and ingress-controller pods) a policy selects."""
        return self._selected[id(policy)]

    # -- what a rule names -----------------------------------------------------------------

    def peer_classes(self, peer: CompiledPeer) -> frozenset[int] | None:
        """The pod classes a peer names; None when that depends on the subject (sameLabels)."""
        key = id(peer)
        if key in self._peer_memo:
            return self._peer_memo[key]
        found: frozenset[int] | None
        if peer.relative:
            found = None
        elif peer.unresolvable is not None or (peer.blocks and not peer.blocks_match_pods):
            found = frozenset()
        else:
            if peer.blocks:
                found = frozenset().union(*(self.classes_in_block(b) for b in peer.blocks))
                if peer.pods is not None:
                    found = found & self.select(peer.pods)
            else:
                found = self.select(peer.pods) if peer.pods is not None else self.select(_EVERY_POD)
            if peer.not_blocks:
                found = frozenset(c for c in found if not any(ip in net for ip in self.classes[c].ips for net in peer.not_blocks))
            if peer.not_pods is not None:
                found = found - self.select(peer.not_pods)
        self._peer_memo[key] = found
        return found

    def peer_names(self, peer: CompiledPeer, subject: int | None, other: Endpoint) -> bool:
        """Whether a peer names ``other`` (a pod class or an outside address), for ``subject``."""
        if peer.names and isinstance(other, NamedAddress):
            return any(name_matches(pattern, other.dns_name) for pattern in peer.names)  # toFQDNs: the address a name resolved to
        if peer.unresolvable is not None:
            return False
        if not isinstance(other, int):
            if peer.pods is not None or peer.relative:
                return False  # selectors name pods, never outside addresses
            if peer.blocks and not any(b.contains(other) for b in peer.blocks):
                return False
            return not any(other.version == net.version and other in net for net in peer.not_blocks)
        if peer.relative:
            cls = self.classes[other]
            if cls.host_network or subject is None:
                return False
            theirs, mine = self.namespace_labels(cls.namespace), self.namespace_labels(self.classes[subject].namespace)
            return (all(k in mine and theirs.get(k) == mine[k] for k in peer.same_labels)
                    and all(theirs.get(k) != mine.get(k) for k in peer.not_same_labels))
        found = self.peer_classes(peer)
        return found is not None and other in found

    def rule_names(self, rule: CompiledRule, subject: int, other: Endpoint) -> bool:
        """Whether a rule applies between ``subject`` (its side's pod) and ``other`` (the peer)."""
        if rule.own is not None and not self.peer_names(rule.own, None, subject):
            return False
        if rule.ip_family is not None and self.family(other) != rule.ip_family:
            return False
        if rule.all_peers:
            return True
        return any(self.peer_names(peer, subject, other) for peer in rule.peers)

    def family(self, endpoint: Endpoint) -> int:
        """The IP version of traffic with an endpoint: an address's own; a pod's, 6 only when every
        IP it has is IPv6 (pods without known IPs are taken as IPv4)."""
        if not isinstance(endpoint, int):
            return endpoint.version
        ips = self.classes[endpoint].ips
        return 6 if ips and all(ip.version == 6 for ip in ips) else 4

    def rule_ports(self, rule: CompiledRule, dst_ports: DstPorts) -> PortSet:
        """What a rule covers, resolved against the destination's container ports (once per rule and port list)."""
        key = (id(rule), dst_ports)
        hit = self._ports_memo.get(key)
        if hit is None:
            if rule.ports is None:
                hit = ALL
            else:
                hit = resolve_ports((p.entry() for p in rule.ports), dst_ports)
            if rule.not_ports:
                hit = hit - resolve_ports((p.entry() for p in rule.not_ports), dst_ports)
            self._ports_memo[key] = hit
        return hit

    def rule_peer_sets(self, rule: CompiledRule) -> tuple[frozenset[int], ...] | None:
        """The pod-class sets a rule's peers name, for listing candidates (None: possibly any peer)."""
        if rule.all_peers or rule.own is not None or rule.ip_family is not None:
            return None
        out = []
        for peer in rule.peers:
            found = self.peer_classes(peer)
            if found is None or peer.everything:
                return None
            out.append(found)
        return tuple(out)

    # -- the stack ----------------------------------------------------------------------

    def stack_for(self, cid: int, direction: Direction) -> dict[Tier, tuple[Entry, ...]]:
        """The layers of every kind that act on class ``cid`` in ``direction``, per tier, in order."""
        stacks = self._stacks.get(direction)  # `_stacks_in` inlined: asked about 400,000 times a scan
        if stacks is None:
            stacks = self._stacks_in(direction)
        return stacks.get(cid, _NO_STACK)

    def _stacks_in(self, direction: Direction) -> dict[int, dict[Tier, tuple[Entry, ...]]]:
        """The stacks of the classes some layer acts on in ``direction``, built on first use."""
        stacks = self._stacks.get(direction)
        if stacks is None:
            stacks = self._stacks[direction] = self._build_stacks(direction)
        return stacks

    @cached
    def _layers_of(self) -> dict[int, tuple[Entry, ...]]:
        """Per class, the layers of the policies that select it; classes selected by the same
        layers share one tuple, so what depends only on them is derived once per tuple."""
        shared: dict[tuple[int, ...], tuple[Entry, ...]] = {}
        out: dict[int, tuple[Entry, ...]] = {}
        for cid, entries in self._by_class.items():
            key = tuple(map(id, entries))
            hit = shared.get(key)
            if hit is None:
                hit = shared[key] = tuple(entries)
            out[cid] = hit
        return out

    def _per_layers(self, derive: Callable[[tuple[Entry, ...]], _T]) -> dict[int, _T]:
        """``derive(layers)`` for every class some layer acts on, computed once per distinct tuple of layers."""
        return _derive_shared(self._layers_of, derive)

    def _build_stacks(self, direction: Direction) -> dict[int, dict[Tier, tuple[Entry, ...]]]:
        """Every class's stack in ``direction`` (classes that the same layers select share one, and one
        egress signature); classes no layer acts on in it are left out. Equal stacks are one object,
        and so are equal tiers of them: memos elsewhere key by their identity."""
        tiers: dict[tuple[int, ...], tuple[Entry, ...]] = {}
        stacks: dict[tuple[tuple[Tier, int], ...], dict[Tier, tuple[Entry, ...]]] = {}

        def stack(layers: tuple[Entry, ...]) -> dict[Tier, tuple[Entry, ...]]:
            found: dict[Tier, list[Entry]] = {}
            for entry in layers:
                if entry.rules(direction) or entry.isolates(direction):
                    found.setdefault(entry.tier, []).append(entry)
            out: dict[Tier, tuple[Entry, ...]] = {}
            for tier, entries in found.items():
                ordered = tuple(sorted(entries, key=lambda e: e.order))
                out[tier] = tiers.setdefault(tuple(map(id, ordered)), ordered)
            return stacks.setdefault(tuple((t, id(es)) for t, es in out.items()), out)

        return {cid: hit for cid, hit in self._per_layers(stack).items() if hit}

    def isolating(self, cid: int, direction: Direction) -> tuple[Entry, ...]:
        """The namespace-tier layers that isolate class ``cid`` in ``direction`` (empty: none)."""
        return tuple(e for e in self.stack_for(cid, direction).get("namespace", ()) if e.isolates(direction))

    def closed_below(self, cid: int, direction: Direction, tier: Tier) -> bool:
        """Whether a tier after ``tier`` closes class ``cid`` in ``direction`` (isolates it, or
        denies it everyone): where a Pass rule of ``tier`` hands its traffic."""
        stack = self.stack_for(cid, direction)
        return any(closes(e, direction) for t in TIERS[TIERS.index(tier) + 1:] for e in stack.get(t, ()))

    @cached
    def clients(self) -> Clients:
        """Who names whom in their egress rules (audit.engine.clients), built on first use."""
        return Clients(self)

    def isolated_classes(self, direction: Direction) -> AbstractSet[int]:
        """The classes `is_isolated` holds isolated in ``direction``, as a set (read it, never change it)."""
        return self._isolated[direction]

    def is_isolated(self, cid: int, direction: Direction) -> bool:
        """Whether some policy of any kind isolates class ``cid`` in ``direction``: the namespace
        tier closes for it, or an admin or baseline policy denies it every peer on every port."""
        return cid in self._isolated[direction]

    def egress_signature(self, cid: int) -> tuple[int, ...] | None:
        """What a class's egress verdicts depend on: the layers of every tier that act on it.

        Classes with the same signature get the same egress verdict to any destination, so
        sources in one namespace share one verdict. None when a rule's match also depends on
        the source itself (rules that narrow their own side, sameLabels peers).
        """
        if self._signatures is None:  # every class's at once, once per distinct stack
            def signature(stack: Mapping[Tier, tuple[Entry, ...]]) -> tuple[int, ...] | None:
                if any(r.subject_dependent for es in stack.values() for e in es for r in e.rules("Egress")):
                    return None
                return tuple(id(e) for t in TIERS for e in stack.get(t, ()))

            self._signatures = _derive_shared(self._stacks_in("Egress"), signature)
        return self._signatures.get(cid, ())  # no layer acts on its egress

    def egress_content(self, cid: int) -> int | None:
        """What the ports a class's egress allows depend on, by content rather than by policy, as a
        number: classes get the same number exactly when their stacks are alike in content (per
        layer in walk order its tier, group, isolation and rules: action and the identity of their
        peers and ports, which one batch of a kind shares between its policies; see `_content`).
        Classes of many namespaces that the same default-deny and DNS specs govern share it;
        explanations, which name the rules, do not (see `egress_signature`). None when a rule
        depends on the subject. A number, not the content itself: memos keyed by it are asked per
        class, and a nested tuple is hashed anew at every lookup."""
        if self._contents is None:  # every class's at once, once per distinct stack
            numbers: dict[tuple[object, ...], int] = {(): 0}  # 0: no layer acts on its egress

            def number(stack: Mapping[Tier, tuple[Entry, ...]]) -> int | None:
                content = _content(stack, "Egress")
                return None if content is None else numbers.setdefault(content, len(numbers))

            self._contents = _derive_shared(self._stacks_in("Egress"), number)
        return self._contents.get(cid, 0)

    def side_ports(self, subject: int, direction: Direction, other: Endpoint, dst_ports: DstPorts) -> PortSet:
        """What one side allows between ``subject`` and ``other``, on every port: the stack's walk.

        When only Allow layers of the namespace tier act on the subject the walk is the union of
        the rules that name the peer: computed directly, it is the same answer faster.
        """
        cls = self.classes[subject]
        if not cls.governed and not cls.virtual:
            return ALL
        stack = self.stack_for(subject, direction)
        if not stack:
            return ALL
        entries = stack.get("namespace", ())
        if len(stack) == 1 and entries and all(e.union for e in entries):
            if not any(e.isolates(direction) for e in entries):
                return ALL  # rules that only allow, in a tier that does not close: the default allows the rest
            allowed = NONE
            for entry in entries:
                for rule in entry.rules(direction):
                    if self.rule_names(rule, subject, other):
                        allowed = allowed | self.rule_ports(rule, dst_ports)
            return allowed
        return evaluate(self, subject, direction, other, dst_ports).allowed

    def outcome(self, subject: int, direction: Direction, other: Endpoint, dst_ports: DstPorts) -> Outcome:
        """The stack's full evaluation of one side (every port, with what decided it)."""
        return evaluate(self, subject, direction, other, dst_ports)

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> Verdict:
        """Whether ``src`` may open a connection to ``dst`` on ``port``/``protocol``.

        Allowed when the source's egress allows it (or the source is not egress-isolated)
        AND the destination's ingress allows it (or it is not ingress-isolated).
        """
        dst_ports = self.classes[dst].ports if isinstance(dst, int) else None
        egress = side_verdict(self, "Egress", src, dst, port, protocol, dst_ports)
        ingress = side_verdict(self, "Ingress", dst, src, port, protocol, dst_ports)
        return Verdict(egress.allowed and ingress.allowed, egress, ingress)

    def egress_verdict_memo(self) -> dict[tuple[object, ...], SideVerdict]:
        """Egress verdicts shared by sources with the same signature (audit.engine.verdict fills it)."""
        return self._egress_memo

    # -- coverage (see audit.engine.coverage) ----------------------------------------------

    def governed_classes(self, ns: str) -> list[PodClass]:
        return governed_classes(self, ns)

    def governed_with_pods(self, ns: str) -> list[PodClass]:
        """The namespace's governed classes with running pods (computed once: every check asks)."""
        hit = self._governed_with_pods.get(ns)
        if hit is None:
            hit = self._governed_with_pods[ns] = [c for c in governed_classes(self, ns) if c.pods > 0]
        return hit

    def policies_in(self, ns: str) -> tuple[str, ...]:
        """Keys of the policies of every kind that select a pod of ``ns`` or all of it."""
        return policies_in(self, ns)

    def policies_acting_on(self, cid: int) -> tuple[CompiledPolicy, ...]:
        """The policies whose subject selects class ``cid``, in kind order, each once (one tuple
        shared by the classes the same policies select: callers may key memos by its identity)."""
        if self._acting is None:
            self._acting = self._per_layers(lambda layers: tuple(dict.fromkeys(e.policy for e in layers)))
        return self._acting.get(cid, ())

    def whole_namespace(self, policy: CompiledPolicy, namespace: str) -> bool:
        """Whether a policy selects every pod of ``namespace``, present and future."""
        if policy.namespace is not None and policy.namespace != namespace:
            return False  # a namespaced policy selects in its own namespace only
        return policy.subject.selection.whole_namespace(namespace, self.namespace_labels(namespace))

    # -- lookups ------------------------------------------------------------------------

    def find_workload(self, namespace: str, name: str) -> list[int]:
        """Class ids of the pods of workload ``namespace/name`` (any kind; a ReplicaSet's name as
        connectivity prints it works too)."""
        return [
            cid for cid in self.classes_by_ns.get(namespace, [])
            if any(w.name == name or (w.controller is not None and w.controller.split("/", 1)[1] == name)
                   for w in self.classes[cid].workloads)
        ]

    def find_pod(self, namespace: str, name: str) -> list[int]:
        """The class of the pod named ``name`` (where the input names its pods), else nothing."""
        if self._pods is None:
            self._pods = {}
            for cls in self.classes:
                for w in cls.workloads:
                    for pod in w.pod_names:
                        self._pods.setdefault((w.namespace, pod), cls.id)
        cid = self._pods.get((namespace, name))
        return [] if cid is None else [cid]

    def real_classes(self) -> Iterable[PodClass]:
        return (c for c in self.classes if not c.virtual)


def _content(stack: Mapping[Tier, tuple[Entry, ...]], direction: Direction) -> tuple[object, ...] | None:
    """`Analysis.egress_content` of one stack: what `evaluate` and the union walk read of it to find
    the allowed ports (never a rule's label or a layer's note, which only explanations read)."""
    out: list[object] = []
    for tier in TIERS:
        for entry in stack.get(tier, ()):
            rules = entry.rules(direction)
            if any(r.subject_dependent for r in rules):
                return None
            out.append((tier, entry.order[0], entry.isolates(direction), tuple(
                (r.action, r.all_peers, id(r.peers), id(r.ports), id(r.not_ports), r.ip_family)  # id(None) for every port
                for r in rules)))
    return tuple(out)


_S = TypeVar("_S")


def _derive_shared(shared: Mapping[int, _S], derive: Callable[[_S], _T]) -> dict[int, _T]:
    """``derive`` of each class's value in ``shared``, computed once per distinct value object (classes
    that the same layers select share their layers and their stacks, see `Analysis._build_stacks`)."""
    done: dict[int, _T] = {}
    out: dict[int, _T] = {}
    for cid, value in shared.items():
        key = id(value)
        if key not in done:
            done[key] = derive(value)
        out[cid] = done[key]
    return out
