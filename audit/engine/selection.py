"""What a subject or a peer of any policy kind selects: pods, named as namespaces AND pods.

Every kind says which pods its subjects and peers name in its own language (a label selector,
a Cilium endpoint selector, a Calico selector expression, an admin policy's namespaces and
pods); each is compiled into one ``PodSelection`` so that one index answers them all, and
checks judge them alike ("every namespace", "matches no pod").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from audit.fastinit import fast_init


class Matcher(Protocol):
    """A predicate over labels: a Kubernetes label selector, or a kind's own expression."""

    @property
    def empty(self) -> bool:
        """It matches everything (``{}``, ``all()``)."""

    @property
    def empty_values(self) -> tuple[str, ...]:
        """Keys it requires to equal the empty string (usually an unset template variable)."""

    def matches(self, labels: Mapping[str, str]) -> bool: ...

    def __str__(self) -> str: ...

    def __hash__(self) -> int: ...


class LabelView(Protocol):
    """The labels a kind's selectors see: Cilium and Calico add their own to a pod's and a
    namespace's (the namespace name, namespace labels under a prefix, the service account)."""

    def pod(self, labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str],
            service_account: str, service_account_labels: Mapping[str, str]) -> Mapping[str, str]: ...

    def namespace(self, name: str, labels: Mapping[str, str]) -> Mapping[str, str]: ...

    def __hash__(self) -> int: ...


@fast_init
@dataclass(frozen=True)
class PodSelection:
    """Pods of ``namespace`` (the policy's own; None: any namespace) whose namespace ``namespaces``
    matches (None: any), AND that ``pods`` matches (None: every pod there).

    ``view`` names the labels the matchers read (None: the objects' own labels).
    """

    namespace: str | None = None
    namespaces: Matcher | None = None
    pods: Matcher | None = None
    view: LabelView | None = None
    _hash: int | None = field(default=None, init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        # Selections key the analysis's memos: hashed once.
        if self._hash is None:
            object.__setattr__(self, "_hash", hash((self.namespace, self.namespaces, self.pods, self.view)))
        return self._hash  # type: ignore[return-value]

    @property
    def every_namespace(self) -> bool:
        """It reaches into every namespace, present and future."""
        return self.namespace is None and (self.namespaces is None or self.namespaces.empty)

    @property
    def every_pod(self) -> bool:
        """No pod selector narrows it inside its namespaces."""
        return self.pods is None or self.pods.empty

    def whole_namespace(self, name: str, labels: Mapping[str, str]) -> bool:
        """Whether it selects every pod of namespace ``name`` (labels: the namespace's own),
        present and future: judged from the selectors, never from the pods that exist."""
        if not self.every_pod or self.namespace not in (None, name):
            return False
        if self.namespaces is None or self.namespaces.empty:
            return True
        return self.namespaces.matches(self.view.namespace(name, labels) if self.view is not None else labels)

    def describe(self) -> str:
        where = ("in every namespace" if self.every_namespace else f"in {self.namespace}" if self.namespace is not None
                 else f"in namespaces [{self.namespaces}]")
        return f"{'every pod' if self.every_pod else f'pods [{self.pods}]'} {where}"
