"""Over-permissive rules: policies that look strict and allow far more than intended."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import cast

from audit.checks import fixes
from audit.checks.fixes import METADATA_IP
from audit.checks.registry import Context, Hit, check
from audit.config import BROAD_SELECTOR_ANNOTATION
from audit.engine.analysis import PodClass
from audit.engine.kinds.networkpolicy import Policy, Rule


def rules_in_effect(ctx: Context) -> Iterator[tuple[Policy, Rule]]:
    """Every rule that takes effect, of every valid policy in an audited namespace."""
    for policy in ctx.audited_policies():
        for direction in policy.types:
            for rule in policy.rules(direction):
                yield policy, rule


def is_dns_only(rule: Rule) -> bool:
    """A rule that opens only port 53 (or the conventional named DNS ports)."""
    return bool(rule.ports) and all(p.port in (53, "dns", "dns-tcp") and p.end_port is None for p in rule.ports)


def _hit(policy: Policy, rule: Rule | None, message: str, accepted: str | None = None, key: str = "",
         overridden: str | None = None) -> Hit:
    where = f"{rule.field}: " if rule is not None else ""
    return Hit(policy.namespace, "NetworkPolicy", policy.name, where + message, source=policy.source,
               key=key or (rule.field if rule else ""), accepted=accepted, overridden=overridden)


def _side_words(rule: Rule) -> tuple[str, str]:
    return ("sources", "to") if rule.direction == "Ingress" else ("destinations", "from")


@check(
    "NP-PERM-001",
    "Rule allows all peers on all ports",
    "high",
    rationale="""An empty rule (`{}`, or no from/to and no ports) allows every source (destination)
    on every port for the pods the policy selects: the policy isolates nothing in that direction.
    A rule with an empty from/to but a port list is narrower and not reported here.""",
    remediation="Name the peers (podSelector / namespaceSelector / ipBlock) and the ports the workload needs.",
)
def allow_all_rule(ctx: Context) -> Iterable[Hit]:
    for policy, rule in rules_in_effect(ctx):
        if rule.all_peers and rule.all_ports:
            peers, prep = _side_words(rule)
            n = len(ctx.analysis.selected[policy.key])
            yield _hit(policy, rule, f"allows all {peers} on all ports {prep} the pods selected by "
                                     f"podSelector {policy.pod_selector} ({n} pod group{'s' if n != 1 else ''})")


@check(
    "NP-PERM-002",
    "Empty podSelector in a policy that allows traffic",
    "high",
    rationale="""`podSelector: {}` (or an empty matchLabels left by an unset template variable)
    selects every pod in the namespace, so every allow rule of the policy opens every pod, not
    just the intended workload (the "allow all that wasn't" war story). Namespace-wide DNS
    egress is the documented exception and is not reported.""",
    remediation=f"Select the intended workload's labels, or annotate the policy with {BROAD_SELECTOR_ANNOTATION}: <reason> when the breadth is intended.",
)
def empty_pod_selector(ctx: Context) -> Iterable[Hit]:
    for policy in ctx.audited_policies():
        if not policy.pod_selector.empty:
            continue
        rules = [r for d in policy.types for r in policy.rules(d) if not is_dns_only(r)]
        if not rules:
            continue
        missing = " (podSelector is missing, which the API reads as {})" if policy.pod_selector_missing else ""
        what = "; ".join(r.describe() for r in rules[:3])
        narrowed = fixes.narrowed_selector(ctx.analysis, policy, is_dns_only)
        yield dataclasses.replace(
            _hit(policy, None, f"podSelector is empty{missing}: these rules apply to every pod in {policy.namespace}: {what}",
                 accepted=policy.annotation(BROAD_SELECTOR_ANNOTATION), key="spec.podSelector"),
            fix_yaml=fixes.dump(*narrowed) if narrowed else None)


@check(
    "NP-PERM-003",
    "namespaceSelector: {} matches every namespace",
    "medium",
    rationale="""An empty namespaceSelector matches all namespaces, including ones created later by
    anyone; without a podSelector beside it the peer is every pod of the cluster.""",
    remediation="Select the namespaces by label (e.g. kubernetes.io/metadata.name: <name>) and pair it with a podSelector in the same peer.",
)
def empty_namespace_selector(ctx: Context) -> Iterable[Hit]:
    for policy, rule in rules_in_effect(ctx):
        if is_dns_only(rule):
            continue
        for j, peer in enumerate(rule.peers):
            if peer.namespaces is not None and peer.namespaces.empty:
                scope = "every pod of every namespace" if peer.pods is None or peer.pods.empty else f"pods [{peer.pods}] in every namespace"
                field = "from" if rule.direction == "Ingress" else "to"
                yield _hit(policy, rule, f"{field}[{j}] namespaceSelector: {{}} matches {scope}",
                           accepted=policy.annotation(BROAD_SELECTOR_ANNOTATION), key=f"{rule.field}.{field}[{j}]")


@check(
    "NP-PERM-004",
    "ipBlock covers the whole address space",
    "high",
    rationale="""ipBlock 0.0.0.0/0 or ::/0 without except admits every address: the internet,
    private ranges, the cloud metadata service and, on many CNIs, pod IPs too.""",
    remediation="Narrow the CIDR, or except the private ranges (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) and 169.254.0.0/16.",
)
def ip_block_everything(ctx: Context) -> Iterable[Hit]:
    for policy, rule in rules_in_effect(ctx):
        field = "from" if rule.direction == "Ingress" else "to"
        for j, peer in enumerate(rule.peers):
            if peer.ip_block is not None and peer.ip_block.is_everything:
                ports = "all ports" if rule.all_ports else ", ".join(map(str, rule.ports))
                yield _hit(policy, rule, f"{field}[{j}] ipBlock {peer.ip_block.cidr} has no except: every address on {ports}",
                           key=f"{rule.field}.{field}[{j}]")


@check(
    "NP-PERM-005",
    "Rule without ports allows every port",
    "low",
    rationale="""A rule that names peers but no ports allows every port and protocol to (from)
    those peers: debug ports, admin interfaces and sidecars included.""",
    remediation="List the ports the workload needs in the rule's `ports`.",
)
def rule_without_ports(ctx: Context) -> Iterable[Hit]:
    for policy, rule in rules_in_effect(ctx):
        if rule.all_ports and not rule.all_peers:
            yield _hit(policy, rule, f"no ports: allows every port {'from' if rule.direction == 'Ingress' else 'to'} "
                                     f"{' OR '.join(map(str, rule.peers))}")


@check(
    "NP-PERM-006",
    "Separate podSelector and namespaceSelector peers (OR where AND was likely meant)",
    "medium",
    rationale="""`- podSelector: …` and `- namespaceSelector: …` as two list items are ORed: the
    rule admits the pods in its own namespace AND every pod of the selected namespaces. Written
    as one item (no dash before namespaceSelector) they are ANDed, which is usually what was meant.""",
    remediation="Put podSelector and namespaceSelector in the same peer item if only those pods of those namespaces should match.",
)
def or_where_and_meant(ctx: Context) -> Iterable[Hit]:
    for policy, rule in rules_in_effect(ctx):
        pod_only = [j for j, p in enumerate(rule.peers) if p.pods is not None and p.namespaces is None]
        ns_only = [j for j, p in enumerate(rule.peers) if p.namespaces is not None and p.pods is None]
        if pod_only and ns_only:
            field = "from" if rule.direction == "Ingress" else "to"
            yield _hit(policy, rule, f"{field}[{pod_only[0]}] ({rule.peers[pod_only[0]]}) and {field}[{ns_only[0]}] "
                                     f"({rule.peers[ns_only[0]]}) are separate peers and are ORed: every pod of the "
                                     f"selected namespaces matches")


@check(
    "NP-PERM-007",
    "Egress reaches the cloud metadata service",
    "high",
    rationale="""169.254.169.254 serves cloud credentials on port 80. It is outside the RFC 1918
    ranges, so rules that allow "everything but private ranges" still reach it, and a pod that
    reaches it can often assume the node's cloud identity.""",
    remediation="Add 169.254.169.254/32 (or 169.254.0.0/16) to the ipBlock's except list, or block it cluster-wide with an AdminNetworkPolicy.",
)
def egress_to_metadata(ctx: Context) -> Iterable[Hit]:
    narrowed: dict[str, str | None] = {}

    def fix(policy: Policy) -> str | None:
        if policy.key not in narrowed:
            doc = fixes.without_metadata(ctx.analysis, policy)
            narrowed[policy.key] = fixes.dump(doc) if doc else None
        return narrowed[policy.key]

    for policy, rule in rules_in_effect(ctx):
        if rule.direction != "Egress" or not rule.allows_port(80, "TCP", None):
            continue
        overridden = _admin_denies_metadata(ctx, policy)
        if rule.all_peers:
            yield dataclasses.replace(_hit(policy, rule, f"allows egress to any address on port 80, including {METADATA_IP}",
                                           overridden=overridden), fix_yaml=fix(policy))
            continue
        for j, peer in enumerate(rule.peers):
            if peer.ip_block is not None and peer.ip_block.contains(METADATA_IP):
                yield dataclasses.replace(_hit(policy, rule, f"to[{j}] ipBlock {peer.ip_block} contains {METADATA_IP} (cloud metadata)",
                                               key=f"{rule.field}.to[{j}]", overridden=overridden), fix_yaml=fix(policy))


def _admin_denies_metadata(ctx: Context, policy: Policy) -> str | None:
    """The admin-tier rule that denies every pod ``policy`` selects the metadata service on
    80/TCP (the NetworkPolicy rule then allows nothing there), or None."""
    analysis = ctx.analysis
    chosen = [cid for cid in analysis.selected[policy.key] if analysis.classes[cid].governed]
    rules = set()
    for cid in chosen:
        decided = analysis.allowed(cid, METADATA_IP, 80, "TCP").egress.decided
        if decided is None or decided.tier != "admin" or decided.action != "Deny":
            return None
        rules.add(decided.rule)
    return ", ".join(sorted(rules)) + " denies it for every pod the policy selects" if rules else None


def sensitive_ports_of(ctx: Context, cls: PodClass) -> set[int]:
    """Data ports a pod class serves: declared container ports, or ports its ingress rules name."""
    sensitive = set(ctx.config.sensitive_ports)
    ports = {p.port for p in cls.ports if p.port in sensitive}
    for policy in ctx.analysis.isolating(cls.id, "Ingress"):
        for rule in policy.rules("Ingress"):
            ports.update(p.port for p in rule.ports if isinstance(p.port, int) and p.end_port is None and p.port in sensitive)
    return ports


def _broad_peer_reasons(ctx: Context, policy: Policy, rule: Rule, own_ns: str) -> list[str]:
    """How a rule admits whole other namespaces or outside addresses (narrow pod peers are fine)."""
    if rule.all_peers:
        return [f"{rule.field} admits all sources"]
    reasons = []
    for j, peer in enumerate(rule.peers):
        where = f"{rule.field}.from[{j}]"
        if peer.ip_block is not None:
            reasons.append(f"{where} admits addresses {peer.ip_block}")
        elif peer.namespaces is not None and (peer.pods is None or peer.pods.empty or peer.namespaces.empty):
            others = [n for n in ctx.analysis.namespaces_matching(peer) if n != own_ns]
            if peer.namespaces.empty:
                reasons.append(f"{where} admits every namespace")
            elif others:
                reasons.append(f"{where} admits all pods of namespace{'s' if len(others) > 1 else ''} {', '.join(others[:5])}")
    return reasons


@check(
    "NP-PERM-008",
    "Sensitive port reachable from whole other namespaces",
    "high",
    rationale="""Databases, caches, brokers and etcd should accept connections only from the named
    workloads that use them. A data port open to whole namespaces (or to every pod, when the
    pod is not isolated) is how a compromised staging pod reaches a production database.""",
    remediation="Allow the data port only from a namespaceSelector AND podSelector peer naming the client workload.",
)
def sensitive_port_exposure(ctx: Context) -> Iterable[Hit]:
    analysis = ctx.analysis
    for ns in ctx.audited_namespaces():
        for cls in ctx.governed_classes(ns.name):
            policies = analysis.isolating(cls.id, "Ingress")
            ports = sensitive_ports_of(ctx, cls)
            if not ports:
                continue
            reasons: list[str] = []
            if not analysis.is_isolated(cls.id, "Ingress"):
                reasons.append("not isolated for ingress: every pod of every namespace can connect")
            else:
                for policy in policies:
                    for rule in policy.rules("Ingress"):
                        if any(rule.allows_port(port, "TCP", cls.ports) for port in ports):
                            reasons += [f"{policy.name} {r}" for r in _broad_peer_reasons(ctx, policy, rule, ns.name)]
            if reasons:
                workloads = tuple(w.ref for w in cls.workloads)
                fix = None
                if not analysis.is_isolated(cls.id, "Ingress"):
                    written = fixes.sensitive_ports_yaml(analysis, cls.id, tuple(sorted(ports)), _named_clients(ctx, cls.id, ports))
                    fix = (f"# Closes {', '.join(map(str, sorted(ports)))} to every other namespace"
                           + (" but the clients whose egress policies name it" if written[1] else "")
                           + ": add each client workload (a namespaceSelector AND podSelector peer) before applying.\n"
                           + written[0]) if written else None
                yield Hit(ns.name, "Workload", cls.workloads[0].name,
                          f"port{'s' if len(ports) > 1 else ''} {', '.join(map(str, sorted(ports)))}: {'; '.join(reasons)}",
                          objects=workloads, source=cls.workloads[0].source, key=cls.describe(), fix_yaml=fix)


@dataclasses.dataclass(frozen=True)
class _ClientIndex:
    """Egress rules by the peer set they name, and per pod class the peer sets that hold it."""

    rules: dict[int, list[tuple[tuple[int, ...], Rule]]]
    holders: dict[int, list[int]]


def _named_clients(ctx: Context, cid: int, ports: set[int]) -> list[int]:
    """Workloads of other namespaces whose own egress policies name this destination on one of
    ``ports`` by a pod-selecting peer: the clients someone meant to connect."""
    analysis = ctx.analysis
    index = cast("_ClientIndex | None", analysis.memo.get(("named-clients",)))
    if index is None:
        # Once per run, per peer set (the analysis shares one set among equal peers): the rules
        # whose peers select it and their sources; then per class, the sets that hold it. Only
        # namespace-selecting peers can name a pod of another namespace.
        by_set: dict[int, tuple[frozenset[int], list[tuple[tuple[int, ...], Rule]]]] = {}
        for policy in analysis.policies:
            sources = tuple(s for s in analysis.selected[policy.key] if analysis.classes[s].governed)
            if not sources:
                continue
            for rule in policy.rules("Egress"):
                for peer in rule.peers:
                    if peer.namespaces is not None and peer.pods is not None and not peer.pods.empty:
                        classes = analysis.peer_classes(policy.namespace, peer)
                        by_set.setdefault(id(classes), (classes, []))[1].append((sources, rule))
        holders: dict[int, list[int]] = {}
        for key, (classes, _) in by_set.items():
            for target in classes:
                holders.setdefault(target, []).append(key)
        index = analysis.memo[("named-clients",)] = _ClientIndex({k: v[1] for k, v in by_set.items()}, holders)
    dst = analysis.classes[cid]
    held_by = tuple(index.holders.get(cid, ()))
    # Destinations in one peer set with the same ports share the clients, but for their own namespace's.
    memo_key = ("named-clients", held_by, frozenset(ports), dst.ports)
    clients = cast("list[tuple[str, tuple[int, ...]]] | None", analysis.memo.get(memo_key))
    if clients is None:
        clients = []
        for key in held_by:
            for sources, rule in index.rules[key]:
                if any(rule.allows_port(p, "TCP", dst.ports) for p in ports):
                    clients.append((analysis.classes[sources[0]].namespace, sources))
        analysis.memo[memo_key] = clients
    found: set[int] = set()
    for namespace, sources in clients:
        if namespace != dst.namespace:
            found.update(sources)
    return sorted(found)
