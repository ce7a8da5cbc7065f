"""Which CNI runs, and what it enforces, judged from its own settings and version.

Each CNI is one module here that recognises its agent (a DaemonSet), names the objects it reads
its settings from (ConfigMaps, the Calico operator's Installation, a controller's Deployment:
sources read exactly these, live by name) and judges from them and its version whether it
enforces NetworkPolicy, which switches the other policy kinds need are on, and whether its
policy engine runs at all. Kinds declare the versions and switches they need
(``audit.engine.kinds.base.Support``); ``audit.engine.enforcement`` puts the two together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from audit.engine.cni import antrea, aws, calico, cilium, kube_network_policies, ovn
from audit.engine.cni.model import CniComponent, CniReport, CniVerdict, Enforcement, Setting, Switch
from audit.engine.cni.reading import ConfigRef, Reader, arg_value
from audit.engine.cni.versions import image_version
from audit.inventory import DaemonSet, Inventory

__all__ = ["AGENTS", "ENV_NAMES", "Agent", "CniComponent", "CniReport", "CniVerdict", "ConfigRef", "Enforcement", "Setting", "Switch",
           "config_refs", "detect_cni", "enforcement_note", "kept_keys", "named_reads"]


@dataclass(frozen=True)
class Agent:
    """A CNI as this audit knows it: how to recognise its agent, what it reads, how to judge it."""

    name: str
    title: str
    recognise: Callable[[DaemonSet], bool]
    judge: Callable[[DaemonSet, Reader], CniComponent]
    reads: tuple[ConfigRef, ...] = ()
    env: tuple[str, ...] = ()
    """Environment variables of its containers that hold settings (sources keep only these)."""
    switches: Mapping[str, str] = field(default_factory=dict)
    """Switch name -> what it turns on (for the README's enforcement table)."""
    decided_by: str = ""
    """What decides whether it enforces NetworkPolicy, for the README."""


def _simple(name: str, title: str, judge: Callable[[DaemonSet], tuple[Enforcement, str]]) -> Callable[[DaemonSet, Reader], CniComponent]:
    def judged(ds: DaemonSet, _reader: Reader) -> CniComponent:
        enforces, evidence = judge(ds)
        _version, text, source = image_version(ds.containers[0].image) if ds.containers else (None, "", "no container")
        return CniComponent(name, ds.namespace, ds.name, enforces, evidence, text or None, source, title=title)
    return judged


def _images(ds: DaemonSet) -> str:
    return " ".join(c.image.lower() for c in ds.containers)


def _kube_router(ds: DaemonSet) -> tuple[Enforcement, str]:
    for c in ds.containers:
        value = arg_value(c, "run-firewall", boolean=True)
        if value is not None and value.lower() in ("false", "0", "f"):
            return "no", f"{ds.namespace}/DaemonSet {ds.name} container {c.name} --run-firewall={value}: its policy firewall is off"
    return "yes", "kube-router's network policy firewall is on (--run-firewall defaults to true)"


def _weave(ds: DaemonSet) -> tuple[Enforcement, str]:
    if any("weave-npc" in c.image or c.name == "weave-npc" for c in ds.containers):
        return "yes", "weave-npc (Weave's policy controller) runs in the DaemonSet"
    return "no", "weave-net runs without weave-npc: policies are not enforced"


def _fixed(enforces: Enforcement, evidence: str) -> Callable[[DaemonSet], tuple[Enforcement, str]]:
    return lambda ds: (enforces, evidence)


# The first agent that recognises a DaemonSet names it (Canal before Calico and Flannel;
# kube-network-policies before Flannel, whose chart can carry it as a container).
AGENTS: tuple[Agent, ...] = (
    Agent("canal", "Canal", calico.recognise_canal, calico.judge_canal, calico.READS, calico.ENV, calico.SWITCHES,
          "Calico's policy engine on Flannel's network: as Calico"),
    Agent("cilium", "Cilium", cilium.recognise, cilium.judge, cilium.READS, cilium.ENV, cilium.SWITCHES,
          "cilium-config enable-policy (never: nothing), policy-audit-mode, enable-k8s-networkpolicy; always: every pod isolated"),
    Agent("calico", "Calico", calico.recognise, calico.judge, calico.READS, calico.ENV, calico.SWITCHES,
          "DATASTORE_TYPE on calico-node (kubernetes; etcdv3, the default, needs kube-controllers' policy controller)"),
    Agent("antrea", "Antrea", antrea.recognise, antrea.judge, antrea.READS, (), antrea.SWITCHES, "always"),
    Agent("kube-router", "kube-router", lambda ds: "kube-router" in ds.name or "kube-router" in _images(ds),
          _simple("kube-router", "kube-router", _kube_router), decided_by="--run-firewall (default true)"),
    Agent("weave", "Weave Net", lambda ds: ds.name == "weave-net" or "weave-kube" in _images(ds), _simple("weave", "Weave Net", _weave),
          decided_by="the weave-npc container"),
    Agent("aws-vpc-cni", "AWS VPC CNI", aws.recognise, aws.judge, aws.READS, (),
          decided_by="aws-eks-nodeagent --enable-network-policy and amazon-vpc-cni enable-network-policy-controller, both \"true\""),
    Agent("azure-npm", "Azure Network Policy Manager", lambda ds: ds.name == "azure-npm" or "azure-npm" in _images(ds),
          _simple("azure-npm", "Azure NPM", _fixed("yes", "Azure Network Policy Manager enforces NetworkPolicy")), decided_by="always"),
    Agent("ovn-kubernetes", "OVN-Kubernetes", ovn.recognise_ovnk, ovn.judge_ovnk, ovn.OVNK_READS, ovn.OVNK_ENV, ovn.OVNK_SWITCHES,
          "always"),
    Agent("kube-ovn", "Kube-OVN", ovn.recognise_kube_ovn, ovn.judge_kube_ovn, ovn.KUBE_OVN_READS, (), ovn.KUBE_OVN_SWITCHES,
          "kube-ovn-controller --enable-np (default true)"),
    Agent("kube-network-policies", "kube-network-policies", kube_network_policies.recognise, kube_network_policies.judge,
          switches=kube_network_policies.SWITCHES, decided_by="always (also inside Flannel's DaemonSet)"),
    Agent("kindnet", "kindnet", lambda ds: ds.name == "kindnet" or "kindnetd" in _images(ds),
          _simple("kindnet", "kindnet", _fixed("conditional", "kindnetd enforces NetworkPolicy only in recent releases (kind v0.24 and later); "
                                                            "older ones ignore it")), decided_by="its release (kind v0.24 and later)"),
    Agent("flannel", "Flannel", lambda ds: "flannel" in ds.name or "flannel" in _images(ds),
          _simple("flannel", "Flannel", _fixed("no", "Flannel has no policy engine: NetworkPolicy objects are accepted and silently ignored")),
          decided_by="never"),
)

ENV_NAMES: frozenset[str] = frozenset(name for a in AGENTS for name in a.env)
"""Every environment variable a CNI reads a setting from: sources keep these, never the rest."""

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


def _recognised(daemonsets: Sequence[DaemonSet]) -> Iterator[tuple[Agent, DaemonSet]]:
    for ds in daemonsets:
        if ds.kind != "DaemonSet":
            continue
        agent = next((a for a in AGENTS if a.recognise(ds)), None)
        if agent is not None:
            yield agent, ds


def config_refs(daemonsets: Sequence[DaemonSet]) -> list[tuple[ConfigRef, str | None]]:
    """What a live scan gets by name for the CNIs found: (object, namespace), each once."""
    out: dict[tuple[str, str | None, str], tuple[ConfigRef, str | None]] = {}
    for agent, ds in _recognised(daemonsets):
        for ref in agent.reads:
            namespace = (ref.namespace or ds.namespace) if ref.namespaced else None
            out.setdefault((ref.kind, namespace, ref.name), (ref, namespace))
    return list(out.values())


def named_reads() -> dict[tuple[str, str], set[str]]:
    """(API group, resource) -> the names of the objects some CNI reads its settings from: what the
    scanner's role grants get on, by name."""
    out: dict[tuple[str, str], set[str]] = {}
    for agent in AGENTS:
        for ref in agent.reads:
            out.setdefault((ref.group, ref.plural), set()).add(ref.name)
    return out


def kept_keys(kind: str, name: str) -> tuple[ConfigRef, ...]:
    """The declarations of the objects named ``name`` of ``kind`` that some CNI reads (manifests keep these)."""
    return tuple(ref for a in AGENTS for ref in a.reads if ref.kind == kind and ref.name == name)


def detect_cni(inventory: Inventory) -> CniReport:
    """Recognise the CNIs' agents (or, failing those, node annotations) and judge each from its
    settings and version."""
    reader = Reader(inventory)
    found = [agent.judge(ds, reader) for agent, ds in _recognised(inventory.daemonsets)]
    if not found:
        for hint in sorted(set(inventory.node_hints)):
            if hint in _NODE_HINTS:
                name, enforces = _NODE_HINTS[hint]
                found.append(CniComponent(name, "-", "(node annotations)", "conditional" if enforces == "yes" else enforces,
                                          f"nodes carry {hint} annotations; the {name} DaemonSet and its settings were not visible",
                                          version_source="the DaemonSet was not visible", policy=Switch("unknown", reason="settings not read")))
    verdicts = {c.enforces for c in found}
    names = ", ".join(sorted({c.name for c in found}))
    if "yes" in verdicts:
        enforcing = ", ".join(sorted({c.name for c in found if c.enforces == "yes"}))
        isolating = [f"; {c.isolates_all}: every pod is isolated both ways" for c in found if c.isolates_all is not None]
        return CniReport("enforced", tuple(found), f"NetworkPolicy is enforced by {enforcing}{''.join(isolating)}")
    why = "; ".join(c.evidence for c in found)
    if "conditional" in verdicts:
        return CniReport("conditional", tuple(found), f"enforcement depends on the version or settings of {names}: {why}")
    if "no" in verdicts:
        return CniReport("not-enforced", tuple(found), f"{names} does not enforce NetworkPolicy ({why}): every policy is silently ignored")
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
