"""Over-permissive rules of every policy kind: policies that look strict and allow far more than intended.

Every check reads the compiled rules (``audit.engine.compiled``), so a rule that admits every
namespace is found whether it says ``namespaceSelector: {}``, ``fromEntities: [cluster]``,
``namespaceSelector: all()`` or ``namespaces: {}``; each finding names the kind, the object and
the field in the kind's own terms. Deny rules are never permissive; a Pass rule is judged by
where it hands its traffic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from audit.checks import fixes
from audit.checks.fixes import METADATA_IP
from audit.checks.registry import Context, Hit, check
from audit.config import BROAD_SELECTOR_ANNOTATION
from audit.engine.analysis import PodClass, port_in
from audit.engine.compiled import CompiledPeer, CompiledPolicy, CompiledRule


def rules_in_effect(ctx: Context) -> list[tuple[CompiledPolicy, CompiledRule]]:
    """Every rule in effect, of every valid policy of every kind that takes part (audited namespaces),
    listed once a run: a dozen checks walk them."""
    found: list[tuple[CompiledPolicy, CompiledRule]] | None = ctx.memo.get("rules_in_effect")
    if found is None:
        found = ctx.memo["rules_in_effect"] = [(policy, rule) for policy in ctx.audited_policies() for rule in policy.rules]
    return found


def opens(ctx: Context, policy: CompiledPolicy, rule: CompiledRule) -> str | None:
    """Whether a rule opens something: "" for an Allow; for a Pass that hands its traffic to tiers
    that leave some pod it selects open, a note saying so; None otherwise (Deny never opens)."""
    if rule.action == "Allow":
        return ""
    if rule.action != "Pass":
        return None
    analysis = ctx.analysis
    tier = policy.layers[0].tier
    chosen = [c for c in analysis.selected(policy) if analysis.classes[c].governed]
    left_open = [c for c in chosen if not analysis.closed_below(c, rule.direction, tier)]
    if not left_open:
        return None
    return f" (Pass: the tiers after {tier} leave {len(left_open)} of {len(chosen)} pod group(s) it selects open, so it allows there)"


def opening_rules(ctx: Context) -> Iterator[tuple[CompiledPolicy, CompiledRule, str]]:
    """The rules that open something (see ``opens``), with the note that says why a Pass does."""
    for policy, rule in rules_in_effect(ctx):
        note = opens(ctx, policy, rule)
        if note is not None:
            yield policy, rule, note


def where(policy: CompiledPolicy) -> str:
    """The scope a policy's subject lives in: its namespace, or the cluster."""
    return policy.namespace if policy.namespace is not None else "the cluster"


def hit(policy: CompiledPolicy, message: str, field: str, accepted: str | None = None, overridden: str | None = None,
        fix_yaml: str | None = None, key: str | None = None) -> Hit:
    """A finding on a field of a policy object, named as its kind names them (``key``, what tells two
    findings of one check on one object apart, is the field unless given)."""
    return Hit(policy.namespace, policy.display_kind, policy.name, message, source=policy.source, key=field if key is None else key,
               accepted=accepted, overridden=overridden, fix_yaml=fix_yaml, field=field or None)


def _sides(rule: CompiledRule) -> tuple[str, str]:
    return ("sources", "to") if rule.direction == "Ingress" else ("destinations", "from")


def _every_port(rule: CompiledRule) -> str:
    if rule.every_protocol_port:
        return "all ports"
    protocols = sorted({p for port in rule.ports or () for p in port.protocols})
    return f"every {'/'.join(protocols)} port"


def _broad(policy: CompiledPolicy) -> str | None:
    return policy.annotation(BROAD_SELECTOR_ANNOTATION)


@check(
    "NP-PERM-001",
    "Rule allows all peers on all ports",
    "high",
    rationale="""A rule that names no peer and no port (NetworkPolicy's `{}`, a Calico rule with only
    an action, a Cilium `fromEntities: [all]` without toPorts) allows every source (destination)
    on every port for the pods the policy selects: the policy isolates nothing in that direction.
    A rule with every peer but a port list is narrower and not reported here; Cilium's empty rule
    `{}` allows nothing and is not reported either.""",
    remediation="Name the peers and the ports the workload needs.",
)
def allow_all_rule(ctx: Context) -> Iterable[Hit]:
    for policy, rule, note in opening_rules(ctx):
        if rule.names_every_peer and rule.every_port:
            peers, prep = _sides(rule)
            n = len(ctx.analysis.selected(policy))
            yield hit(policy, f"{rule.field}: allows all {peers} on {_every_port(rule)} {prep} the pods selected by {policy.subject.text} "
                              f"({n} pod group{'s' if n != 1 else ''}){note}", rule.field)


@check(
    "NP-PERM-002",
    "Empty subject selector in a policy that allows traffic",
    "high",
    rationale="""A subject selector that selects everything (`podSelector: {}`, an empty matchLabels
    left by an unset template variable, `endpointSelector: {}`, Calico's `all()`, an admin policy's
    `namespaces: {}`) applies every allow rule of the policy to every pod of its namespace (of the
    cluster, for a cluster-wide kind), not just the intended workload (the "allow all that
    wasn't" war story). Namespace-wide DNS egress is the documented exception and is not reported.""",
    remediation=f"Select the intended workload's labels, or annotate the policy with {BROAD_SELECTOR_ANNOTATION}: <reason> when the breadth is intended.",
)
def empty_pod_selector(ctx: Context) -> Iterable[Hit]:
    opening: dict[int, list[CompiledRule]] = {}
    for policy, rule, _note in opening_rules(ctx):
        if not rule.dns_only:
            opening.setdefault(id(policy), []).append(rule)
    for policy in ctx.audited_policies():
        rules = opening.get(id(policy))
        if not rules or not policy.subject.whole_scope:
            continue
        missing = f" ({policy.subject.field} is missing, which the API reads as {{}})" if policy.subject.missing else ""
        what = "; ".join(r.text for r in rules[:3])
        scope = f"every pod in {policy.namespace}" if policy.namespace is not None else "every pod of every namespace"
        narrowed = fixes.narrowed_selector(ctx.analysis, policy)
        yield hit(policy, f"{policy.subject.text} selects {scope}{missing}: these rules apply to all of them: {what}", policy.subject.field,
                  accepted=_broad(policy), fix_yaml=fixes.dump(*narrowed) if narrowed else None)


@check(
    "NP-PERM-003",
    "Peer matches every namespace",
    "medium",
    rationale="""A peer that reaches into every namespace (`namespaceSelector: {}`, Cilium's `cluster`
    or `all` entity or a clusterwide endpoint selector, Calico's `namespaceSelector: all()` or a
    global selector, an admin policy's `namespaces: {}`) matches namespaces created later by
    anyone; without a pod selector beside it the peer is every pod of the cluster.""",
    remediation="Select the namespaces by label (e.g. kubernetes.io/metadata.name: <name>) together with the client pods' labels.",
)
def empty_namespace_selector(ctx: Context) -> Iterable[Hit]:
    for policy, rule, note in opening_rules(ctx):
        if rule.dns_only:
            continue
        for peer in rule.peers:
            if peer.every_namespace:
                sel = peer.pods
                scope = "every pod of every namespace" if sel is None or sel.every_pod else f"pods [{sel.pods}] in every namespace"
                yield hit(policy, f"{peer.field} ({peer.text}) matches {scope}{note}", peer.field, accepted=_broad(policy))


@check(
    "NP-PERM-004",
    "Peer covers the whole address space",
    "high",
    rationale="""A peer that names every address (ipBlock 0.0.0.0/0 or ::/0 without except, Cilium's
    `world` or `all` entity or a /0 CIDR, a Calico /0 net, an admin policy's /0 network) admits the
    internet, private ranges, the cloud metadata service and, on many CNIs, pod IPs too.""",
    remediation="Narrow the CIDR, or except the private ranges (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) and 169.254.0.0/16.",
)
def ip_block_everything(ctx: Context) -> Iterable[Hit]:
    for policy, rule, note in opening_rules(ctx):
        for peer in rule.peers:
            if peer.whole_address_space:
                yield hit(policy, f"{peer.field} ({peer.text}) admits every address on {rule.port_text}{note}", peer.field)


@check(
    "NP-PERM-005",
    "Rule without ports allows every port",
    "low",
    rationale="""A rule that names peers but no ports allows every port (of every protocol, or of the
    one it names) to (from) those peers: debug ports, admin interfaces and sidecars included.""",
    remediation="List the ports the workload needs in the rule.",
)
def rule_without_ports(ctx: Context) -> Iterable[Hit]:
    for policy, rule, note in opening_rules(ctx):
        if rule.every_port and rule.peers and not rule.names_every_peer:
            word = "from" if rule.direction == "Ingress" else "to"
            yield hit(policy, f"{rule.field}: no ports: allows {_every_port(rule).replace('all ports', 'every port')} {word} "
                              f"{' OR '.join(p.text for p in rule.peers)}{note}", rule.field)


@check(
    "NP-PERM-006",
    "Separate pod and namespace peers (OR where AND was likely meant)",
    "medium",
    rationale="""`- podSelector: …` and `- namespaceSelector: …` as two list items are ORed: the
    rule admits the pods in its own namespace AND every pod of the selected namespaces. Written
    as one item (no dash before namespaceSelector) they are ANDed, which is usually what was meant.
    The same shape in any kind that lists peers (two Cilium endpoint selectors, one naming only
    pods and one only namespaces) is reported alike.""",
    remediation="Put the pod and the namespace selector in the same peer if only those pods of those namespaces should match.",
)
def or_where_and_meant(ctx: Context) -> Iterable[Hit]:
    for policy, rule, note in opening_rules(ctx):
        pod_only = [p for p in rule.peers if p.pods is not None and p.pods.namespace is not None and not p.pods.every_pod
                    and p.pods.namespaces is None and not p.blocks]
        ns_only = [p for p in rule.peers if p.pods is not None and p.pods.namespace is None and p.pods.namespaces is not None
                   and not p.pods.namespaces.empty and p.pods.every_pod and not p.blocks]
        if pod_only and ns_only:
            yield hit(policy, f"{pod_only[0].field} ({pod_only[0].text}) and {ns_only[0].field} ({ns_only[0].text}) are "
                              f"separate peers and are ORed: every pod of the selected namespaces matches{note}", rule.field)


@check(
    "NP-PERM-007",
    "Egress reaches the cloud metadata service",
    "high",
    rationale="""169.254.169.254 serves cloud credentials on port 80. It is outside the RFC 1918
    ranges, so rules that allow "everything but private ranges" still reach it, and a pod that
    reaches it can often assume the node's cloud identity.""",
    remediation="Except 169.254.169.254/32 (or 169.254.0.0/16) from the rule's addresses, or deny it cluster-wide with an admin-tier policy.",
)
def egress_to_metadata(ctx: Context) -> Iterable[Hit]:
    analysis = ctx.analysis
    narrowed: dict[int, str | None] = {}

    def fix(policy: CompiledPolicy) -> str | None:
        if id(policy) not in narrowed:
            doc = fixes.without_metadata(analysis, policy)
            narrowed[id(policy)] = fixes.dump(doc) if doc else None
        return narrowed[id(policy)]

    for policy, rule, note in opening_rules(ctx):
        if rule.direction != "Egress" or not port_in(analysis.rule_ports(rule, None), 80, "TCP"):
            continue
        overridden = _admin_denies_metadata(ctx, policy)
        if rule.names_every_peer:
            yield hit(policy, f"{rule.field}: allows egress to any address on port 80, including {METADATA_IP}{note}", rule.field,
                      overridden=overridden, fix_yaml=fix(policy))
            continue
        for peer in rule.peers:
            if peer.names_addresses and analysis.peer_names(peer, None, METADATA_IP):
                yield hit(policy, f"{peer.field} ({peer.text}) contains {METADATA_IP} (cloud metadata){note}", peer.field,
                          overridden=overridden, fix_yaml=fix(policy))


def _admin_denies_metadata(ctx: Context, policy: CompiledPolicy) -> str | None:
    """The admin-tier rule that denies every pod ``policy`` selects the metadata service on
    80/TCP (the flagged rule then allows nothing there), or None."""
    analysis = ctx.analysis
    chosen = [cid for cid in analysis.selected(policy) if analysis.classes[cid].governed]
    rules = set()
    for cid in chosen:
        decided = analysis.allowed(cid, METADATA_IP, 80, "TCP").egress.decided
        if decided is None or decided.tier != "admin" or decided.action != "Deny":
            return None
        rules.add(decided.rule)
    return ", ".join(sorted(rules)) + " denies it for every pod the policy selects" if rules else None


def sensitive_ports_of(ctx: Context, cls: PodClass) -> frozenset[int]:
    """Data ports a pod class serves: declared container ports, or single ports that ingress rules
    of the policies selecting it name."""
    known: _SensitivePorts | None = ctx.memo.get("sensitive_ports_of")
    if known is None:
        known = ctx.memo["sensitive_ports_of"] = _SensitivePorts(frozenset(ctx.config.sensitive_ports), {}, {})
    hit = known.by_class.get(cls.id)
    if hit is None:
        sensitive = known.ports
        acting = ctx.analysis.policies_acting_on(cls.id)  # shared by the classes the same policies select
        named = known.by_policies.get(id(acting))
        if named is None:
            named = known.by_policies[id(acting)] = frozenset(
                p.port for policy in acting for rule in policy.rules_in("Ingress") for p in rule.ports or ()
                if isinstance(p.port, int) and p.end is None and p.port in sensitive)
        declared = [p.port for p in cls.ports if p.port in sensitive]
        hit = known.by_class[cls.id] = named.union(declared) if declared else named
    return hit


class _SensitivePorts(NamedTuple):
    """`sensitive_ports_of`'s memo for one run: asked per class by two checks."""

    ports: frozenset[int]
    by_policies: dict[int, frozenset[int]]  # per tuple of acting policies (the analysis shares them), by identity
    by_class: dict[int, frozenset[int]]


def _broad_peer_reasons(ctx: Context, rule: CompiledRule, own_ns: str) -> list[str]:
    """How a rule admits whole other namespaces or outside addresses (narrow pod peers are fine)."""
    if rule.names_every_peer:
        return [f"{rule.field} admits all sources"]
    reasons = []
    for peer in rule.peers:
        reasons += _broad_peer(ctx, peer, own_ns)
    return reasons


def _broad_peer(ctx: Context, peer: CompiledPeer, own_ns: str) -> list[str]:
    if peer.unresolvable is not None or peer.relative:
        return []
    if peer.pods is None:
        return [f"{peer.field} admits addresses {', '.join(map(str, peer.blocks))}"] if peer.blocks else []
    sel = peer.pods
    if sel.every_namespace:
        return [f"{peer.field} admits every namespace"]
    if sel.every_pod and sel.namespace is None:
        others = [n for n in ctx.analysis.namespaces_of(sel) if n != own_ns]
        if others:
            return [f"{peer.field} admits all pods of namespace{'s' if len(others) > 1 else ''} {', '.join(others[:5])}"]
    return []


@check(
    "NP-PERM-008",
    "Sensitive port reachable from whole other namespaces",
    "high",
    rationale="""Databases, caches, brokers and etcd should accept connections only from the named
    workloads that use them. A data port open to whole namespaces (or to every pod, when the
    pod is not isolated) is how a compromised staging pod reaches a production database.""",
    remediation="Allow the data port only from a peer naming the client workload's namespace AND pods.",
)
def sensitive_port_exposure(ctx: Context) -> Iterable[Hit]:
    analysis = ctx.analysis
    notes: dict[int, str | None] = {}  # per rule: many classes share a policy
    for ns in ctx.audited_namespaces():
        for cls in ctx.governed_classes(ns.name):
            ports = sensitive_ports_of(ctx, cls)
            if not ports:
                continue
            reasons: list[str] = []
            isolated = analysis.is_isolated(cls.id, "Ingress")
            if not isolated:
                reasons.append("not isolated for ingress: every pod of every namespace can connect")
            else:
                for policy in analysis.policies_acting_on(cls.id):
                    for rule in policy.rules_in("Ingress"):
                        if id(rule) not in notes:
                            notes[id(rule)] = opens(ctx, policy, rule)
                        note = notes[id(rule)]
                        if note is None or (rule.own is not None and not analysis.peer_names(rule.own, None, cls.id)):
                            continue
                        if any(port_in(analysis.rule_ports(rule, cls.ports), port, "TCP") for port in ports):
                            reasons += [f"{policy.key} {r}{note}" for r in _broad_peer_reasons(ctx, rule, ns.name)]
            if reasons:
                workloads = cls.refs
                fix = None
                if not isolated:
                    written = ctx.fixes.sensitive_ports_yaml(analysis, cls.id, tuple(sorted(ports)),
                                                             analysis.clients.of(cls.id, frozenset(ports)))
                    fix = (f"# Closes {', '.join(map(str, sorted(ports)))} to every other namespace"
                           + (" but the clients whose egress policies name it" if written[1] else "")
                           + ": add each client workload (a namespaceSelector AND podSelector peer) before applying.\n"
                           + written[0]) if written else None
                yield Hit(ns.name, "Workload", cls.workloads[0].name,
                          f"port{'s' if len(ports) > 1 else ''} {', '.join(map(str, sorted(ports)))}: {'; '.join(reasons)}",
                          objects=workloads, source=cls.workloads[0].source, key=cls.describe(), fix_yaml=fix)
