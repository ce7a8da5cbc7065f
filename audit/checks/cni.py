"""CNI: NetworkPolicy is only as real as the plugin that enforces it."""

from __future__ import annotations

from collections.abc import Iterable

from audit.checks.registry import Context, Hit, check


def _cni_hit(ctx: Context, lead: str) -> Hit:
    components = tuple(f"{c.namespace}/{c.daemonset} ({c.name}): {c.evidence}" for c in ctx.cni.components)
    return Hit(None, "Cluster", "cni", f"{lead}: {ctx.cni.summary}", objects=components)


@check(
    "NP-CNI-001",
    "NetworkPolicy is not enforced by the CNI",
    "critical",
    rationale="""Flannel alone, or the AWS VPC CNI without its network policy agent, accepts
    NetworkPolicy objects and silently ignores them. Every policy in the cluster is decoration;
    the network is flat whatever the coverage numbers say.""",
    remediation="Run a CNI that enforces policy (Calico, Cilium, Antrea, ...), add Calico in policy-only mode (canal), or enable the cloud CNI's policy agent.",
)
def policies_not_enforced(ctx: Context) -> Iterable[Hit]:
    if ctx.cni.verdict == "not-enforced":
        n = len(ctx.analysis.policies_of(core=True))
        lead = f"policies are not enforced: {n} NetworkPolicies exist and none takes effect" if n else "policies would not be enforced"
        yield _cni_hit(ctx, lead)


@check(
    "NP-CNI-002",
    "CNI not identified",
    "info",
    rationale="""No DaemonSet of a known CNI was found, so whether NetworkPolicy is enforced cannot be
    judged (CIS 5.3.1 is not assessable). Common with manifest-only scans.""",
    remediation="Scan the live cluster, or include the CNI DaemonSet in the manifests, to assess enforcement.",
)
def cni_unknown(ctx: Context) -> Iterable[Hit]:
    if ctx.cni.verdict == "unknown":
        yield _cni_hit(ctx, "CNI unknown")


@check(
    "NP-CNI-003",
    "NetworkPolicy enforcement depends on CNI version or settings",
    "medium",
    rationale="""Some CNIs enforce NetworkPolicy only in certain versions or with an optional
    component switched on; the DaemonSet alone does not prove enforcement.""",
    remediation="Confirm enforcement with a connectivity test (a denied connection must fail), or switch on the policy component.",
)
def cni_conditional(ctx: Context) -> Iterable[Hit]:
    if ctx.cni.verdict == "conditional":
        yield _cni_hit(ctx, "enforcement is conditional")



def _keys(ctx: Context, kind: str) -> tuple[str, ...]:
    return ctx.analysis.uncredited.get(kind) or ctx.analysis.families.get(kind, ())


@check(
    "NP-CNI-004",
    "Policies of a kind the CNI does not enforce",
    "high",
    rationale="""A CiliumNetworkPolicy on a Calico cluster, a Calico policy on Cilium, or an
    AdminNetworkPolicy where the CNI does not implement the network-policy-api: the API server
    stores them, the dataplane never reads them. They look like controls and are not; this audit
    gives them no credit (coverage, reachability and connectivity leave them out).""",
    remediation="Rewrite them as a kind the CNI enforces (NetworkPolicy, or the CNI's own), or remove the leftovers; `--assume-enforced` evaluates them for planning.",
)
def kind_not_enforced(ctx: Context) -> Iterable[Hit]:
    for kind, why in sorted(ctx.analysis.unenforced.items()):
        keys = _keys(ctx, kind)
        if keys:
            yield Hit(None, kind, kind, f"{len(keys)} {kind} policies are present but not enforced ({', '.join(keys[:5])}"
                      f"{', ...' if len(keys) > 5 else ''}): {why}", objects=keys, key=kind)


@check(
    "NP-CNI-005",
    "Results assume the CNI enforces a policy kind",
    "info",
    rationale="""When the CNI is not identified, or enforces a kind only in some versions or
    settings, the results count that kind's policies as enforced. Said here so a reader knows
    which verdicts rest on that assumption.""",
    remediation="Scan the live cluster (or include the CNI DaemonSet) so enforcement can be judged, and confirm with a connectivity test.",
)
def kind_assumed(ctx: Context) -> Iterable[Hit]:
    for kind, why in sorted(ctx.analysis.assumed.items()):
        keys = _keys(ctx, kind)
        if keys:
            yield Hit(None, kind, kind, f"{len(keys)} {kind} policies counted as enforced: {why}", objects=keys, key=kind)


@check(
    "NP-CNI-006",
    "The CNI isolates every pod, selected by a policy or not",
    "info",
    rationale="""Cilium with enable-policy=always drops every connection no policy allows, in both
    directions, for every pod, even where no policy selects it: coverage, reachability and the
    other answers count that isolation. A pod with no allow for DNS cannot resolve names.""",
    remediation="Nothing to fix if intended; make sure every workload has the allows it needs (DNS included).",
)
def cni_isolates_every_pod(ctx: Context) -> Iterable[Hit]:
    for component in ctx.cni.isolates_all:
        yield Hit(None, "Cluster", "cni", f"{component.isolates_all}: {component.title or component.name} isolates every pod in "
                  "both directions; only what a policy allows passes", objects=(str(component.isolates_all),), key=component.name)
