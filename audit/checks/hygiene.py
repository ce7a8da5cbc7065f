"""Hygiene: policies that are invalid, select nothing, or refer to things that do not exist."""

from __future__ import annotations

from collections.abc import Iterable

from audit.checks.permissive import rules_in_effect
from audit.checks.registry import Context, Hit, check
from audit.engine.kinds import admin, clusternetwork
from audit.engine.kinds.networkpolicy import Peer, Policy


@check(
    "NP-HYG-001",
    "Policy selects no pod",
    "low",
    rationale="""A policy whose podSelector matches no pod protects nothing: usually a label typo,
    or labels that differ between the Helm chart and the running pods.""",
    remediation="Compare the podSelector with `kubectl get pods --show-labels` and fix the labels.",
)
def policy_selects_nothing(ctx: Context) -> Iterable[Hit]:
    for policy in ctx.audited_policies():
        if policy.pod_selector.empty or ctx.analysis.selected[policy.key]:
            continue
        yield Hit(policy.namespace, "NetworkPolicy", policy.name,
                  f"podSelector {policy.pod_selector} matches no pod in {policy.namespace}",
                  source=policy.source, key="spec.podSelector")


def _peer_matches_nothing(ctx: Context, policy: Policy, peer: Peer) -> str | None:
    if peer.ip_block is not None:
        return None
    analysis = ctx.analysis
    if peer.namespaces is not None:
        namespaces = analysis.namespaces_matching(peer)
        if not namespaces:
            return f"namespaceSelector {peer.namespaces} matches no namespace"
    else:
        namespaces = [policy.namespace]
    if peer.pods is None or peer.pods.empty:
        return None
    has_pods = any(analysis.classes_by_ns.get(ns) for ns in namespaces)
    if has_pods and not analysis.peer_classes(policy.namespace, peer):
        return f"podSelector {peer.pods} matches no pod in {', '.join(namespaces[:5])}"
    return None


@check(
    "NP-HYG-002",
    "Peer matches nothing",
    "low",
    rationale="""A from/to peer that matches no namespace or no pod allows nothing: the intended path
    is blocked, and the rule invites someone to "fix" it by widening it.""",
    remediation="Check the peer's labels against the namespaces and pods it should match.",
)
def peer_matches_nothing(ctx: Context) -> Iterable[Hit]:
    for policy, rule in rules_in_effect(ctx):
        field = "from" if rule.direction == "Ingress" else "to"
        for j, peer in enumerate(rule.peers):
            problem = _peer_matches_nothing(ctx, policy, peer)
            if problem:
                yield Hit(policy.namespace, "NetworkPolicy", policy.name, f"{rule.field}.{field}[{j}]: {problem}",
                          source=policy.source, key=f"{rule.field}.{field}[{j}]")


@check(
    "NP-HYG-003",
    "Empty label value in a selector",
    "medium",
    rationale="""A selector that requires a label to equal "" almost always comes from an unset
    template variable (`app: {{ .Values.appName }}`). It matches only pods carrying that label
    with an empty value, so the policy silently protects nothing it was meant to.""",
    remediation="Set the template value; render manifests in CI and fail on empty label values.",
)
def empty_label_value(ctx: Context) -> Iterable[Hit]:
    for policy in ctx.audited_policies():
        selectors = [("spec.podSelector", policy.pod_selector)]
        for d in policy.types:
            for rule in policy.rules(d):
                field = "from" if d == "Ingress" else "to"
                for j, peer in enumerate(rule.peers):
                    for name, sel in (("podSelector", peer.pods), ("namespaceSelector", peer.namespaces)):
                        if sel is not None:
                            selectors.append((f"{rule.field}.{field}[{j}].{name}", sel))
        for field, sel in selectors:
            for key in sel.empty_values:
                yield Hit(policy.namespace, "NetworkPolicy", policy.name,
                          f"{field}: label {key!r} must equal the empty string (an unset template value?)",
                          source=policy.source, key=f"{field}.{key}")


@check(
    "NP-HYG-004",
    "Named port that no selected pod defines",
    "medium",
    rationale="""A named port resolves against the destination pod's container ports. When no pod
    defines that name (with that protocol), the port entry matches nothing and the path is blocked.""",
    remediation="Use the container port's exact name (and protocol), or a port number.",
)
def undefined_named_port(ctx: Context) -> Iterable[Hit]:
    analysis = ctx.analysis
    for policy, rule in rules_in_effect(ctx):
        named = [p for p in rule.ports if isinstance(p.port, str)]
        if not named:
            continue
        if rule.direction == "Ingress":
            targets = analysis.selected[policy.key]
        elif rule.all_peers:
            targets = frozenset(c.id for c in analysis.real_classes())
        else:
            if any(p.ip_block is not None for p in rule.peers):
                continue
            targets = frozenset().union(*(analysis.peer_classes(policy.namespace, p) for p in rule.peers))
        if not targets:
            continue
        for j, port in enumerate(rule.ports):
            if not isinstance(port.port, str):
                continue
            if not any(cp.name == port.port and cp.protocol == port.protocol for cid in targets for cp in analysis.classes[cid].ports):
                whose = "selected pods" if rule.direction == "Ingress" else "destination pods"
                yield Hit(policy.namespace, "NetworkPolicy", policy.name,
                          f"{rule.field}.ports[{j}]: no {whose} define a {port.protocol} container port named {port.port!r}",
                          source=policy.source, key=f"{rule.field}.ports[{j}]")


@check(
    "NP-HYG-005",
    "Invalid NetworkPolicy",
    "high",
    rationale="""The API server rejects this policy, so it is not in force: whatever it was meant
    to restrict stays open. In a pipeline the apply fails, or worse, is skipped.""",
    remediation="Fix the named field; `kubectl apply --dry-run=server` shows the same error.",
)
def invalid_policy(ctx: Context) -> Iterable[Hit]:
    for parsed in ctx.analysis.parsed:
        if parsed.policy is not None or ctx.config.is_excluded(parsed.obj.namespace):
            continue
        yield Hit(parsed.obj.namespace, "NetworkPolicy", parsed.obj.name,
                  "; ".join(map(str, parsed.errors)), source=parsed.obj.source)


@check(
    "NP-HYG-006",
    "Rules ignored because policyTypes omits their direction",
    "medium",
    rationale="""When policyTypes is given, rules of a direction it does not list are ignored: an
    `egress:` section under `policyTypes: [Ingress]` restricts nothing.""",
    remediation="Add the direction to policyTypes, or delete the rules that are not meant to apply.",
)
def ignored_rules(ctx: Context) -> Iterable[Hit]:
    for policy in ctx.audited_policies():
        for direction in policy.ignored_rules:
            yield Hit(policy.namespace, "NetworkPolicy", policy.name,
                      f"spec.{direction.lower()} has rules but spec.policyTypes is {list(policy.types)}: they are ignored",
                      source=policy.source, key=direction)


@check(
    "NP-HYG-007",
    "Invalid AdminNetworkPolicy, ClusterNetworkPolicy, Cilium or Calico policy",
    "high",
    rationale="""The API server rejects this cluster-wide policy, so it is not in force: the denies it
    was meant to enforce across every namespace (metadata service, cross-tenant traffic) are absent.""",
    remediation="Fix the named field; `kubectl apply --dry-run=server` shows the same error.",
)
def invalid_admin_policy(ctx: Context) -> Iterable[Hit]:
    for compiled in ctx.analysis.kinds.values():
        for obj, errors in compiled.invalid:
            yield Hit(obj.namespace, obj.kind, obj.name, "; ".join(map(str, errors)), source=obj.source)


@check(
    "NP-HYG-008",
    "AdminNetworkPolicies share a priority",
    "medium",
    rationale="""When two policies of one admin tier have the same priority their relative order is
    undefined, so whichever rule wins a conflicting Allow/Deny may change between implementations
    or restarts.""",
    remediation="Give every AdminNetworkPolicy (and ClusterNetworkPolicy of a tier) a distinct priority.",
)
def equal_priorities(ctx: Context) -> Iterable[Hit]:
    by_priority: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for policy in ctx.analysis.extended:
        if policy.tier == "admin" or policy.kind == "ClusterNetworkPolicy":
            by_priority.setdefault((policy.tier, int(policy.order[0])), []).append((policy.kind, policy.order[1]))
    for (tier, priority), members in sorted(by_priority.items()):
        if len(members) > 1:
            names = [name for _, name in members]
            kinds = sorted({kind for kind, _ in members})
            yield Hit(None, "/".join(kinds), ", ".join(names), f"priority {priority} is shared by {', '.join(names)}"
                      + ("" if tier == "admin" else f" ({tier} tier)"), key=f"{tier}:{priority}")


@check(
    "NP-HYG-009",
    "Rules judged at layer 4 only, or not evaluated",
    "info",
    rationale="""Cilium HTTP/DNS/Kafka rules filter inside a port this audit can only see as open, and
    toFQDNs / toServices peers, AdminNetworkPolicy `nodes` peers and ClusterNetworkPolicy
    `domainNames` peers cannot be resolved from an inventory (they match nothing here). The
    verdicts for these rules are therefore approximations, listed so they are not mistaken for
    the whole story.""",
    remediation="Review these rules with `cilium policy trace` or Hubble; keep L3/L4 rules tight around them.",
)
def layer7_rules(ctx: Context) -> Iterable[Hit]:
    for compiled in (ctx.analysis.kinds.get(admin.KIND.name), ctx.analysis.kinds.get(clusternetwork.KIND.name)):
        for policy in compiled.native if compiled else ():
            missing = sorted({peer.unresolvable for d in ("Ingress", "Egress") for rule in policy.rules(d) for peer in rule.peers
                              if peer.unresolvable})
            if missing:
                yield Hit(None, policy.kind, policy.name, "; ".join(f"{m} peers match nothing here (node addresses and DNS names "
                                                                    "are not in the inventory)" if m in ("nodes", "domainNames") else m
                                                                    for m in missing), source=policy.source)
    cilium = ctx.analysis.kinds.get("Cilium")
    for obj, policies, _errors in (cilium.native if cilium else ()):
        notes = sorted({
            ("L7 rules allow their whole port here" if rule.l7 else "")
            or next((f"{peer.unresolvable} peers match nothing here" for peer in rule.peers if peer.unresolvable), "")
            for policy in policies for d in ("Ingress", "Egress") for rule in policy.rules(d)
        } - {""})
        if notes and not ctx.config.is_excluded(obj.namespace):
            yield Hit(obj.namespace, obj.kind, obj.name, "; ".join(notes), source=obj.source)
