"""Ready-to-apply YAML that remediations point to, built as data and serialised.

Names come from the input: pasted into YAML text, a namespace such as "a\n---\nkind: ..." would
smuggle a second document into the fix. Built as objects and written by a YAML dumper, every
name stays one scalar.
"""

from __future__ import annotations

import copy
import io
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from audit.engine.analysis import Analysis, DnsTarget, port_in
from audit.engine.compiled import CompiledPolicy, CompiledRule
from audit.engine.selectors import parse_selector

METADATA_IP = ipaddress.ip_address("169.254.169.254")
METADATA_CIDR = f"{METADATA_IP}/32"

NARROW_ISOLATION = "netpol-audit.io/narrow-isolation"
"""Annotation (value: the direction) on fixes that isolate a direction while allowing nearly
everything: next to a default-deny of that direction they would undo it (allows add up), so a
bundle with both keeps only the default-deny."""


def narrow(doc: dict[str, Any], direction: str) -> dict[str, Any]:
    """``doc`` marked as a narrow isolation of ``direction`` (see NARROW_ISOLATION)."""
    doc["metadata"]["annotations"] = {NARROW_ISOLATION: direction}
    return doc


# libyaml's emitter when PyYAML has it: fixes are written for thousands of findings at scale,
# and the pure-Python emitter costs milliseconds a document.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(*docs: dict[str, Any]) -> str:
    """YAML documents, separated by ``---``: what ``yaml.dump_all(docs, sort_keys=False,
    default_flow_style=False, width=1000)`` writes.

    Fixes are written for thousands of findings at scale and are plain trees of mappings, lists,
    names, numbers and booleans: written here directly when every string is one YAML reads back
    as the same plain string (``_plain``), else by the YAML emitter (any other string is quoted
    or escaped there, so a name never becomes more than one scalar)."""
    try:
        return "---\n".join("\n".join(_block(doc, 0)) + "\n" for doc in docs) if all(isinstance(d, dict) and d for d in docs) else _emit(docs)
    except _NotPlain:
        return _emit(docs)


class _NotPlain(Exception):
    """A value the direct writer leaves to the YAML emitter."""


_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*\Z")
_RESOLVER = yaml.resolver.Resolver()
_plain_memo: dict[str, bool] = {}


def _plain(text: str) -> bool:
    """Whether ``text`` is written plain and read back as this string: name characters only (no
    indicator, space or quote) and no implicit YAML 1.1 type (true, no, 80, 1e3, 1:20, 2026-01-01...)."""
    hit = _plain_memo.get(text)
    if hit is None:
        hit = bool(_PLAIN.match(text)) and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR  # type: ignore[no-untyped-call]
        if len(_plain_memo) < 200_000:
            _plain_memo[text] = hit
    return hit


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        if _plain(value):
            return value
        raise _NotPlain
    return _other(value)


def _value(value: Any) -> str:
    """A scalar in a mapping's value or a list's item: a string the direct writer cannot write
    plain is written as the emitter writes it there (``'::/0'``), asked once per string."""
    if isinstance(value, str):
        return value if _plain(value) else _quoted(value)
    return _other(value)


_quoted_memo: dict[str, str] = {}


def _quoted(text: str) -> str:
    """How the emitter writes ``text`` as a block value: its style (plain, single- or double-quoted)
    depends only on the text there. A text it would fold or spread over lines is left to it."""
    hit = _quoted_memo.get(text)
    if hit is None:
        if len(text) > 200:
            raise _NotPlain
        line = _emit(({"k": text},))
        if not line.startswith("k: ") or line.count("\n") != 1:
            raise _NotPlain
        hit = line[3:-1]
        if len(_quoted_memo) < 10_000:
            _quoted_memo[text] = hit
    return hit


def _other(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if value == {} and isinstance(value, dict):
        return "{}"
    if value == [] and isinstance(value, (list, tuple)):
        return "[]"
    raise _NotPlain


def _block(value: Any, indent: int) -> list[str]:
    """The lines of a non-empty mapping or list in block style at ``indent``, as libyaml lays
    them out (a list under a key is not indented further)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict) and item:
                lines.append(f"{pad}{_scalar(key)}:")
                lines += _block(item, indent + 2)
            elif isinstance(item, (list, tuple)) and item:
                lines.append(f"{pad}{_scalar(key)}:")
                lines += _block(item, indent)
            else:
                lines.append(f"{pad}{_scalar(key)}: {_value(item)}")
        return lines
    for item in value:
        if isinstance(item, (dict, list, tuple)) and item:
            inner = _block(item, indent + 2)
            lines.append(f"{pad}- {inner[0][indent + 2:]}")
            lines += inner[1:]
        else:
            lines.append(f"{pad}- {_value(item)}")
    return lines


def _emit(docs: tuple[dict[str, Any], ...]) -> str:
    """The YAML emitter's dump of ``docs``, from nodes built directly (PyYAML's representer costs
    a dispatch and an alias check per value); libyaml's emitter when present."""
    stream = io.StringIO()
    dumper = _DUMPER(stream, default_flow_style=False, sort_keys=False, explicit_start=False, width=1000)
    try:
        dumper.open()
        for doc in docs:
            dumper.serialize(_node(doc))
        dumper.close()
    finally:
        dumper.dispose()
    return stream.getvalue()


_STR, _INT, _BOOL, _NULL = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "bool", "null"))
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


def _node(value: Any) -> yaml.Node:
    """The node SafeRepresenter would make for ``value`` (block style, keys in their order)."""
    if isinstance(value, str):
        return yaml.ScalarNode(_STR, value)
    if isinstance(value, bool):
        return yaml.ScalarNode(_BOOL, "true" if value else "false")
    if isinstance(value, int):
        return yaml.ScalarNode(_INT, str(value))
    if value is None:
        return yaml.ScalarNode(_NULL, "null")
    if isinstance(value, dict):
        return yaml.MappingNode(_MAP, [(_node(k), _node(v)) for k, v in value.items()], flow_style=False)
    if isinstance(value, (list, tuple)):
        return yaml.SequenceNode(_SEQ, [_node(v) for v in value], flow_style=False)
    raise TypeError(f"a fix holds a {type(value).__name__}, which YAML fixes do not use")


def default_deny_policy(namespace: str, types: tuple[str, ...] = ("Ingress", "Egress")) -> dict[str, Any]:
    """A policy selecting every pod with no rules: default-deny for ``types``."""
    suffix = "all" if len(types) == 2 else types[0].lower()
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"default-deny-{suffix}", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": list(types)}}


def allow_dns_policy(namespace: str, dns: DnsTarget) -> dict[str, Any]:
    """Egress from every pod of ``namespace`` to the cluster DNS pods on 53/UDP and 53/TCP."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "allow-dns", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
                "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": dns.namespace}},
                        "podSelector": {"matchLabels": dict(dns.labels)}}],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}}


def default_deny(namespace: str, types: tuple[str, ...] = ("Ingress", "Egress")) -> str:
    return dump(default_deny_policy(namespace, types))


def allow_dns(namespace: str, dns: DnsTarget) -> str:
    return dump(allow_dns_policy(namespace, dns))


def baseline(namespace: str, dns: DnsTarget) -> str:
    """Default-deny in both directions plus the DNS allow it needs."""
    return dump(default_deny_policy(namespace), allow_dns_policy(namespace, dns))


def object_name(base: str, suffix: str) -> str:
    """A generated object's name, ``base-suffix``: cut to the 253 characters a name may have and
    ending in a letter or digit, as a DNS subdomain must (a cut can end on ``-`` or ``.``)."""
    return f"{base}-{suffix}"[:253].rstrip("-.")


def policy_doc(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


EDITABLE = "NetworkPolicy"
"""The kind whose policies a fix rewrites (the fixes here are NetworkPolicy documents); another
kind's finding says it has no generated fix."""


def _raw_spec(policy: CompiledPolicy) -> dict[str, Any] | None:
    """The policy's spec as written (a copy to edit), when its kind is one fixes rewrite."""
    if policy.family != EDITABLE or policy.namespace is None:
        return None
    return copy.deepcopy(policy.spec) if isinstance(policy.spec, dict) else None


def _everything_but_metadata() -> list[dict[str, Any]]:
    """Peers for every pod and every address but the cloud metadata service (a fresh list to edit)."""
    return [{"namespaceSelector": {}}, {"ipBlock": {"cidr": "0.0.0.0/0", "except": [METADATA_CIDR]}}, {"ipBlock": {"cidr": "::/0"}}]


def without_metadata(analysis: Analysis, policy: CompiledPolicy) -> dict[str, Any] | None:
    """``policy`` as written, with the cloud metadata address taken out of every egress rule that
    allows it on port 80: added to the ``except`` of each ipBlock that contains it, and a rule
    open to every peer rewritten as every pod plus every address but that one. Nothing else
    changes, so the fix closes exactly the metadata path. None when nothing needs narrowing."""
    spec = _raw_spec(policy)
    if spec is None or policy.namespace is None or not isinstance(spec.get("egress"), list):
        return None
    changed = False
    for rule in policy.rules_in("Egress"):
        if not port_in(analysis.rule_ports(rule, None), 80, "TCP"):
            continue
        raw = spec["egress"][rule.index]
        if not isinstance(raw, dict):  # `- null` or `- {}` written as a rule: the API reads an empty one
            raw = spec["egress"][rule.index] = {}
        if rule.all_peers:
            raw["to"] = _everything_but_metadata()
            changed = True
            continue
        for j, peer in enumerate(rule.peers):
            if peer.blocks and analysis.peer_names(peer, None, METADATA_IP):
                block = raw["to"][j]["ipBlock"]
                block["except"] = list(block.get("except") or []) + [METADATA_CIDR]
                changed = True
    return policy_doc(policy.namespace, policy.name, _canonical(spec)) if changed else None


_SPEC_ORDER = ("podSelector", "policyTypes", "ingress", "egress")


def _canonical(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec in one key order whatever the source wrote (a live object, a dump, a file): the
    same policy gives the same fix text."""
    def sort(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: sort(value[k]) for k in sorted(value, key=str)}
        if isinstance(value, list):
            return [sort(v) for v in value]
        return value

    ordered = sorted(spec, key=lambda k: (_SPEC_ORDER.index(k) if k in _SPEC_ORDER else len(_SPEC_ORDER), str(k)))
    return {k: sort(spec[k]) for k in ordered}


def allow_all_but_metadata_policy(namespace: str) -> dict[str, Any]:
    """Egress isolation that takes away only the cloud metadata address: every pod and every other
    address stays reachable. For a namespace where no pod is egress-isolated yet."""
    return narrow(policy_doc(namespace, "deny-cloud-metadata", {
        "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{"to": _everything_but_metadata()}]}), "Egress")


def kyverno_new_namespaces(excluded: tuple[str, ...], dns: DnsTarget) -> dict[str, Any]:
    """A Kyverno ClusterPolicy that gives every new namespace (not excluded) default-deny in both
    directions and the DNS allow, kept in sync (deleting them brings them back)."""
    def rule(name: str, policy: dict[str, Any]) -> dict[str, Any]:
        return {"name": name,
                "match": {"any": [{"resources": {"kinds": ["Namespace"]}}]},
                **({"exclude": {"any": [{"resources": {"names": list(excluded)}}]}} if excluded else {}),
                "generate": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                             "name": policy["metadata"]["name"], "namespace": "{{request.object.metadata.name}}",
                             "synchronize": True, "data": {"spec": policy["spec"]}}}

    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "netpol-audit-default-deny",
                         "annotations": {"policies.kyverno.io/title": "Default-deny and DNS for new namespaces",
                                         "policies.kyverno.io/category": "Network segmentation",
                                         "policies.kyverno.io/subject": "Namespace, NetworkPolicy"}},
            "spec": {"generateExisting": False, "rules": [
                rule("default-deny", default_deny_policy("NAMESPACE")),
                rule("allow-dns", allow_dns_policy("NAMESPACE", dns))]}}


def _ports_except(excluded: tuple[int, ...]) -> list[dict[str, Any]]:
    """NetworkPolicy ports for every TCP port but ``excluded`` (as ranges), and all of UDP and SCTP."""
    out: list[dict[str, Any]] = []
    start = 1
    for port in sorted(set(excluded)) + [65536]:
        if start <= port - 1:
            out.append({"protocol": "TCP", "port": start, **({"endPort": port - 1} if port - 1 > start else {})})
        start = port + 1
    return out + [{"protocol": "UDP", "port": 1, "endPort": 65535}, {"protocol": "SCTP", "port": 1, "endPort": 65535}]


def other_environments_policy(namespace: str, label: str, others: tuple[str, ...], sensitive: tuple[int, ...]) -> dict[str, Any]:
    """Ingress isolation for a namespace where no pod is ingress-isolated yet, that takes away only
    the sensitive ports from the namespaces of other environments: everything else (other
    environments on other ports, namespaces without the label, outside addresses) stays allowed."""
    values = sorted(others)
    return narrow(policy_doc(namespace, "deny-sensitive-ports-from-other-environments", {
        "podSelector": {}, "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [{"namespaceSelector": {"matchExpressions": [{"key": label, "operator": "NotIn", "values": list(values)}]}},
                      {"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]},
            {"from": [{"namespaceSelector": {"matchExpressions": [{"key": label, "operator": "In", "values": list(values)}]}}],
             "ports": _ports_except(sensitive)},
        ]}), "Ingress")


PER_POD_LABELS = ("pod-template-hash", "controller-revision-hash", "pod-template-generation",
                  "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index")
"""Labels a controller stamps on each pod: never a selector for a workload."""


def stable_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(labels.items()) if k not in PER_POD_LABELS}


def exact_selector(analysis: Analysis, namespace: str, labels: dict[str, str], classes: frozenset[int]) -> dict[str, Any] | None:
    """``matchLabels`` for ``labels`` when, in ``namespace``, they select exactly ``classes`` (else None)."""
    if not labels:
        return None
    selector, errors = parse_selector({"matchLabels": labels}, "spec.podSelector")
    if errors or analysis.select_in_namespace(namespace, selector) != classes:
        return None
    return {"matchLabels": labels}


def narrowed_selector(analysis: Analysis, policy: CompiledPolicy) -> list[dict[str, Any]] | None:
    """For a policy with ``podSelector: {}`` whose allows are ingress rules: the policy narrowed to
    the intended workloads (those serving the ports its rules name; without ports, the workload
    the policy is named after), selected by the labels they all share when those select exactly
    them; and beside it the isolation the others had from it (same types, no ingress rule, its
    DNS-only egress rules kept), so narrowing opens nothing. None when the intended workloads
    cannot be told apart that way."""
    rules = list(policy.rules_in("Ingress"))
    egress = list(policy.rules_in("Egress"))
    if policy.namespace is None or not rules or any(not r.dns_only for r in egress):
        return None
    members = [analysis.classes[c] for c in analysis.classes_by_ns.get(policy.namespace, ()) if not analysis.classes[c].virtual]
    if all(r.ports for r in rules):
        serving = [c for c in members if any(_allows(analysis, r, p.port, p.protocol, c) for r in rules for p in c.ports)]
    else:
        # No ports to go by: a chart names the policy after its workload (the war story's case).
        serving = [c for c in members if any(w.name == policy.name for w in c.workloads)]
    if not serving or len(serving) == len(members):
        return None
    common = stable_labels(serving[0].label_map)
    for cls in serving[1:]:
        common = {k: v for k, v in common.items() if cls.label_map.get(k) == v}
    pod_selector = exact_selector(analysis, policy.namespace, common, frozenset(c.id for c in serving))
    spec = _raw_spec(policy)
    if pod_selector is None or spec is None:
        return None
    narrowed = dict(spec, podSelector=pod_selector)
    isolation: dict[str, Any] = {"podSelector": {}, "policyTypes": list(policy.types)}
    if "Egress" in policy.types and isinstance(spec.get("egress"), list):
        isolation["egress"] = spec["egress"]
    return [policy_doc(policy.namespace, policy.name, _canonical(narrowed)),
            policy_doc(policy.namespace, object_name(policy.name, "isolation"), _canonical(isolation))]


def _allows(analysis: Analysis, rule: CompiledRule, port: int, protocol: str, cls: Any) -> bool:
    return port_in(analysis.rule_ports(rule, cls.ports), port, protocol)


def _client_peers(analysis: Analysis, clients: tuple[int, ...], memo: dict[tuple[int, ...], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One peer per client label set, its namespaces listed: the same pods as a peer per client,
    in a rule that stays readable when hundreds of namespaces hold the same client (memoized:
    many destinations share one set of clients)."""
    hit = memo.get(clients)
    if hit is None:
        by_labels: dict[tuple[tuple[str, str], ...], set[str]] = {}
        for cid in clients:
            client = analysis.classes[cid]
            by_labels.setdefault(tuple(sorted(stable_labels(client.label_map).items())), set()).add(client.namespace)
        peers = []
        for labels, namespaces in sorted(by_labels.items(), key=lambda kv: (sorted(kv[1]), kv[0])):
            names = sorted(namespaces)
            ns_selector: dict[str, Any] = ({"matchLabels": {"kubernetes.io/metadata.name": names[0]}} if len(names) == 1 else
                                           {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": names}]})
            peers.append({"namespaceSelector": ns_selector, "podSelector": {"matchLabels": dict(labels)}})
        hit = memo[clients] = peers
    return hit


def sensitive_ports_policy(analysis: Analysis, cls_id: int, ports: tuple[int, ...], clients: list[int],
                           memo: dict[tuple[int, ...], list[dict[str, Any]]] | None = None) -> dict[str, Any] | None:
    """For a workload not isolated for ingress that serves sensitive ports: ingress isolation that
    keeps every other port open to everyone, and the sensitive ports open only to its own
    namespace and to ``clients`` (workloads of other namespaces whose egress policies name it).
    None when no label set selects exactly this workload."""
    cls = analysis.classes[cls_id]
    pod_selector = exact_selector(analysis, cls.namespace, stable_labels(cls.label_map), frozenset({cls_id}))
    if pod_selector is None:
        return None
    sources: list[dict[str, Any]] = [{"podSelector": {}}, *copy.deepcopy(_client_peers(analysis, tuple(clients), {} if memo is None else memo))]
    name = object_name(cls.workloads[0].name if cls.workloads else "workload", "sensitive-ports")
    unique = sorted({p for p in ports})
    return narrow(policy_doc(cls.namespace, name, {
        "podSelector": pod_selector, "policyTypes": ["Ingress"],
        "ingress": [{"ports": _ports_except(tuple(unique))},
                    {"from": sources, "ports": [{"protocol": "TCP", "port": p} for p in unique]}]}), "Ingress")


_PEERS_HERE = "__netpol_audit_client_peers__"  # never a peer: peers are mappings, and namespace names hold no "_"


@dataclass
class FixWriter:
    """Fix text shared by the findings of one run: the client peers of sensitive ports are often the
    same hundreds of namespaces for many destinations, built and written once."""

    _peers: dict[tuple[int, ...], list[dict[str, Any]]] = field(default_factory=dict)
    _yaml: dict[tuple[tuple[int, ...], str], str] = field(default_factory=dict)
    """The client peers' YAML per peer set and indentation, indented."""

    def sensitive_ports_yaml(self, analysis: Analysis, cls_id: int, ports: tuple[int, ...], clients: list[int]) -> tuple[str, int] | None:
        """`sensitive_ports_policy` as YAML, with how many client peers it names; the same text as
        ``dump`` of that policy. The client peers are written once and set into each policy's text."""
        doc = sensitive_ports_policy(analysis, cls_id, ports, [])
        if doc is None:
            return None
        key = tuple(clients)
        peers = _client_peers(analysis, key, self._peers)
        if not peers:
            return dump(doc), 0
        doc["spec"]["ingress"][1]["from"].append(_PEERS_HERE)
        text = dump(doc)
        line = next(line for line in text.splitlines() if line.strip() == f"- {_PEERS_HERE}")
        indent = line[: len(line) - len(line.lstrip())]
        block = self._yaml.get((key, indent))
        if block is None:
            plain = yaml.dump(peers, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, width=1000)
            # Block YAML indented as a whole keeps its structure: the sequence becomes the rest of `from`.
            block = self._yaml[(key, indent)] = "".join(indent + part + "\n" for part in plain.splitlines())
        return text.replace(line + "\n", block, 1), len(peers)
