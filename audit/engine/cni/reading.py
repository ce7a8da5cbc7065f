"""Reading a CNI's settings as the CNI does: a command-line flag over an environment variable over
its configuration object over its default, each value kept with where it was read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from audit.engine.cni.model import Setting
from audit.inventory import ConfigObject, Container, DaemonSet, Inventory


@dataclass(frozen=True)
class ConfigRef:
    """An object a CNI reads its settings from, and the keys of it that this audit keeps.

    A ConfigMap's key is a data key (``enable-policy``), or ``yaml:FILE:a.b`` / ``ini:FILE:section.key``
    for a value inside a document the ConfigMap holds (Antrea's ``antrea-controller.conf``,
    OVN-Kubernetes' ``ovnkube.conf``). Another kind's key is a dotted path into the object
    (``status.calicoVersion``). A Deployment is kept whole (its containers' arguments).
    """

    kind: str
    name: str
    keys: tuple[str, ...] = ()
    namespace: str | None = None
    """None: the namespace of the CNI's agent."""
    group: str = ""
    version: str = "v1"
    plural: str = "configmaps"
    namespaced: bool = True

    def describe(self, key: str) -> str:
        """A key as a reader finds it: ``antrea-controller.conf: featureGates.AdminNetworkPolicy``."""
        if key.startswith(("yaml:", "ini:")):
            _form, file, path = key.split(":", 2)
            return f"`{file}`: `{path}`"
        return f"`{key}`"

    def path(self, namespace: str | None) -> str:
        """The API path that gets the object."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{prefix}/namespaces/{namespace}/{self.plural}/{self.name}" if self.namespaced else f"{prefix}/{self.plural}/{self.name}"


GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def go_bool(value: str | None) -> bool | None:
    """A boolean as Go's strconv.ParseBool reads it (what viper and the flag package use); None: not one."""
    if value in GO_TRUE:
        return True
    if value in GO_FALSE:
        return False
    return None


def words(container: Container) -> list[str]:
    """The container's command and arguments, split into words (a shell `-c` string included)."""
    return [w for a in container.args for w in a.split()]


def arg_value(container: Container, flag: str, boolean: bool = False) -> str | None:
    """The value of ``--flag`` (or ``-flag``) as Go's flag package reads it: ``--flag=v``, a bare
    boolean ``--flag`` (true), or ``--flag v`` for a non-boolean; the last one wins."""
    found = None
    ws = words(container)
    for i, word in enumerate(ws):
        if not word.startswith("-"):
            continue
        name, eq, value = word.lstrip("-").partition("=")
        if name != flag:
            continue
        if eq:
            found = value.strip("'\"")
        elif boolean:
            found = "true"
        elif i + 1 < len(ws):
            found = ws[i + 1].strip("'\"")
    return found


class Reader:
    """What the inventory holds of the CNIs' settings, looked up with their precedence."""

    def __init__(self, inventory: Inventory):
        self._config = {(o.kind, o.namespace, o.name): o for o in inventory.cni_config}
        self._workloads = {(d.kind, d.namespace, d.name): d for d in inventory.daemonsets}

    def config(self, kind: str, namespace: str | None, name: str) -> ConfigObject | None:
        """The object as read; None when the input does not hold it (manifests without it)."""
        return self._config.get((kind, namespace, name))

    def workload(self, kind: str, namespace: str, name: str) -> DaemonSet | None:
        return self._workloads.get((kind, namespace, name))

    def setting(self, agent: DaemonSet, key: str, default: str, default_note: str, *, containers: Sequence[Container] = (),
                flag: str | None = None, boolean: bool = False, env: str | None = None,
                config: tuple[str, str | None, str] | None = None, config_key: str | None = None) -> Setting:
        """The value the CNI runs with: a flag on one of ``containers``, else their environment
        variable ``env``, else ``config_key`` of the ``config`` object (kind, namespace, name),
        else ``default``. Unknown when the object decides but could not be read."""
        for container in containers:
            if flag and (value := arg_value(container, flag, boolean)) is not None:
                return Setting(f"{agent.namespace}/{agent.kind} {agent.name} container {container.name}", f"--{flag}", value)
        for container in containers:
            if env and (value := dict(container.env).get(env)) is not None:
                return Setting(f"{agent.namespace}/{agent.kind} {agent.name} container {container.name}", f"env {env}", value)
        if config is None:
            return Setting(f"{agent.namespace}/{agent.kind} {agent.name}", f"--{flag}" if flag else key, default, "default", default_note)
        kind, namespace, name = config
        obj = self.config(kind, namespace, name)
        where = f"{namespace}/{name}" if namespace else f"{kind} {name}"
        shown = (config_key or key).split(":", 1)[-1] if (config_key or key).startswith(("yaml:", "ini:")) else (config_key or key)
        if obj is None:
            return Setting(where, shown, None, "unknown", "not in the input")
        if obj.state == "unreadable":
            return Setting(where, shown, None, "unknown", obj.reason or "could not be read")
        if obj.state == "missing":
            return Setting(where, shown, default, "default", f"{where} does not exist; {default_note}")
        value = dict(obj.data).get(config_key or key)
        if value is None:
            return Setting(where, shown, default, "default", default_note)
        return Setting(where, shown, value)
