"""What every policy kind declares and provides: its API resources, which dataplanes enforce it,
and a compiler from its raw objects to the compiled model (``audit.engine.compiled``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from audit.engine.compiled import CompiledPolicy
from audit.engine.selection import PodSelection
from audit.engine.selectors import FieldError
from audit.inventory import Inventory, PolicyObject

Enforcement = Literal["yes", "conditional", "no"]


@dataclass(frozen=True)
class Support:
    """A CNI enforces a kind, or some of its resources, in a range of its versions and while one of
    its switches is on (``audit.engine.cni`` reads both from the cluster)."""

    resources: tuple[str, ...] = ()
    """The resources' kinds this covers (empty: every resource of the kind)."""
    since: str | None = None
    """The first version that enforces them."""
    until: str | None = None
    """The first version that no longer does."""
    switch: str | None = None
    """The CNI's switch they need (as its module in ``audit.engine.cni`` names it)."""
    source: str = ""
    """Where this is documented (the README's enforcement table cites it)."""

    def covers(self, resource: str) -> bool:
        return not self.resources or resource in self.resources



@dataclass(frozen=True)
class Resource:
    """One API resource that holds a kind's objects."""

    kind: str
    group: str
    versions: tuple[str, ...]
    """Versions read, first preferred; a live scan lists the first one discovery shows."""
    plural: str
    namespaced: bool
    display: str = ""
    """How reports name and count its objects when the kind alone is ambiguous ("Calico NetworkPolicy")."""
    same_as: str | None = None
    """The label of a resource that serves the same objects: when it was read, this one is not."""
    manifest_groups: tuple[str, ...] = ()
    """Older groups manifests may still use for the same kind (extensions/v1beta1)."""
    auxiliary: bool = False
    """Objects the kind reads beside its policies (Calico's Tiers): never counted as policies."""

    @property
    def label(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def name(self) -> str:
        return self.display or self.kind


@dataclass(frozen=True)
class KindDeclaration:
    """Everything the tool knows of a kind outside its compiler: one place for the manifest
    reader, the live resource list, RBAC, the deploy ClusterRole, counts and the README's matrix."""

    name: str
    """How reports name the kind ("Cilium", "AdminNetworkPolicy / BaselineAdminNetworkPolicy")."""
    resources: tuple[Resource, ...]
    enforced_by: Mapping[str, tuple[Support, ...]] | None
    """CNI name (as ``audit.engine.cni`` names it) -> in which versions and with which switch it
    enforces this kind's resources; absent: not at all. None: the CNI report's own verdict on
    NetworkPolicy decides (``audit.engine.cni``)."""
    core: bool = False
    """A core resource: a scan that cannot read it is incomplete (NetworkPolicy)."""
    summary: str = ""
    """One line for the README's kind matrix: what the audit evaluates."""
    fields: tuple[tuple[str, str, str], ...] = ()
    """(field, how it is judged, what that means) for the README's field matrix; how: `evaluated`
    (exactly), `L4 only` (the layer-4 part judged, the rest named), `not evaluable` (matches nothing
    here, named), `validated` (checked as the API server or agent checks it, no effect on traffic)."""


@dataclass(frozen=True)
class Compiled:
    """What a kind made of its objects: compiled policies, and the objects it rejected with why."""

    policies: tuple[CompiledPolicy, ...] = ()
    invalid: tuple[tuple[PolicyObject, tuple[FieldError, ...]], ...] = ()


class PolicyKind(Protocol):
    declaration: KindDeclaration

    def subject(self, obj: PolicyObject) -> PodSelection | None:
        """The pods an object's subject selects, read on its own (for an object the kind rejected:
        `reach` says a policy that would have selected the pod was left out); None: unreadable."""

    def compile(self, objects: Sequence[PolicyObject], inventory: Inventory) -> Compiled:
        """Validate the objects as the API server's schema would and compile the valid ones; the
        inventory is there for what a kind resolves (the Services a Cilium rule names, Calico tiers)."""


def group_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""
