"""The AWS VPC CNI: NetworkPolicy needs both halves switched on (both are off by default): the
node agent (container ``aws-eks-nodeagent``, image aws-network-policy-agent) with
``--enable-network-policy=true``, and the control plane's network policy controller, which acts
only when the ``amazon-vpc-cni`` ConfigMap says ``enable-network-policy-controller: "true"``
(amazon-network-policy-controller-k8s pkg/utils/configmap)."""

from __future__ import annotations

from audit.engine.cni.model import CniComponent, Setting
from audit.engine.cni.reading import ConfigRef, Reader, go_bool
from audit.engine.cni.versions import image_version
from audit.inventory import DaemonSet

CONFIG = "amazon-vpc-cni"
CONTROLLER = "enable-network-policy-controller"
READS = (ConfigRef("ConfigMap", CONFIG, (CONTROLLER,), namespace="kube-system"),)


def recognise(ds: DaemonSet) -> bool:
    return ds.name == "aws-node" or any("amazon-k8s-cni" in c.image for c in ds.containers)


def judge(ds: DaemonSet, reader: Reader) -> CniComponent:
    cni = next((c for c in ds.containers if "amazon-k8s-cni" in c.image or c.name == "aws-node"), ds.containers[0] if ds.containers else None)
    _version, text, source = image_version(cni.image) if cni else (None, "", "no container")
    agent = next((c for c in ds.containers if c.name == "aws-eks-nodeagent" or "network-policy-agent" in c.name
                  or "aws-network-policy-agent" in c.image), None)

    def done(enforces: str, evidence: str, *settings: Setting) -> CniComponent:
        return CniComponent("aws-vpc-cni", ds.namespace, ds.name, enforces, evidence, text or None, source, settings,  # type: ignore[arg-type]
                            title="AWS VPC CNI")

    if agent is None:
        return done("no", "aws-node runs without the network policy agent (aws-eks-nodeagent): the VPC CNI does not enforce NetworkPolicy")
    flag = reader.setting(ds, "enable-network-policy", "false", "the agent's default", containers=(agent,), flag="enable-network-policy",
                          boolean=True)
    controller = reader.setting(ds, CONTROLLER, "false", "the controller acts only on \"true\"",
                                config=("ConfigMap", "kube-system", CONFIG))
    if flag.origin != "unknown" and go_bool(flag.value) is not True:
        return done("no", f"the network policy agent does not enforce: {flag}", flag, controller)
    if controller.origin == "unknown":
        return done("conditional", f"the agent is on ({flag}) but whether the network policy controller is: {controller}", flag, controller)
    if controller.value != "true":
        return done("no", f"the network policy controller is off: {controller}", flag, controller)
    return done("yes", f"the network policy agent and controller are on ({flag}; {controller})", flag, controller)
