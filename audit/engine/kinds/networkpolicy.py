"""NetworkPolicy v1: parsing with the API server's defaulting and validation.

An invalid policy is one the API server would reject; in a live cluster it cannot exist,
in manifests it would fail to apply. It is returned with its errors (each naming the field)
so checks can report it, and it takes no part in analysis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from audit.engine.addresses import IPBlock, parse_cidr
from audit.engine.compiled import CompiledPeer, CompiledPolicy, CompiledPort, CompiledRule, CompiledSubject, Layer
from audit.engine.direction import DIRECTIONS, Direction, peer_word
from audit.engine.kinds.base import Compiled, KindDeclaration, Resource
from audit.engine.ports import PROTOCOLS, port_name_error
from audit.engine.selection import PodSelection
from audit.engine.selectors import FieldError, Selector, parse_selector
from audit.fastinit import fast_init
from audit.inventory import ContainerPort, Inventory, Labels, PolicyObject, SourceRef

KIND_NAME = "NetworkPolicy"


_SPEC_FIELDS = {"podSelector", "policyTypes", "ingress", "egress"}
_RULE_FIELDS = {"Ingress": {"from", "ports"}, "Egress": {"to", "ports"}}
_PEER_FIELDS = {"podSelector", "namespaceSelector", "ipBlock"}
_PORT_FIELDS = {"protocol", "port", "endPort"}
_IPBLOCK_FIELDS = {"cidr", "except"}


@fast_init
@dataclass(frozen=True, slots=True)
class PortRule:
    """One entry of a rule's ``ports``: a protocol with a number, a range, a name or all ports."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    def matches(self, port: int, protocol: str, dst_ports: Iterable[ContainerPort] | None) -> bool:
        """Whether this entry admits ``port``/``protocol`` to a destination with ``dst_ports``.

        A named port resolves against the destination pod's container ports (same name and
        protocol); a destination that is not a pod has no named ports.
        """
        if protocol != self.protocol:
            return False
        if self.port is None:
            return True
        if isinstance(self.port, str):
            return any(
                cp.name == self.port and cp.protocol == protocol and cp.port == port
                for cp in dst_ports or ()
            )
        if self.end_port is not None:
            return self.port <= port <= self.end_port
        return port == self.port

    def __str__(self) -> str:
        if self.port is None:
            return f"{self.protocol}/*"
        if self.end_port is not None:
            return f"{self.protocol}/{self.port}-{self.end_port}"
        return f"{self.protocol}/{self.port}"


@fast_init
@dataclass(frozen=True, slots=True)
class Peer:
    """One ``from``/``to`` entry. ``None`` selectors are absent, which differs from ``{}``."""

    pods: Selector | None = None
    namespaces: Selector | None = None
    ip_block: IPBlock | None = None

    @property
    def all_cluster_pods(self) -> bool:
        """Every pod in every namespace: ``namespaceSelector: {}`` with no or an empty podSelector."""
        return (
            self.namespaces is not None
            and self.namespaces.empty
            and (self.pods is None or self.pods.empty)
        )

    def __str__(self) -> str:
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block}"
        parts = []
        if self.namespaces is not None:
            parts.append(f"namespaces[{self.namespaces}]")
        if self.pods is not None:
            parts.append(f"pods[{self.pods}]")
        return " AND ".join(parts)


@fast_init
@dataclass(frozen=True, slots=True)
class Rule:
    """One ingress or egress rule. No peers means all peers; no ports means all ports."""

    direction: Direction
    index: int
    peers: tuple[Peer, ...]
    ports: tuple[PortRule, ...]

    @property
    def all_peers(self) -> bool:
        return not self.peers

    @property
    def all_ports(self) -> bool:
        return not self.ports

    @property
    def field(self) -> str:
        return f"spec.{self.direction.lower()}[{self.index}]"

    def allows_port(self, port: int, protocol: str, dst_ports: Iterable[ContainerPort] | None) -> bool:
        if not self.ports:
            return True
        dst = tuple(dst_ports or ())
        return any(p.matches(port, protocol, dst) for p in self.ports)

    def describe(self) -> str:
        peers = "all peers" if not self.peers else " OR ".join(str(p) for p in self.peers)
        ports = "all ports" if not self.ports else ", ".join(str(p) for p in self.ports)
        word = "from" if self.direction == "Ingress" else "to"
        return f"{word} {peers} on {ports}"


@fast_init
@dataclass(frozen=True)
class Policy:
    """A valid NetworkPolicy with the API server's defaults applied."""

    namespace: str
    name: str
    pod_selector: Selector
    types: tuple[Direction, ...]
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    types_explicit: bool
    pod_selector_missing: bool = False
    annotations: Labels = ()
    source: SourceRef = SourceRef()
    ignored_rules: tuple[Direction, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        """The rules that take effect in ``direction`` (none unless the policy has that type)."""
        if direction not in self.types:
            return ()
        return self.ingress if direction == "Ingress" else self.egress

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)


@fast_init
@dataclass(frozen=True)
class ParsedPolicy:
    """The outcome of parsing one PolicyObject: a policy, or the errors that reject it."""

    obj: PolicyObject
    policy: Policy | None
    errors: tuple[FieldError, ...]


@dataclass(frozen=True)
class _Spec:
    """What a NetworkPolicy spec says, whatever object holds it: the parts of `Policy` it decides,
    or its errors. Policies of many namespaces often share one spec (default deny, allow DNS)."""

    errors: tuple[FieldError, ...]
    pod_selector: Selector | None = None
    types: tuple[Direction, ...] = ()
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    types_explicit: bool = False
    pod_selector_missing: bool = False
    ignored_rules: tuple[Direction, ...] = ()


SpecMemo = dict[bytes, _Spec]
"""Parsed specs by their JSON text, for one batch of objects (see `parse_policy`)."""


def parse_policy(obj: PolicyObject, memo: SpecMemo | None = None) -> ParsedPolicy:
    """Parse and validate a NetworkPolicy as the API server would, applying its defaults.

    With ``memo``, a spec parsed before (the same JSON text) is not parsed again: the parse reads
    nothing but the spec, and what it makes is immutable."""
    spec = obj.spec
    key = None
    if memo is not None:
        try:
            # Dates and str/int subclasses are refused, not written as the text a plain value would give.
            key = orjson.dumps(spec, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS)
        except (TypeError, orjson.JSONEncodeError):  # a YAML value JSON cannot hold (a date, a non-string key): parsed each time
            key = None
        if key is not None and b"null" in key:
            key = None  # orjson writes NaN and infinities as null too: such a spec is parsed each time
    parsed = memo.get(key) if memo is not None and key is not None else None
    if parsed is None:
        parsed = _parse_spec(spec)
        if memo is not None and key is not None:
            memo[key] = parsed
    if parsed.errors:
        return ParsedPolicy(obj, None, parsed.errors)
    assert parsed.pod_selector is not None  # a spec without errors has one
    policy = Policy(
        namespace=obj.namespace or "",
        name=obj.name,
        pod_selector=parsed.pod_selector,
        types=parsed.types,
        ingress=parsed.ingress,
        egress=parsed.egress,
        types_explicit=parsed.types_explicit,
        pod_selector_missing=parsed.pod_selector_missing,
        annotations=obj.annotations,
        source=obj.source,
        ignored_rules=parsed.ignored_rules,
    )
    return ParsedPolicy(obj, policy, ())


def _parse_spec(spec: Any) -> _Spec:
    errors: list[FieldError] = []
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        return _Spec((FieldError("spec", "must be an object"),))
    _unknown_fields(spec, _SPEC_FIELDS, "spec", errors)

    pod_selector_missing = "podSelector" not in spec
    pod_selector, errs = parse_selector(spec.get("podSelector"), "spec.podSelector")
    errors.extend(errs)

    ingress = _parse_rules(spec.get("ingress"), "Ingress", errors)
    egress = _parse_rules(spec.get("egress"), "Egress", errors)

    raw_types = spec.get("policyTypes")
    types: list[Direction] = []
    if raw_types is not None and not isinstance(raw_types, list):
        errors.append(FieldError("spec.policyTypes", "must be a list"))
        raw_types = None
    if raw_types:
        if len(raw_types) > 2:
            errors.append(FieldError("spec.policyTypes", "may not specify more than two policyTypes"))
        for i, value in enumerate(raw_types):
            if value not in DIRECTIONS:
                errors.append(
                    FieldError(f"spec.policyTypes[{i}]", f'Unsupported value: {value!r}: supported values: "Ingress", "Egress"')
                )
            elif value not in types:
                types.append(value)
    else:
        # The API server's default: Ingress always, Egress when there are egress rules.
        types = ["Ingress", "Egress"] if egress else ["Ingress"]

    if errors:
        return _Spec(tuple(errors))
    ignored = tuple(d for d, rules in (("Ingress", ingress), ("Egress", egress)) if rules and d not in types)
    return _Spec((), pod_selector, tuple(d for d in DIRECTIONS if d in types), tuple(ingress), tuple(egress), bool(raw_types),
                 pod_selector_missing, ignored)  # type: ignore[arg-type]


def _unknown_fields(raw: Mapping[str, Any], known: set[str], path: str, errors: list[FieldError]) -> None:
    if raw.keys() <= known:  # nearly always: one comparison in C
        return
    for key in sorted(set(raw) - known, key=str):
        errors.append(
            FieldError(f"{path}.{key}", "unknown field (kubectl's strict field validation rejects it)")
        )


def _parse_rules(raw: Any, direction: Direction, errors: list[FieldError]) -> list[Rule]:
    base = f"spec.{direction.lower()}"
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(FieldError(base, "must be a list of rules"))
        return []
    peer_field = "from" if direction == "Ingress" else "to"
    rules = []
    for i, raw_rule in enumerate(raw):
        path = f"{base}[{i}]"
        if raw_rule is None:
            raw_rule = {}
        if not isinstance(raw_rule, dict):
            errors.append(FieldError(path, "must be an object"))
            continue
        _unknown_fields(raw_rule, _RULE_FIELDS[direction], path, errors)
        peers = _parse_list(raw_rule.get(peer_field), f"{path}.{peer_field}", _parse_peer, errors)
        ports = _parse_list(raw_rule.get("ports"), f"{path}.ports", _parse_port, errors)
        rules.append(Rule(direction, i, tuple(peers), tuple(ports)))
    return rules


def _parse_list(raw: Any, path: str, parse_one: Callable[[Any, str, list[FieldError]], Any], errors: list[FieldError]) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list"))
        return []
    out = []
    for j, item in enumerate(raw):
        parsed = parse_one(item, f"{path}[{j}]", errors)
        if parsed is not None:
            out.append(parsed)
    return out


def _parse_peer(raw: Any, path: str, errors: list[FieldError]) -> Peer | None:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(FieldError(path, "must be an object"))
        return None
    _unknown_fields(raw, _PEER_FIELDS, path, errors)
    present = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if raw.get(k) is not None]
    if not present:
        errors.append(FieldError(path, "must specify a peer (podSelector, namespaceSelector or ipBlock)"))
        return None
    if "ipBlock" in present and len(present) > 1:
        errors.append(FieldError(path, "may not specify both ipBlock and another peer"))
        return None
    if "ipBlock" in present:
        block = _parse_ip_block(raw["ipBlock"], f"{path}.ipBlock", errors)
        return Peer(ip_block=block) if block else None
    pods = namespaces = None
    if raw.get("podSelector") is not None:
        pods, errs = parse_selector(raw["podSelector"], f"{path}.podSelector")
        errors.extend(errs)
    if raw.get("namespaceSelector") is not None:
        namespaces, errs = parse_selector(raw["namespaceSelector"], f"{path}.namespaceSelector")
        errors.extend(errs)
    return Peer(pods=pods, namespaces=namespaces)


def _parse_ip_block(raw: Any, path: str, errors: list[FieldError]) -> IPBlock | None:
    if not isinstance(raw, dict):
        errors.append(FieldError(path, "must be an object with cidr and except"))
        return None
    _unknown_fields(raw, _IPBLOCK_FIELDS, path, errors)
    if not raw.get("cidr"):
        errors.append(FieldError(f"{path}.cidr", "required"))
        return None
    cidr = parse_cidr(raw["cidr"])
    if cidr is None:
        errors.append(FieldError(f"{path}.cidr", f"{raw['cidr']!r} is not a valid CIDR"))
        return None
    excepts = []
    raw_except = raw.get("except") or []
    if not isinstance(raw_except, list):
        errors.append(FieldError(f"{path}.except", "must be a list of CIDRs"))
        return None
    for k, value in enumerate(raw_except):
        ex = parse_cidr(value)
        if ex is None:
            errors.append(FieldError(f"{path}.except[{k}]", f"{value!r} is not a valid CIDR"))
        elif ex.version != cidr.version or not ex.subnet_of(cidr) or ex.prefixlen <= cidr.prefixlen:  # type: ignore[arg-type]
            errors.append(FieldError(f"{path}.except[{k}]", f"{value} must be a strict subset of cidr {raw['cidr']}"))
        else:
            excepts.append(ex)
    return IPBlock(cidr, tuple(excepts))


def _port_number_error(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{value!r} must be a number"
    if not 1 <= value <= 65535:
        return f"{value} must be between 1 and 65535, inclusive"
    return None


def _parse_port(raw: Any, path: str, errors: list[FieldError]) -> PortRule | None:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(FieldError(path, "must be an object with protocol, port and endPort"))
        return None
    _unknown_fields(raw, _PORT_FIELDS, path, errors)
    protocol = raw.get("protocol") or "TCP"
    if protocol not in PROTOCOLS:
        errors.append(FieldError(f"{path}.protocol", f'Unsupported value: {protocol!r}: supported values: "TCP", "UDP", "SCTP"'))
        return None
    port = raw.get("port")
    end_port = raw.get("endPort")
    if isinstance(port, str):
        if problem := port_name_error(port):
            errors.append(FieldError(f"{path}.port", problem))
            return None
    elif port is not None and (problem := _port_number_error(port)):
        errors.append(FieldError(f"{path}.port", problem))
        return None
    if end_port is not None:
        if port is None:
            errors.append(FieldError(f"{path}.endPort", "may not be specified when port is not specified"))
            return None
        if isinstance(port, str):
            errors.append(FieldError(f"{path}.endPort", "may not be specified when port is non-numeric"))
            return None
        if problem := _port_number_error(end_port):
            errors.append(FieldError(f"{path}.endPort", problem))
            return None
        if end_port < port:
            errors.append(FieldError(f"{path}.endPort", f"{end_port} must be greater than or equal to port {port}"))
            return None
    return PortRule(protocol, port, end_port)


RuleMemo = dict[tuple[int, str], tuple[str, tuple[CompiledPeer, ...], tuple[CompiledPort, ...] | None]]
"""Per (parsed rule, namespace, or "" when its peers name no namespace by default): its text, peers and
ports, shared by the policies of one batch whose specs are one (`parse_policy` with a memo gives them
the same rule objects)."""


def compile_policy(policy: Policy, spec: Any, memo: RuleMemo | None = None) -> CompiledPolicy:
    """A valid NetworkPolicy in the compiled model: one Allow layer in the namespace tier, at
    Calico's order 1000 for it; selecting a pod isolates it in each of its policyTypes."""
    rules = tuple(_compile_rule(policy, rule, memo) for d in policy.types for rule in policy.rules(d))
    ignored = tuple((d, f"spec.{d.lower()} has rules but spec.policyTypes is {list(policy.types)}: they are ignored")
                    for d in policy.ignored_rules)
    subject = CompiledSubject("spec.podSelector", f"podSelector {policy.pod_selector}",
                              PodSelection(namespace=policy.namespace, pods=policy.pod_selector), missing=policy.pod_selector_missing)
    layer = Layer("namespace", (1000.0, policy.key), "NetworkPolicy",
                  tuple((d, tuple(r for r in rules if r.direction == d)) for d in DIRECTIONS), policy.types)
    return CompiledPolicy(KIND_NAME, KIND_NAME, policy.namespace, policy.name, policy.key, subject, rules, policy.types, (layer,),
                          policy.source, policy.annotations, policy.types_explicit, ignored, spec=spec)


def _compile_rule(policy: Policy, rule: Rule, memo: RuleMemo | None = None) -> CompiledRule:
    # A peer without a namespaceSelector (nor an ipBlock) means the policy's own namespace: only then
    # do the compiled peers differ between namespaces.
    key = (id(rule), policy.namespace if any(p.ip_block is None and p.namespaces is None for p in rule.peers) else "")
    parts = memo.get(key) if memo is not None else None
    if parts is None:
        word = peer_word(rule.direction)
        peers = tuple(_compile_peer(policy.namespace, peer, f"{rule.field}.{word}[{j}]") for j, peer in enumerate(rule.peers))
        ports = None if not rule.ports else tuple(
            CompiledPort(f"{rule.field}.ports[{j}]", (p.protocol,), p.port, p.end_port) for j, p in enumerate(rule.ports))
        parts = (rule.describe(), peers, ports)
        if memo is not None:
            memo[key] = parts
    text, peers, ports = parts
    return CompiledRule(rule.direction, "Allow", rule.field, f"{policy.key} {rule.direction.lower()}[{rule.index}]", text,
                        peers, not rule.peers, ports, index=rule.index)


def _compile_peer(namespace: str, peer: Peer, field: str) -> CompiledPeer:
    if peer.ip_block is not None:
        return CompiledPeer(field, f"ipBlock {peer.ip_block}", blocks=(peer.ip_block,))
    selectors = tuple((f"{field}.{name}", sel) for name, sel in (("namespaceSelector", peer.namespaces), ("podSelector", peer.pods))
                      if sel is not None)
    text = " ".join(f"{name.rsplit('.', 1)[-1]}: {sel}" for name, sel in selectors)
    if peer.namespaces is None:
        return CompiledPeer(field, text, PodSelection(namespace=namespace, pods=peer.pods), selectors=selectors)
    return CompiledPeer(field, text, PodSelection(namespaces=peer.namespaces, pods=peer.pods), selectors=selectors)


class _NetworkPolicyKind:
    declaration = KindDeclaration(
        KIND_NAME,
        (Resource(KIND_NAME, "networking.k8s.io", ("v1",), "networkpolicies", namespaced=True, manifest_groups=("extensions", "")),),
        enforced_by=None, core=True,
        summary="every field: podSelector, policyTypes (and its default), ingress/egress peers (podSelector, namespaceSelector, "
                "ipBlock with except), ports (numbers, names, endPort, protocols)")

    def subject(self, obj: PolicyObject) -> PodSelection | None:
        spec = obj.spec if isinstance(obj.spec, dict) else {}
        selector, errors = parse_selector(spec.get("podSelector"), "spec.podSelector")
        return None if errors else PodSelection(namespace=obj.namespace, pods=selector)

    def compile(self, objects: Sequence[PolicyObject], inventory: Inventory) -> Compiled:
        specs: SpecMemo = {}
        parsed = [parse_policy(o, specs) for o in objects]
        rules: RuleMemo = {}  # alive while `specs` holds the parsed rules its keys name
        return Compiled(tuple(compile_policy(p.policy, p.obj.spec, rules) for p in parsed if p.policy is not None),
                        tuple((p.obj, p.errors) for p in parsed if p.policy is None))


KIND = _NetworkPolicyKind()
