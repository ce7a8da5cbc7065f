"""OVN-Kubernetes and Kube-OVN: NetworkPolicy by default; the admin kinds behind a switch.

OVN-Kubernetes (go-controller/pkg/config): ``enable-admin-network-policy`` (default false), a flag
of ovnkube, set from ``OVN_ADMIN_NETWORK_POLICY_ENABLE`` by the upstream images' ovnkube.sh, or in
``[ovnkubernetesfeature]`` of ``ovnkube.conf`` (OpenShift's ``ovnkube-config`` ConfigMap turns it
on). It implements AdminNetworkPolicy and BaselineAdminNetworkPolicy v1alpha1, no
ClusterNetworkPolicy.

Kube-OVN (pkg/controller/config.go): flags of the ``kube-ovn-controller`` Deployment:
``--enable-np`` (default true) for NetworkPolicy; ``--enable-anp`` (default false; v1.13+) for
AdminNetworkPolicy and BaselineAdminNetworkPolicy, and from v1.15 ClusterNetworkPolicy v1alpha2.
"""

from __future__ import annotations

from audit.engine.cni.model import CniComponent, Setting, Switch
from audit.engine.cni.reading import ConfigRef, Reader, go_bool
from audit.engine.cni.versions import image_version
from audit.inventory import DaemonSet

ANP = "enable-admin-network-policy"
OVNK_CONFIG = "ovnkube-config"
_INI_KEY = f"ini:ovnkube.conf:ovnkubernetesfeature.{ANP}"
OVNK_READS = (ConfigRef("ConfigMap", OVNK_CONFIG, (_INI_KEY,)),)
OVNK_ENV = ("OVN_ADMIN_NETWORK_POLICY_ENABLE",)
OVNK_SWITCHES = {ANP: "AdminNetworkPolicy and BaselineAdminNetworkPolicy (off by default upstream, on in OpenShift)"}

KUBE_OVN_CONTROLLER = "kube-ovn-controller"
KUBE_OVN_READS = (ConfigRef("Deployment", KUBE_OVN_CONTROLLER, group="apps", plural="deployments"),)
KUBE_OVN_ANP = "enable-anp"
KUBE_OVN_SWITCHES = {KUBE_OVN_ANP: "kube-ovn-controller --enable-anp (v1.13+, off by default): the admin kinds, and "
                                   "ClusterNetworkPolicy from v1.15"}


def recognise_ovnk(ds: DaemonSet) -> bool:
    images = " ".join(c.image.lower() for c in ds.containers)
    return ds.name.startswith("ovnkube-node") or "ovn-kubernetes" in images or "ovn-kube-" in images


def _switch(found: Setting) -> Switch:
    value = go_bool(found.value) if found.origin != "unknown" else None
    if found.origin != "unknown" and value is None:
        return Switch("unknown", found, f"{found}: not a boolean")
    return Switch("unknown" if value is None else "on" if value else "off", found)


def judge_ovnk(ds: DaemonSet, reader: Reader) -> CniComponent:
    _version, text, source = image_version(ds.containers[0].image) if ds.containers else (None, "", "no container")
    found = reader.setting(ds, ANP, "false", "OVN-Kubernetes' default", containers=ds.containers, flag=ANP, boolean=True,
                           env="OVN_ADMIN_NETWORK_POLICY_ENABLE", config=("ConfigMap", ds.namespace, OVNK_CONFIG), config_key=_INI_KEY)
    if found.origin == "unknown" and reader.config("ConfigMap", ds.namespace, OVNK_CONFIG) is None and not ds.namespace.startswith("openshift-"):
        # Upstream keeps no ovnkube-config ConfigMap: the flag and variable are all there is.
        found = Setting(found.where, found.key, "false", "default", "OVN-Kubernetes' default (no flag or variable sets it)")
    return CniComponent("ovn-kubernetes", ds.namespace, ds.name, "yes", "OVN-Kubernetes always enforces NetworkPolicy", text or None,
                        source, (found,), ((ANP, _switch(found)),), title="OVN-Kubernetes")


def recognise_kube_ovn(ds: DaemonSet) -> bool:
    return ds.name == "kube-ovn-cni"


def judge_kube_ovn(ds: DaemonSet, reader: Reader) -> CniComponent:
    _version, text, source = image_version(ds.containers[0].image) if ds.containers else (None, "", "no container")
    controller = reader.workload("Deployment", ds.namespace, KUBE_OVN_CONTROLLER)
    where = f"{ds.namespace}/Deployment {KUBE_OVN_CONTROLLER}"
    if controller is None:
        state = reader.config("Deployment", ds.namespace, KUBE_OVN_CONTROLLER)
        why = "not in the input" if state is None else state.reason or f"{state.state}"
        unknown = Switch("unknown", Setting(where, "--enable-np", None, "unknown", why))
        return CniComponent("kube-ovn", ds.namespace, ds.name, "conditional",
                            f"Kube-OVN programs policies from {where}, which was not read ({why})", text or None, source,
                            (Setting(where, "flags", None, "unknown", why),), ((KUBE_OVN_ANP, unknown),), title="Kube-OVN")
    np = reader.setting(controller, "enable-np", "true", "Kube-OVN's default", containers=controller.containers, flag="enable-np",
                        boolean=True)
    anp = reader.setting(controller, KUBE_OVN_ANP, "false", "Kube-OVN's default", containers=controller.containers, flag=KUBE_OVN_ANP,
                         boolean=True)
    if controller.containers and text == "":
        _version, text, source = image_version(controller.containers[0].image)
    np_switch = _switch(np)
    enforces = {"on": "yes", "off": "no", "unknown": "conditional"}[np_switch.state]
    evidence = f"Kube-OVN {'enforces' if enforces == 'yes' else 'does not enforce' if enforces == 'no' else 'may enforce'} NetworkPolicy ({np})"
    return CniComponent("kube-ovn", ds.namespace, ds.name, enforces, evidence, text or None, source, (np, anp),  # type: ignore[arg-type]
                        ((KUBE_OVN_ANP, _switch(anp)),), title="Kube-OVN")
