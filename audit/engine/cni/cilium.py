"""Cilium (and GKE Dataplane V2's anetd, and AKS's Azure CNI powered by Cilium): what it enforces
is decided by ``cilium-config`` (a flag or ``CILIUM_*`` variable on the agent overrides it):

- ``enable-policy`` (Documentation/security/policy/intro.rst, "Policy Enforcement Modes";
  pkg/option/config.go): ``default`` enforces where a policy selects the pod; ``always``
  isolates every pod both ways even where none does; ``never`` enforces nothing;
- ``policy-audit-mode``: policies are evaluated and logged, never enforced;
- ``enable-k8s-networkpolicy`` (1.14+), ``enable-cilium-network-policy`` and
  ``enable-cilium-clusterwide-network-policy`` (1.17+): which kinds are watched (default true);
- ``enable-k8s-cluster-network-policy`` (1.20+, default false): ClusterNetworkPolicy v1alpha2.
"""

from __future__ import annotations

from audit.engine.cni.model import CniComponent, Enforcement, Setting, Switch
from audit.engine.cni.reading import ConfigRef, Reader, go_bool
from audit.engine.cni.versions import Version, image_version, parse_version
from audit.inventory import Container, DaemonSet

NAME = "cilium"
CONFIG = "cilium-config"
MODE, AUDIT, K8S_NP = "enable-policy", "policy-audit-mode", "enable-k8s-networkpolicy"
CNP, CCNP, KCNP = "enable-cilium-network-policy", "enable-cilium-clusterwide-network-policy", "enable-k8s-cluster-network-policy"
# (key, default, first version that reads it)
_KEYS: tuple[tuple[str, str, str | None], ...] = (
    (MODE, "default", None), (AUDIT, "false", None), (K8S_NP, "true", "1.14"), (CNP, "true", "1.17"), (CCNP, "true", "1.17"),
    (KCNP, "false", "1.20"),
)
READS = (ConfigRef("ConfigMap", CONFIG, tuple(k for k, _d, _s in _KEYS)),)
ENV = tuple(f"CILIUM_{k.upper().replace('-', '_')}" for k, _d, _s in _KEYS)
SWITCHES = {
    CNP: "CiliumNetworkPolicy is watched (Cilium 1.17+; earlier always)",
    CCNP: "CiliumClusterwideNetworkPolicy is watched (Cilium 1.17+; earlier always)",
    KCNP: "ClusterNetworkPolicy v1alpha2 is watched (Cilium 1.20+, off by default)",
}


def recognise(ds: DaemonSet) -> bool:
    return ds.name in ("cilium", "anetd") or any(_is_agent_image(c.image) for c in ds.containers)


def _is_agent_image(image: str) -> bool:
    return "cilium/cilium:" in image or "cilium/cilium@" in image or image.endswith("/cilium")


def _agent(ds: DaemonSet) -> Container | None:
    return (next((c for c in ds.containers if c.name == "cilium-agent"), None)
            or next((c for c in ds.containers if _is_agent_image(c.image)), None)
            or (ds.containers[-1] if ds.containers else None))


def judge(ds: DaemonSet, reader: Reader) -> CniComponent:
    agent = _agent(ds)
    version, text, source = image_version(agent.image) if agent else (None, "", "no container")
    settings: dict[str, Setting] = {}
    for key, default, since in _KEYS:
        found = reader.setting(ds, key, default, "Cilium's default", containers=(agent,) if agent else (), flag=key,
                               boolean=default in ("true", "false"), env=f"CILIUM_{key.upper().replace('-', '_')}",
                               config=("ConfigMap", ds.namespace, CONFIG))
        settings[key] = _gated(found, default, since, version)
    title = "GKE Dataplane V2 (Cilium)" if ds.name == "anetd" else "Cilium"
    policy, isolates, np_verdict = _mode(settings[MODE], settings[AUDIT])
    switches = tuple((key, _switch(settings[key])) for key in (CNP, CCNP, KCNP))
    k8s_np = _switch(settings[K8S_NP])
    enforces: Enforcement
    if policy.state == "off":
        enforces, evidence = "no", f"{title} enforces no policy: {policy.why()}"
    elif policy.state == "unknown":
        enforces, evidence = "conditional", f"{title} enforces policies unless its enforcement mode turns them off: {policy.why()}"
    elif k8s_np.state == "off":
        enforces, evidence = "no", f"{title} does not watch NetworkPolicy: {k8s_np.why()}"
    elif k8s_np.state == "unknown":
        enforces, evidence = "conditional", f"whether {title} watches NetworkPolicy is unknown: {k8s_np.why()}"
    else:
        enforces, evidence = "yes", f"{title} enforces NetworkPolicy ({np_verdict})"
    return CniComponent(NAME, ds.namespace, ds.name, enforces, evidence, text or None, source, tuple(settings.values()), switches,
                        policy, isolates, title)


def _gated(found: Setting, default: str, since: str | None, version: Version | None) -> Setting:
    """A key an older agent does not read takes no effect there: its default behaviour stands."""
    low = parse_version(since) if since else None
    if found.origin == "set" and low is not None and version is not None and version < low:
        return Setting(found.where, found.key, default, "default", f"{found.key}={found.value} is ignored before Cilium {since}")
    return found


def _mode(mode: Setting, audit: Setting) -> tuple[Switch, Setting | None, str]:
    """(the policy engine, the setting that isolates every pod, how NetworkPolicy is enforced)."""
    audit_on = go_bool(audit.value) if audit.origin != "unknown" else None
    value = (mode.value or "").lower() if mode.origin != "unknown" else None
    if value == "never":
        return Switch("off", mode, f"{mode}: no policy is enforced on any endpoint, even where a policy selects it"), None, ""
    if audit_on:
        return Switch("off", audit, f"{audit}: policy audit mode only logs what policies would drop"), None, ""
    if value is None:
        return Switch("unknown", mode, str(mode)), None, ""
    if audit.origin == "unknown" or audit_on is None:
        return Switch("unknown", audit, f"{audit}" + ("" if audit.origin == "unknown" else ": not a boolean")), None, ""
    if value == "always":
        return Switch("on", mode), mode, f"{mode}: every pod is isolated both ways, selected by a policy or not"
    if value == "default":
        return Switch("on", mode), None, f"{mode}"
    return Switch("unknown", mode, f"{mode}: not a mode Cilium knows (default, always, never)"), None, ""


def _switch(setting: Setting) -> Switch:
    if setting.origin == "unknown":
        return Switch("unknown", setting)
    value = go_bool(setting.value)
    if value is None:
        return Switch("unknown", setting, f"{setting}: not a boolean")
    return Switch("on" if value else "off", setting)
