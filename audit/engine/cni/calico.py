"""Calico (and Canal, Calico's policy on Flannel's network).

Calico has no switch that turns workload policy off (Felix's configuration only picks actions and
dataplanes). What decides the rest: the datastore (``DATASTORE_TYPE`` on calico-node; its default
is etcdv3): Felix reads NetworkPolicy and the admin kinds straight from Kubernetes only with
``kubernetes``; with etcd, NetworkPolicy reaches it through calico-kube-controllers' policy
controller, and the admin kinds never do (libcalico-go felixsyncerv1). The version, from the
operator's Installation (``status.calicoVersion``) or calico-node's image, decides the admin kinds
(3.29 AdminNetworkPolicy, 3.30 BaselineAdminNetworkPolicy, both removed in 3.32, which enforces
ClusterNetworkPolicy instead). Calico Enterprise numbers its versions apart: the open-source
ranges are not applied to it.
"""

from __future__ import annotations

from audit.engine.cni.model import CniComponent, Enforcement, Setting, Switch
from audit.engine.cni.reading import ConfigRef, Reader
from audit.engine.cni.versions import image_version, parse_version, show
from audit.inventory import Container, DaemonSet

INSTALLATION = "default"
READS = (ConfigRef("Installation", INSTALLATION, ("spec.variant", "status.variant", "status.calicoVersion"), group="operator.tigera.io",
                   plural="installations", namespaced=False),)
ENV = ("DATASTORE_TYPE", "CALICO_DATASTORE_TYPE", "CALICO_NETWORKING_BACKEND")
KDD = "kubernetes-datastore"
SWITCHES = {KDD: "Felix reads policies from the Kubernetes API (DATASTORE_TYPE=kubernetes)"}
_ENTERPRISE = ("CalicoEnterprise", "TigeraSecureEnterprise")


def recognise_canal(ds: DaemonSet) -> bool:
    images = " ".join(c.image.lower() for c in ds.containers)
    return ds.name == "canal" or ("flannel" in images and "calico" in images)


def recognise(ds: DaemonSet) -> bool:
    return ds.name == "calico-node" or any("calico/node" in c.image.lower() or "tigera/cnx-node" in c.image.lower() for c in ds.containers)


def _node(ds: DaemonSet) -> Container | None:
    return (next((c for c in ds.containers if c.name == "calico-node"), None)
            or next((c for c in ds.containers if "calico" in c.image.lower() or "cnx-node" in c.image.lower()), None)
            or (ds.containers[0] if ds.containers else None))


def judge_canal(ds: DaemonSet, reader: Reader) -> CniComponent:
    return judge(ds, reader, "canal", "Canal (Calico policy)")


def judge(ds: DaemonSet, reader: Reader, name: str = "calico", title: str = "Calico") -> CniComponent:
    node = _node(ds)
    _version, text, source = image_version(node.image) if node else (None, "", "no container")
    settings: list[Setting] = []
    installation = reader.config("Installation", None, INSTALLATION)
    enterprise = node is not None and ("tigera/" in node.image.lower() or "cnx-node" in node.image.lower())
    if installation is not None and installation.state == "found":
        data = dict(installation.data)
        variant = data.get("status.variant") or data.get("spec.variant")
        if variant:
            settings.append(Setting("Installation default", "variant", variant))
            enterprise = enterprise or variant in _ENTERPRISE
        reported = data.get("status.calicoVersion")
        if reported and (parsed := parse_version(reported)) is not None:
            text, source = show(parsed), f"Installation default status.calicoVersion={reported}"
    if enterprise:
        text = ""
        source = f"Calico Enterprise ({source}): its versions are numbered apart from Calico Open Source's"
    datastore = reader.setting(ds, "DATASTORE_TYPE", "etcdv3", "calico-node's default", containers=(node,) if node else (),
                               env="DATASTORE_TYPE")
    if datastore.origin == "default":  # the variables may also carry a CALICO_ prefix
        datastore = reader.setting(ds, "DATASTORE_TYPE", "etcdv3", "calico-node's default", containers=(node,) if node else (),
                                   env="CALICO_DATASTORE_TYPE")
    settings.append(datastore)
    backend = reader.setting(ds, "CALICO_NETWORKING_BACKEND", "bird", "calico-node's default", containers=(node,) if node else (),
                             env="CALICO_NETWORKING_BACKEND")
    if backend.origin == "set":
        settings.append(backend)
    kdd = datastore.value == "kubernetes"
    enforces: Enforcement
    switch = Switch("on" if kdd else "off", datastore)
    if kdd:
        enforces, evidence = "yes", f"{title} enforces NetworkPolicy ({datastore})"
    else:
        enforces, evidence = "conditional", (f"{title} uses the etcd datastore ({datastore}): NetworkPolicy reaches Felix only through "
                                             "calico-kube-controllers' policy controller, which this audit does not read")
    return CniComponent(name, ds.namespace, ds.name, enforces, evidence, text or None, source, tuple(settings), ((KDD, switch),),
                        title=title)
