"""Every policy kind beyond NetworkPolicy v1, behind one protocol.

A kind reads its raw objects (``ExtendedPolicy``), validates them as the API server's schema
would, and compiles the valid ones into ``StackPolicy`` objects (see ``audit.engine.stack``).
It also says which dataplanes enforce it (see ``ENFORCEMENT`` for the sources). Adding a kind
is one new module plus a line in ``KINDS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from audit.engine.selectors import FieldError
from audit.inventory import ExtendedPolicy

if TYPE_CHECKING:
    from audit.engine.stack import StackPolicy

Enforcement = Literal["yes", "conditional", "no"]


@dataclass(frozen=True)
class Compiled:
    """What a kind made of its objects: stack policies, the objects it rejected, and its own
    parsed forms for the kind's own checks."""

    policies: tuple[StackPolicy, ...] = ()
    invalid: tuple[tuple[ExtendedPolicy, tuple[FieldError, ...]], ...] = ()
    native: tuple[Any, ...] = field(default=())


class PolicyKind(Protocol):
    name: str
    """How reports name the kind, e.g. "AdminNetworkPolicy / BaselineAdminNetworkPolicy"."""
    enforced_by: dict[str, Enforcement]
    """CNI name (as ``audit.engine.cni`` names it) -> whether it enforces this kind; absent: no."""

    def reads(self, obj: ExtendedPolicy) -> bool:
        """Whether ``obj`` (by API group and kind) is one of this kind's objects."""

    def compile(self, objects: Sequence[ExtendedPolicy]) -> Compiled: ...


def group_of(obj: ExtendedPolicy) -> str:
    return obj.api_version.rsplit("/", 1)[0] if "/" in obj.api_version else ""


def kinds() -> tuple[PolicyKind, ...]:
    """The registered kinds, in stack order of their modules (imports are late: each kind
    module imports the stack, which imports nothing of them)."""
    from audit.engine.kinds import admin, calico, cilium, clusternetwork

    return (admin.KIND, clusternetwork.KIND, cilium.KIND, calico.KIND)
