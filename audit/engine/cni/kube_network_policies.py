"""kube-network-policies (kubernetes-sigs), alone or inside Flannel's DaemonSet (its Helm chart's
``netpol.enabled``): NetworkPolicy always. The admin kinds: from v0.9 by the image's flavour
(``-npa-v1alpha1``: AdminNetworkPolicy and BaselineAdminNetworkPolicy; ``-npa-v1alpha2``:
ClusterNetworkPolicy; none: NetworkPolicy only); up to v0.8 by the flags
``--admin-network-policy`` and ``--baseline-admin-network-policy`` (default false)."""

from __future__ import annotations

from audit.engine.cni.model import CniComponent, Setting, Switch
from audit.engine.cni.reading import Reader, go_bool
from audit.engine.cni.versions import image_version
from audit.inventory import Container, DaemonSet

ANP, BANP, KCNP = "admin-network-policy", "baseline-admin-network-policy", "cluster-network-policy"
SWITCHES = {ANP: "AdminNetworkPolicy (image flavour -npa-v1alpha1; up to v0.8 --admin-network-policy)",
            BANP: "BaselineAdminNetworkPolicy (image flavour -npa-v1alpha1; up to v0.8 --baseline-admin-network-policy)",
            KCNP: "ClusterNetworkPolicy v1alpha2 (image flavour -npa-v1alpha2)"}


def is_container(c: Container) -> bool:
    return "kube-network-policies" in c.image or c.name == "kube-network-policies"


def recognise(ds: DaemonSet) -> bool:
    return "kube-network-policies" in ds.name or any(is_container(c) for c in ds.containers)


def judge(ds: DaemonSet, reader: Reader) -> CniComponent:
    c = next((c for c in ds.containers if is_container(c)), ds.containers[0] if ds.containers else None)
    version, text, source = image_version(c.image) if c else (None, "", "no container")
    tag = c.image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2] if c else ""
    where = f"{ds.namespace}/{ds.kind} {ds.name} container {c.name if c else '?'}"
    settings: list[Setting] = []
    flavour = "npa-v1alpha2" if tag.endswith("-npa-v1alpha2") or "-npa-v1alpha2-" in tag else (
        "npa-v1alpha1" if tag.endswith("-npa-v1alpha1") or "-npa-v1alpha1-" in tag else None)
    switches: dict[str, Switch] = {}
    if flavour or (version is not None and version >= (0, 9, 0)):
        image = Setting(where, "image flavour", flavour or "standard (NetworkPolicy only)", "set", c.image if c else "")
        settings.append(image)
        for key, wanted in ((ANP, "npa-v1alpha1"), (BANP, "npa-v1alpha1"), (KCNP, "npa-v1alpha2")):
            switches[key] = Switch("on" if flavour == wanted else "off", image)
    else:
        for key in (ANP, BANP):
            found = reader.setting(ds, key, "false", "the flag's default", containers=(c,) if c else (), flag=key, boolean=True)
            settings.append(found)
            value = go_bool(found.value)
            state = "unknown" if value is None else "on" if value else "off"
            if version is None and state == "off":
                state = "unknown"  # the version may be a flavoured one: the tag does not say
            switches[key] = Switch(state, found, "" if version is not None else f"{found}; {source}")  # type: ignore[arg-type]
        switches[KCNP] = Switch("off" if version is not None else "unknown", None,
                                f"kube-network-policies {text} has no ClusterNetworkPolicy" if version is not None else source)
    return CniComponent("kube-network-policies", ds.namespace, ds.name, "yes", "kube-network-policies enforces NetworkPolicy", text or None,
                        source, tuple(settings), tuple(switches.items()), title="kube-network-policies")
