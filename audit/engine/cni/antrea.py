"""Antrea: NetworkPolicy is always enforced; the upstream admin kinds are feature gates of
antrea-controller (``featureGates`` in ``antrea-controller.conf`` of the ``antrea-config``
ConfigMap; pkg/features/antrea_features.go): ``AdminNetworkPolicy`` (v1.13+, off by default) for
AdminNetworkPolicy and BaselineAdminNetworkPolicy, ``ClusterNetworkPolicy`` (v2.7+, off by
default) for ClusterNetworkPolicy v1alpha2 (not Antrea's own ClusterNetworkPolicy CRD).
Before v1.6 the ConfigMap's name carried a hash suffix: it cannot be read by name then."""

from __future__ import annotations

from audit.engine.cni.model import CniComponent, Setting, Switch
from audit.engine.cni.reading import ConfigRef, Reader, go_bool
from audit.engine.cni.versions import image_version
from audit.inventory import Container, DaemonSet

CONFIG = "antrea-config"
ANP_GATE, KCNP_GATE = "AdminNetworkPolicy", "ClusterNetworkPolicy"
_KEY = "yaml:antrea-controller.conf:featureGates.{}"
READS = (ConfigRef("ConfigMap", CONFIG, tuple(_KEY.format(g) for g in (ANP_GATE, KCNP_GATE))),)
SWITCHES = {ANP_GATE: "antrea-controller's AdminNetworkPolicy feature gate (v1.13+, off by default)",
            KCNP_GATE: "antrea-controller's ClusterNetworkPolicy feature gate (v2.7+, off by default)"}


def recognise(ds: DaemonSet) -> bool:
    images = " ".join(c.image.lower() for c in ds.containers)
    return ds.name == "antrea-agent" or "antrea-agent" in images or "antrea/antrea" in images


def _agent(ds: DaemonSet) -> Container | None:
    return next((c for c in ds.containers if c.name == "antrea-agent"), None) or next(
        (c for c in ds.containers if "antrea" in c.image.lower()), None)


def judge(ds: DaemonSet, reader: Reader) -> CniComponent:
    agent = _agent(ds)
    _version, text, source = image_version(agent.image) if agent else (None, "", "no container")
    settings: list[Setting] = []
    switches: list[tuple[str, Switch]] = []
    for gate in (ANP_GATE, KCNP_GATE):
        found = reader.setting(ds, f"featureGates.{gate}", "false", "the gate's default", config=("ConfigMap", ds.namespace, CONFIG),
                               config_key=_KEY.format(gate))
        found = Setting(found.where, f"antrea-controller.conf featureGates.{gate}", found.value, found.origin, found.note)
        settings.append(found)
        value = go_bool(found.value) if found.origin != "unknown" else None
        switches.append((gate, Switch("unknown" if value is None else "on" if value else "off", found)))
    return CniComponent("antrea", ds.namespace, ds.name, "yes", "Antrea always enforces NetworkPolicy", text or None, source,
                        tuple(settings), tuple(switches), title="Antrea")
