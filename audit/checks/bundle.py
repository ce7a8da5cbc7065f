"""One reviewed bundle of every fix a report offers: `netpol-audit fix`.

Pure: findings in, files (name and text) out. Each namespace gets one file holding the
documents its findings' fixes name, deduplicated, with a comment listing the findings it
resolves; a Kyverno ClusterPolicy generates the default-deny and DNS policies for every new
namespace, as the domain text recommends. `apply` puts the bundle's NetworkPolicies into an
inventory so the engine can judge the result before anyone applies it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from audit.checks import fixes
from audit.engine.classes import DnsTarget
from audit.engine.kinds import resources
from audit.inventory import Inventory, PolicyObject, SourceRef
from audit.report.model import FindingRow

KYVERNO_FILE = "90-kyverno-new-namespaces.yaml"


@dataclass(frozen=True)
class BundleFile:
    name: str
    text: str
    documents: tuple[dict[str, Any], ...]
    resolves: tuple[str, ...]  # finding ids


def _comment(text: str) -> str:
    """Text for a YAML comment line: anything that could end the comment (a newline from a name) is a space."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def file_name(index: int, namespace: str) -> str:
    """A bundle file's name: its place, the namespace as a slug, and a hash that keeps distinct namespaces apart."""
    slug = re.sub(r"[^a-z0-9-]+", "-", namespace.lower()).strip("-")[:50] or "namespace"
    return f"{index:02d}-{slug}-{hashlib.sha256(namespace.encode()).hexdigest()[:6]}.yaml"


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc.get("metadata") or {}
    return str(doc.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def _denies(doc: dict[str, Any], direction: str) -> bool:
    """A default-deny of ``direction``: every pod selected, that type, no rule."""
    spec = doc.get("spec") or {}
    return doc.get("kind") == "NetworkPolicy" and spec.get("podSelector") == {} and direction in (spec.get("policyTypes") or []) \
        and not spec.get(direction.lower())


def bundle(findings: tuple[FindingRow, ...], excluded: tuple[str, ...], dns: DnsTarget,
           verified: frozenset[str] | None = None, keep: Mapping[str, list[dict[str, Any]]] | None = None,
           observed_closed: Mapping[str, int] | None = None) -> list[BundleFile]:
    """The bundle for the unwaived findings that have a fix, one file per namespace, then Kyverno.

    With ``verified`` (the finding ids the engine saw disappear once the bundle was applied), a
    file's comment claims only those; the others are listed as offered but not resolved. ``keep``
    adds, per namespace, the allow policies that keep observed traffic open (`fix --flows`);
    with ``observed_closed`` (observed flows each namespace's file closes) the files go from the
    one closing the least observed traffic to the most, and each says its count."""
    by_ns: dict[str, dict[tuple[str, str, str], dict[str, Any]]] = {}
    resolves: dict[str, list[FindingRow]] = {}
    for f in findings:
        if f.status != "fail" or not f.fix_yaml:
            continue
        for doc in yaml.safe_load_all(f.fix_yaml):
            if isinstance(doc, dict):
                ns = str((doc.get("metadata") or {}).get("namespace") or f.namespace or "")
                by_ns.setdefault(ns, {}).setdefault(_key(doc), doc)
                if f not in resolves.setdefault(ns, []):
                    resolves[ns].append(f)
    keep = keep or {}
    files = []
    names = sorted(set(by_ns) | set(keep))
    if observed_closed is not None:
        names.sort(key=lambda n: observed_closed.get(n, 0))  # stable: by name within a count
    for i, ns in enumerate(names, start=10):
        docs = list(by_ns.get(ns, {}).values())
        for direction in ("Ingress", "Egress"):
            if any(_denies(d, direction) for d in docs):
                # The default-deny already closes what the narrow isolation closes; beside it, the
                # narrow one would open everything else again (allows add up).
                docs = [d for d in docs if ((d.get("metadata") or {}).get("annotations") or {}).get(fixes.NARROW_ISOLATION) != direction]
        kept = [d for d in keep.get(ns, ()) if _key(d) not in {_key(x) for x in docs}]
        docs += kept
        head = [f"# netpol-audit fix bundle: namespace {_comment(ns)}", "# Review, then: kubectl apply -f THIS-FILE"]
        if observed_closed is not None:
            head.append(f"# Observed flows this file's namespace has closed: {observed_closed.get(ns, 0)}")
        head.append("# Resolves:")
        line = "#   {0.check} {1}: {2}"
        mine = resolves.get(ns, [])
        done = [f for f in mine if verified is None or f.id in verified]
        head += [line.format(f, _comment(f.name), _comment(f.message)[:160]) for f in done] or ["#   (none verified)"]
        left = [f for f in mine if f not in done]
        if left:
            head.append("# Offered, but the finding stays after the whole bundle is applied (fix it by hand):")
            head += [line.format(f, _comment(f.name), _comment(f.message)[:160]) for f in left]
        if kept:
            head.append(f"# Keeps observed traffic open: {len(kept)} allow polic{'y' if len(kept) == 1 else 'ies'} for flows the "
                        "capture saw that the rest of the bundle would deny")
        files.append(BundleFile(file_name(i, ns), "\n".join(head) + "\n" + fixes.dump(*docs), tuple(docs),
                                tuple(f.id for f in mine)))
    kyverno = fixes.kyverno_new_namespaces(excluded, dns)
    head = ["# netpol-audit fix bundle: every namespace created from now on gets default-deny and the DNS allow",
            "# (Kyverno generate rules; the namespaces excluded from the audit are excluded here too)."]
    files.append(BundleFile(KYVERNO_FILE, "\n".join(head) + "\n" + fixes.dump(kyverno), (kyverno,), ()))
    return files


def without_fix(findings: tuple[FindingRow, ...]) -> str:
    """What the bundle has no fix for, in words: checks that generate none, and findings on policies of
    kinds the fixes do not rewrite ("no generated fix for CiliumNetworkPolicy")."""
    policy_kinds = {r.name for _, r in resources()}
    checks: set[str] = set()
    by_kind: dict[str, set[str]] = {}
    for f in findings:
        if f.status != "fail" or f.fix_yaml:
            continue
        if f.kind in policy_kinds and f.kind != fixes.EDITABLE:
            by_kind.setdefault(f.kind, set()).add(f.check)
        else:
            checks.add(f.check)
    parts = [", ".join(sorted(checks))] if checks else []
    parts += [f"{kind} ({', '.join(sorted(ids))})" for kind, ids in sorted(by_kind.items())]
    return "; ".join(parts) or "none"


def apply(inventory: Inventory, files: list[BundleFile]) -> Inventory:
    """``inventory`` as it would be with the bundle's NetworkPolicies applied (same name: replaced)."""
    policies = {p.identity: p for p in inventory.policies}
    for file in files:
        for doc in file.documents:
            kind, ns, name = _key(doc)
            if kind == "NetworkPolicy":
                obj = PolicyObject(kind, str(doc.get("apiVersion")), ns, name, doc.get("spec"), (), SourceRef(file.name, 1, 1))
                policies[obj.identity] = obj
    return dataclasses.replace(inventory, policies=tuple(policies[k] for k in sorted(policies)))
