"""What the CNI report holds: each dataplane component found, the settings it was judged by
(object, field, value: evidence a reader can check), its version, and what it enforces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Enforcement = Literal["yes", "no", "conditional"]
CniVerdict = Literal["enforced", "conditional", "not-enforced", "unknown"]
Origin = Literal["set", "default", "unknown"]
State = Literal["on", "off", "unknown"]


@dataclass(frozen=True)
class Setting:
    """One value a CNI reads, and where it was read: ``set`` (written in ``where``), ``default``
    (``where`` does not set it: the CNI's default applies), ``unknown`` (``where`` could not be
    read, or is not in the input)."""

    where: str
    """The object (and container or section) it is read from: ``kube-system/cilium-config``."""
    key: str
    value: str | None
    origin: Origin = "set"
    note: str = ""
    """Why a default applies, or why the value is unknown."""

    def __str__(self) -> str:
        if self.origin == "set":
            return f"{self.where} {self.key}={self.value}" + (f" ({self.note})" if self.note else "")
        if self.origin == "default":
            return f"{self.where}: {self.key} not set, so {self.value}" + (f" ({self.note})" if self.note else "")
        return f"{self.where} {self.key}: unknown" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Switch:
    """Whether a feature some policy kinds need is on, and the setting that says so."""

    state: State
    setting: Setting | None = None
    reason: str = ""

    def why(self) -> str:
        return self.reason or (str(self.setting) if self.setting else "")


ON = Switch("on")


@dataclass(frozen=True)
class CniComponent:
    """A CNI found in the inventory, judged from its own settings and version."""

    name: str
    """How kind declarations name the CNI (``cilium``, ``calico``)."""
    namespace: str
    daemonset: str
    enforces: Enforcement
    """Whether it enforces Kubernetes NetworkPolicy."""
    evidence: str
    """Why, in one line that names the decisive setting."""
    version: str | None = None
    version_source: str = ""
    """Where the version was read (``image quay.io/cilium/cilium:v1.16.3``), or why it is unknown."""
    settings: tuple[Setting, ...] = ()
    """Every setting read, decisive or not."""
    switches: tuple[tuple[str, Switch], ...] = ()
    """Features that policy kinds need (``audit.engine.kinds`` names them in their support)."""
    policy: Switch = ON
    """The policy engine as a whole: off (Cilium's enable-policy=never, audit mode) enforces no
    policy of any kind."""
    isolates_all: Setting | None = None
    """Set when the CNI isolates every pod in both directions whether or not a policy selects it
    (Cilium's enable-policy=always)."""
    title: str = ""
    """The CNI's name in prose (``Cilium``)."""

    def switch(self, name: str) -> Switch:
        return dict(self.switches).get(name, Switch("off", reason=f"{self.title or self.name} has no {name}"))

    @property
    def version_text(self) -> str:
        return f"{self.title or self.name} {self.version}" if self.version else f"{self.title or self.name} (version unknown: {self.version_source})"


@dataclass(frozen=True)
class CniReport:
    verdict: CniVerdict
    components: tuple[CniComponent, ...]
    summary: str

    @property
    def isolates_all(self) -> tuple[CniComponent, ...]:
        """Components that isolate every pod by themselves."""
        return tuple(c for c in self.components if c.isolates_all is not None)
