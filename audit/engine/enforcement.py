"""Which policies take part: a resource counts only where the detected dataplane enforces it, in
its version and with its switches as the cluster has them (``audit.engine.cni``), as each kind
declares (``audit.engine.kinds.base.Support``)."""

from __future__ import annotations

from typing import Literal

from audit.engine.cni import CniComponent, CniReport, Enforcement
from audit.engine.cni.versions import describe_range, in_range, parse_version
from audit.engine.kinds.base import KindDeclaration, Resource, Support

Credit = Literal["yes", "assumed", "no"]
_RANK: dict[Enforcement, int] = {"no": 0, "conditional": 1, "yes": 2}


def supported(component: CniComponent, supports: tuple[Support, ...], resource: Resource) -> tuple[Enforcement, str]:
    """Whether ``component`` enforces ``resource``'s objects, and why (naming the version and setting)."""
    entries = [s for s in supports if s.covers(resource.kind)]
    name = component.title or component.name
    if not entries:
        return "no", f"{name} does not implement {resource.name}"
    if component.policy.state == "off":
        return "no", f"{name} enforces no policy: {component.policy.why()}"
    best: tuple[Enforcement, str] = ("no", "")
    for entry in entries:
        verdict = _one(component, entry, resource.name)
        if _RANK[verdict[0]] > _RANK[best[0]]:
            best = verdict
        elif not best[1]:
            best = verdict
    return best


def _one(component: CniComponent, entry: Support, resource: str) -> tuple[Enforcement, str]:
    name = component.title or component.name
    doubts: list[str] = []
    if entry.since or entry.until:
        span = describe_range(entry.since, entry.until)
        version = parse_version(component.version) if component.version else None
        if version is None:
            doubts.append(f"{name} enforces {resource} only {span}, and its version is unknown ({component.version_source})")
        elif not in_range(version, entry.since, entry.until):
            return "no", f"{name} {component.version} ({component.version_source}) does not enforce {resource}: only {span}"
    if entry.switch:
        switch = component.switch(entry.switch)
        if switch.state == "off":
            return "no", f"{name} does not enforce {resource}: {switch.why()}"
        if switch.state == "unknown":
            doubts.append(f"{resource} needs {entry.switch} on: {switch.why()}")
    if component.policy.state == "unknown":
        doubts.append(f"whether {name} enforces any policy is unknown: {component.policy.why()}")
    if doubts:
        return "conditional", "; ".join(doubts)
    said = [component.switch(entry.switch).why()] if entry.switch else []
    if component.version:
        said.insert(0, f"{name} {component.version}")
    return "yes", f"{name} enforces {resource}" + (f" ({'; '.join(said)})" if said else "")


def credit(kind: KindDeclaration, resource: Resource, cni: CniReport | None, assume_enforced: bool) -> tuple[Credit, str]:
    """Whether a resource's policies take part, and why: only where the detected dataplane enforces it."""
    if kind.enforced_by is None:
        return "yes", ""  # NetworkPolicy: the CNI report's own verdict says whether it is enforced (audit.checks.cni)
    if cni is None or not cni.components:
        return "assumed", "the CNI was not identified: these results assume it enforces them"
    judged = [(c, supported(c, kind.enforced_by.get(c.name, ()), resource)) for c in cni.components]
    best = max((v for _c, (v, _w) in judged), key=_RANK.__getitem__)
    why = "; ".join(w for _c, (v, w) in judged if v == best and w)
    if best == "yes":
        return "yes", why
    if best == "conditional":
        return "assumed", f"{why}: these results assume it does"
    if assume_enforced:
        return "assumed", f"{why}; evaluated as if enforced (--assume-enforced)"
    return "no", f"{why}: they are present but have no effect"
