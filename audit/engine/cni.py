"""Which CNI runs, and whether it enforces NetworkPolicy, judged from DaemonSets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from audit.inventory import DaemonSet

Enforcement = Literal["yes", "no", "conditional"]
CniVerdict = Literal["enforced", "conditional", "not-enforced", "unknown"]


@dataclass(frozen=True)
class CniComponent:
    name: str
    namespace: str
    daemonset: str
    enforces: Enforcement
    evidence: str


@dataclass(frozen=True)
class CniReport:
    verdict: CniVerdict
    components: tuple[CniComponent, ...]
    summary: str


def _images(ds: DaemonSet) -> str:
    return " ".join(c.image.lower() for c in ds.containers)


def _args(ds: DaemonSet) -> list[str]:
    return [a for c in ds.containers for a in c.args]


def _aws_node(ds: DaemonSet) -> tuple[Enforcement, str]:
    agent = [c for c in ds.containers if "network-policy-agent" in c.name or "network-policy-agent" in c.image]
    if not agent:
        return "no", "aws-node runs without the aws-network-policy-agent container: the VPC CNI does not enforce NetworkPolicy"
    enabled = any(a.replace(" ", "") in ("--enable-network-policy=true",) for a in agent[0].args)
    if enabled:
        return "yes", "aws-network-policy-agent runs with --enable-network-policy=true"
    return "no", "aws-network-policy-agent is present but --enable-network-policy is not true: policies are not enforced"


def _kube_router(ds: DaemonSet) -> tuple[Enforcement, str]:
    if any(a.replace(" ", "") == "--run-firewall=false" for a in _args(ds)):
        return "no", "kube-router runs with --run-firewall=false: its policy firewall is off"
    return "yes", "kube-router's network policy firewall is on by default"


def _weave(ds: DaemonSet) -> tuple[Enforcement, str]:
    if any("weave-npc" in c.image or c.name == "weave-npc" for c in ds.containers):
        return "yes", "weave-npc (Weave's policy controller) runs in the DaemonSet"
    return "no", "weave-net runs without weave-npc: policies are not enforced"


def _fixed(enforces: Enforcement, evidence: str) -> Callable[[DaemonSet], tuple[Enforcement, str]]:
    return lambda ds: (enforces, evidence)


def _canal_like(ds: DaemonSet) -> bool:
    images = _images(ds)
    return "flannel" in images and "calico" in images


# (CNI name, recogniser, enforcement). The first recogniser that matches names the DaemonSet.
_RULES: tuple[tuple[str, Callable[[DaemonSet], bool], Callable[[DaemonSet], tuple[Enforcement, str]]], ...] = (
    ("canal", lambda ds: ds.name == "canal" or _canal_like(ds), _fixed("yes", "canal = flannel networking + Calico policy enforcement")),
    ("cilium", lambda ds: ds.name in ("cilium", "anetd") or any(
        ("cilium/cilium:" in c.image or "cilium/cilium@" in c.image or c.image.endswith("/cilium")) for c in ds.containers),
     _fixed("yes", "Cilium enforces NetworkPolicy (and CiliumNetworkPolicy)")),
    ("calico", lambda ds: ds.name == "calico-node" or "calico/node" in _images(ds), _fixed("yes", "calico-node enforces NetworkPolicy")),
    ("antrea", lambda ds: ds.name == "antrea-agent" or "antrea-agent" in _images(ds) or "antrea/antrea" in _images(ds),
     _fixed("yes", "Antrea enforces NetworkPolicy")),
    ("kube-router", lambda ds: "kube-router" in ds.name or "kube-router" in _images(ds), _kube_router),
    ("weave", lambda ds: ds.name == "weave-net" or "weave-kube" in _images(ds), _weave),
    ("aws-vpc-cni", lambda ds: ds.name == "aws-node" or "amazon-k8s-cni" in _images(ds), _aws_node),
    ("azure-npm", lambda ds: ds.name == "azure-npm" or "azure-npm" in _images(ds), _fixed("yes", "Azure Network Policy Manager enforces NetworkPolicy")),
    ("ovn-kubernetes", lambda ds: ds.name.startswith("ovnkube-node") or "ovn-kubernetes" in _images(ds),
     _fixed("yes", "OVN-Kubernetes enforces NetworkPolicy")),
    ("kube-ovn", lambda ds: ds.name == "kube-ovn-cni", _fixed("yes", "Kube-OVN enforces NetworkPolicy")),
    ("kube-network-policies", lambda ds: "kube-network-policies" in ds.name or "kube-network-policies" in _images(ds),
     _fixed("yes", "kube-network-policies enforces NetworkPolicy")),
    ("kindnet", lambda ds: ds.name == "kindnet" or "kindnetd" in _images(ds),
     _fixed("conditional", "kindnetd enforces NetworkPolicy only in recent releases (kind v0.24 and later); older ones ignore it")),
    ("flannel", lambda ds: "flannel" in ds.name or "flannel" in _images(ds),
     _fixed("no", "Flannel has no policy engine: NetworkPolicy objects are accepted and silently ignored")),
)


# Node annotation prefixes (read when the DaemonSets are not visible) -> (CNI, enforcement).
_NODE_HINTS: dict[str, tuple[str, Enforcement]] = {
    "flannel.alpha.coreos.com": ("flannel", "no"),
    "projectcalico.org": ("calico", "yes"),
    "io.cilium": ("cilium", "yes"),
    "network.cilium.io": ("cilium", "yes"),
    "kube-router.io": ("kube-router", "yes"),
    "node.antrea.io": ("antrea", "yes"),
    "k8s.ovn.org": ("ovn-kubernetes", "yes"),
}


def detect_cni(daemonsets: Sequence[DaemonSet], node_hints: Sequence[str] = ()) -> CniReport:
    """Recognise CNI DaemonSets (or, failing those, node annotations) and decide whether
    NetworkPolicy is enforced."""
    found: list[CniComponent] = []
    for ds in daemonsets:
        for name, recognise, judge in _RULES:
            if recognise(ds):
                enforces, evidence = judge(ds)
                found.append(CniComponent(name, ds.namespace, ds.name, enforces, evidence))
                break
    if not found:
        for hint in sorted(set(node_hints)):
            if hint in _NODE_HINTS:
                name, enforces = _NODE_HINTS[hint]
                found.append(CniComponent(name, "-", "(node annotations)", enforces,
                                          f"nodes carry {hint} annotations; the {name} DaemonSet itself was not visible"))
    verdicts = {c.enforces for c in found}
    names = ", ".join(sorted({c.name for c in found}))
    if "yes" in verdicts:
        enforcing = ", ".join(sorted({c.name for c in found if c.enforces == "yes"}))
        return CniReport("enforced", tuple(found), f"NetworkPolicy is enforced by {enforcing}")
    if "conditional" in verdicts:
        return CniReport("conditional", tuple(found), f"enforcement depends on the version or settings of {names}")
    if "no" in verdicts:
        return CniReport("not-enforced", tuple(found), f"{names} does not enforce NetworkPolicy: every policy is silently ignored")
    return CniReport("unknown", (), "no known CNI DaemonSet in the input: whether policies are enforced is unknown")


def enforcement_note(cni: CniReport | None, assumed: bool = False) -> str | None:
    """The line an answer starts with when the network may not do what the policies declare
    (None when the CNI enforces NetworkPolicy, or when no CNI report was made)."""
    if cni is None or cni.verdict == "enforced":
        return None
    if cni.verdict == "not-enforced":
        tail = ("; evaluated as if it did (--assume-enforced)" if assumed
                else ": what follows is what the policies declare; the network does not enforce it, every connection is open")
        return f"NOTE: {cni.summary}{tail}"
    if cni.verdict == "conditional":
        return f"NOTE: {cni.summary}: what follows is what the policies declare, assuming the network enforces them"
    return "NOTE: no known CNI in the input, so whether the network enforces NetworkPolicy is unknown: what follows is what the policies declare"
