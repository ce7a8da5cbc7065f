"""Hygiene: policies of every kind that are invalid, select nothing, or refer to things that do not exist."""

from __future__ import annotations

from collections.abc import Iterable

from audit.checks.permissive import hit, rules_in_effect
from audit.checks.registry import Context, Hit, check
from audit.engine.analysis import Analysis
from audit.engine.compiled import CompiledPolicy
from audit.engine.ports import PROTOCOLS
from audit.engine.selection import Matcher, PodSelection


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
        sel = policy.subject.selection
        if ctx.analysis.selected(policy):
            continue
        namespaces = ctx.analysis.namespaces_of(sel)
        if sel.namespaces is not None and not sel.namespaces.empty and not namespaces:
            yield hit(policy, f"{policy.subject.text} matches no namespace", policy.subject.field)
        elif not sel.every_pod:
            yield hit(policy, f"{policy.subject.text} matches no pod in {', '.join(namespaces[:5]) or 'any namespace'}", policy.subject.field)


def selection_problem(analysis: Analysis, sel: PodSelection) -> str | None:
    """Why a peer's selection matches nothing (no namespace, or no pod where there are pods), or None."""
    namespaces = analysis.namespaces_of(sel)
    if sel.namespaces is not None and not sel.namespaces.empty and not namespaces:
        return "its namespace selector matches no namespace"
    if sel.every_pod:
        return None
    has_pods = any(analysis.classes_by_ns.get(ns) for ns in namespaces)
    if has_pods and not analysis.select(sel):
        return f"its pod selector matches no pod in {', '.join(namespaces[:5])}"
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
        for peer in rule.peers:
            if peer.pods is None or peer.relative:
                continue
            problem = selection_problem(ctx.analysis, peer.pods)
            if problem:
                yield hit(policy, f"{peer.field} ({peer.text}): {problem}", peer.field)


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
        for field, matcher in _selectors(policy):
            for key in matcher.empty_values:
                yield hit(policy, f"{field}: label {key!r} must equal the empty string (an unset template value?)", field, key=f"{field}.{key}")


def _selectors(policy: CompiledPolicy) -> list[tuple[str, Matcher]]:
    """Every selector the policy writes, with its field: the subject's, then its rules' peers'."""
    sel = policy.subject.selection
    out: list[tuple[str, Matcher]] = [(policy.subject.field, m) for m in (sel.namespaces, sel.pods) if m is not None]
    for rule in policy.rules:
        for peer in rule.peers:
            out += peer.selectors
    return out


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
        named = [p for p in rule.ports or () if isinstance(p.port, str)]
        if not named:
            continue
        if rule.direction == "Ingress":
            targets = analysis.selected(policy)
        elif rule.all_peers:
            targets = frozenset(c.id for c in analysis.real_classes())
        else:
            if any(p.names_addresses for p in rule.peers):
                continue
            found = [analysis.peer_classes(p) for p in rule.peers]
            if any(f is None for f in found):
                continue
            targets = frozenset().union(*(f for f in found if f is not None))
        if not targets:
            continue
        for port in named:
            if not any(cp.name == port.port and cp.protocol in port.protocols for cid in targets for cp in analysis.classes[cid].ports):
                whose = "selected pods" if rule.direction == "Ingress" else "destination pods"
                protocol = f"{'/'.join(port.protocols)} " if set(port.protocols) != set(PROTOCOLS) else ""
                yield hit(policy, f"{port.field}: no {whose} define a {protocol}container port named {port.port!r}", port.field)


@check(
    "NP-HYG-005",
    "Invalid NetworkPolicy",
    "high",
    rationale="""The API server rejects this policy, so it is not in force: whatever it was meant
    to restrict stays open. In a pipeline the apply fails, or worse, is skipped.""",
    remediation="Fix the named field; `kubectl apply --dry-run=server` shows the same error.",
)
def invalid_policy(ctx: Context) -> Iterable[Hit]:
    yield from _invalid(ctx, core=True)


def _invalid(ctx: Context, core: bool) -> Iterable[Hit]:
    for bad in ctx.analysis.invalid:
        obj = bad.obj
        if bad.core != core or (obj.namespace is not None and ctx.config.is_excluded(obj.namespace)):
            continue
        yield Hit(obj.namespace, obj.kind, obj.name, "; ".join(map(str, bad.errors)), source=obj.source)


@check(
    "NP-HYG-006",
    "Rules ignored because the policy's types omit their direction",
    "medium",
    rationale="""When a policy's types are given (NetworkPolicy's policyTypes, Calico's types), rules of a
    direction they do not list are ignored: an `egress:` section under `policyTypes: [Ingress]`
    restricts nothing.""",
    remediation="Add the direction to the policy's types, or delete the rules that are not meant to apply.",
)
def ignored_rules(ctx: Context) -> Iterable[Hit]:
    for policy in ctx.audited_policies():
        for direction, why in policy.ignored:
            yield hit(policy, why, f"spec.{direction.lower()}", key=direction)


@check(
    "NP-HYG-007",
    "Invalid AdminNetworkPolicy, ClusterNetworkPolicy, Cilium or Calico policy",
    "high",
    rationale="""The API server rejects this cluster-wide policy, so it is not in force: the denies it
    was meant to enforce across every namespace (metadata service, cross-tenant traffic) are absent.""",
    remediation="Fix the named field; `kubectl apply --dry-run=server` shows the same error.",
)
def invalid_admin_policy(ctx: Context) -> Iterable[Hit]:
    yield from _invalid(ctx, core=False)


@check(
    "NP-HYG-008",
    "Admin-tier policies share a priority",
    "medium",
    rationale="""When two policies of one admin tier have the same priority their relative order is
    undefined, so whichever rule wins a conflicting Allow/Deny may change between implementations
    or restarts.""",
    remediation="Give every AdminNetworkPolicy (and ClusterNetworkPolicy of a tier) a distinct priority.",
)
def equal_priorities(ctx: Context) -> Iterable[Hit]:
    by_priority: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for entry in ctx.analysis.entries:
        if entry.layer.priority is not None:
            by_priority.setdefault((entry.tier, entry.layer.priority), []).append((entry.kind, entry.policy.name))
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
    for policy in ctx.audited_policies():
        notes = list(policy.notes)
        for rule in policy.rules:
            notes += [f"{limit}: judged at layer 4 only" for limit in rule.limits]
            notes += [f"{peer.field}: {peer.unresolvable} matches nothing here (not in the inventory)"
                      for peer in rule.peers if peer.unresolvable is not None]
        if notes:
            yield hit(policy, "; ".join(dict.fromkeys(notes)), "")
