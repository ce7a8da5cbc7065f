"""The check registry: each check declares its metadata beside its logic with ``@check``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from audit.checks.compliance import references
from audit.checks.fixes import FixWriter
from audit.config import Config
from audit.engine.analysis import Analysis, PodClass
from audit.engine.cni import CniReport
from audit.engine.compiled import CompiledPolicy
from audit.engine.flows import FlowMapper, Traffic
from audit.fastinit import fast_init
from audit.inventory import Namespace, SourceRef
from audit.observed import TOP
from audit.report.severity import SEVERITIES

_ID_RE = re.compile(r"^NP-(COV|PERM|EXP|HYG|DNS|CNI|CFG|FLOW)-\d{3}$")
_PREFIX = {"COV": "coverage", "PERM": "permissive", "EXP": "exposure", "HYG": "hygiene", "DNS": "dns", "CNI": "cni", "CFG": "config",
           "FLOW": "flows"}


@fast_init
@dataclass(frozen=True)
class Hit:
    """One thing a check found; the runner turns it into a Finding with the check's metadata."""

    namespace: str | None
    kind: str
    name: str
    message: str
    objects: tuple[str, ...] = ()
    source: SourceRef | None = None
    fix_yaml: str | None = None
    key: str = ""
    accepted: str | None = None  # reason from the broad-selector annotation
    overridden: str | None = None
    """A higher tier decides what the flagged rule would allow, for every pod it selects: the
    finding is kept (status waived, with this as the reason) but is no exposure."""
    field: str | None = None
    """The field of the object it is about, in the kind's own terms (``spec.ingress[0].from[1]``)."""


@dataclass(frozen=True)
class Context:
    """What checks read. Checks are pure functions of it."""

    analysis: Analysis
    config: Config
    cni: CniReport
    today: dt.date
    traffic: ObservedTraffic | None = None
    """Observed flows (`--flows`), mapped onto this analysis; checks that need them run only with them."""
    fixes: FixWriter = field(default_factory=FixWriter)
    """Fix text shared by findings of one run (the same client peers for many destinations)."""
    memo: dict[Hashable, Any] = field(default_factory=dict)
    """What several checks derive alike, derived once a run (keys name the deriving function)."""

    def audited_namespaces(self) -> list[Namespace]:
        """Namespaces from the input that are not excluded by configuration."""
        found: list[Namespace] | None = self.memo.get("audited_namespaces")
        if found is None:  # every check asks: 10,000 namespaces matched against the patterns once
            found = self.memo["audited_namespaces"] = [ns for ns in self.analysis.inventory.namespaces if not self.config.is_excluded(ns.name)]
        return list(found)

    def audited_policies(self) -> list[CompiledPolicy]:
        """The policies of every kind that take part, but those of excluded namespaces."""
        found: list[CompiledPolicy] | None = self.memo.get("audited_policies")
        if found is None:  # seven checks ask: 68,000 policies filtered once
            found = self.memo["audited_policies"] = [
                p for p in self.analysis.policies if not p.setting and (p.namespace is None or not self.config.is_excluded(p.namespace))]
        return list(found)

    def governed_classes(self, namespace: str) -> list[PodClass]:
        """The namespace's pod classes with running pods that policies govern."""
        return self.analysis.governed_with_pods(namespace)


CheckFn = Callable[[Context], Iterable[Hit]]


@dataclass(frozen=True)
class ObservedTraffic:
    """Flows placed on the analysis's pod classes (audit.engine.flows), with how they were read."""

    mapper: FlowMapper
    traffic: Traffic
    top: int = TOP
    """Denied rows the report and NP-FLOW-001 keep, most flows first (0: every one); the totals count all."""


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    severity: str
    category: str
    rationale: str
    remediation: str
    run: CheckFn
    needs: str | None = None
    """What input the check needs beyond the policies ("flows"); without it the check does not run
    and is not listed as passed."""

    @property
    def references(self) -> tuple[str, ...]:
        return references(self.id)


REGISTRY: dict[str, Check] = {}


def check(id: str, title: str, severity: str, rationale: str, remediation: str, needs: str | None = None) -> Callable[[CheckFn], CheckFn]:
    """Register a check. Metadata is validated here, so a bad declaration fails at import."""

    def register(fn: CheckFn) -> CheckFn:
        match = _ID_RE.fullmatch(id)
        if not match:
            raise ValueError(f"check id {id!r} must look like NP-COV-001")
        if id in REGISTRY:
            raise ValueError(f"check id {id} is declared twice")
        if severity not in SEVERITIES:
            raise ValueError(f"{id}: severity {severity!r} is not one of {SEVERITIES}")
        category = _PREFIX[match.group(1)]
        module = fn.__module__.rsplit(".", 1)[-1]
        if module != category:
            raise ValueError(f"{id} is a {category} check but lives in module {module}")
        if not title or not rationale or not remediation:
            raise ValueError(f"{id}: title, rationale and remediation are required")
        if needs not in (None, "flows"):
            raise ValueError(f"{id}: needs {needs!r} is not an input the audit knows (flows)")
        REGISTRY[id] = Check(id, title, severity, category, rationale.strip(), remediation.strip(), fn, needs)
        return fn

    return register
