"""Calico NetworkPolicy and GlobalNetworkPolicy at L3/L4 (projectcalico.org/v3, crd.projectcalico.org/v1).

Per side of a connection, the Calico policies that select the pod and a Kubernetes
NetworkPolicy (which Calico runs as order 1000) are walked in order; within a policy the rules
in order; the first rule that matches decides: Allow, Deny, or Pass (skip the rest of the tier:
the namespace's default allow applies). Log decides nothing. When policies applied but none
decided, the connection is denied (end of tier).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audit.engine.addresses import IPAddress, IPNetwork, parse_cidr
from audit.engine.direction import Direction
from audit.engine.kinds import Compiled, Enforcement, group_of
from audit.engine.ports import ALL, PROTOCOLS, MemoPorts, PortSet, resolve_ports
from audit.engine.selectors import FieldError
from audit.inventory import ContainerPort, ExtendedPolicy, SourceRef

if TYPE_CHECKING:
    from audit.engine.analysis import Analysis, Endpoint
    from audit.engine.stack import Action, Tier

NAMESPACE_LABEL = "projectcalico.org/namespace"
NAMESPACE_PREFIX = "pcns."
Labels = dict[str, str]
Match = Callable[[Labels], bool]

_TOKEN = re.compile(r"\s*(?:(\|\||&&|==|!=|\(|\)|\{|\}|,|!)|('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|([A-Za-z0-9_./\-]+))")


class SelectorError(ValueError):
    """A Calico selector that Calico would reject; the message says where."""


def calico_labels(pod_labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str]) -> Labels:
    labels = dict(pod_labels)
    labels[NAMESPACE_LABEL] = namespace
    labels.update({NAMESPACE_PREFIX + k: v for k, v in namespace_labels.items()})
    return labels


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SelectorError(f"unexpected character {text[pos:].strip()[0]!r} at position {pos}")
        out.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    return out


def compile_selector(text: Any) -> Match:
    """Compile Calico's selector expression language:
    all(), global(), has(k), !has(k), k == 'v', k != 'v', k in {'a','b'}, k not in {...},
    k contains 'x', k starts with 'x', k ends with 'x', !, &&, ||, parentheses."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return lambda labels: True  # an empty selector selects everything
    if not isinstance(text, str):
        raise SelectorError("must be a string expression")
    tokens = _tokens(text)
    pos = 0

    def peek(k: int = 0) -> str | None:
        return tokens[pos + k] if pos + k < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal pos
        tok = peek()
        if tok is None or (expected is not None and tok != expected):
            raise SelectorError(f"expected {expected or 'more'} at token {pos + 1}" + (f", found {tok!r}" if tok else ""))
        pos += 1
        return tok

    def value() -> str:
        tok = take()
        if len(tok) < 2 or tok[0] not in "'\"" or tok[-1] != tok[0]:
            raise SelectorError(f"expected a quoted value at token {pos}, found {tok!r}")
        return tok[1:-1]

    def atom() -> Match:
        tok = peek()
        if tok == "(":
            take("(")
            inner = disjunction()
            take(")")
            return inner
        if tok == "!":
            take("!")
            inner = atom()
            return lambda labels: not inner(labels)
        if tok in ("all", "global") and peek(1) == "(":
            take()
            take("(")
            take(")")
            return lambda labels: True
        if tok == "has" and peek(1) == "(":
            take()
            take("(")
            key = take()
            take(")")
            return lambda labels: key in labels
        key = take()
        op = peek()
        if op == "==":
            take()
            v = value()
            return lambda labels: labels.get(key) == v
        if op == "!=":
            take()
            v = value()
            return lambda labels: labels.get(key) != v
        if op in ("in", "not"):
            negate = take() == "not"
            if negate:
                take("in")
            take("{")
            values: set[str] = set()
            while peek() != "}":
                values.add(value())
                if peek() not in (",", "}"):
                    raise SelectorError(f"expected , or }} at token {pos + 1}" + (f", found {peek()!r}" if peek() else ""))
                if peek() == ",":
                    take(",")
            take("}")
            if negate:
                return lambda labels: labels.get(key) not in values
            return lambda labels: labels.get(key) in values
        if op in ("contains", "starts", "ends"):
            take()
            if op != "contains":
                take("with")
            v = value()
            tests: dict[str, Callable[[str], bool]] = {"contains": lambda s: v in s, "starts": lambda s: s.startswith(v),
                                                      "ends": lambda s: s.endswith(v)}
            test = tests[op]
            return lambda labels: key in labels and test(labels[key])
        raise SelectorError(f"expected an operator after {key!r} at token {pos + 1}" + (f", found {op!r}" if op else ""))

    def conjunction() -> Match:
        parts = [atom()]
        while peek() == "&&":
            take()
            parts.append(atom())
        return parts[0] if len(parts) == 1 else (lambda labels: all(p(labels) for p in parts))

    def disjunction() -> Match:
        parts = [conjunction()]
        while peek() == "||":
            take()
            parts.append(conjunction())
        return parts[0] if len(parts) == 1 else (lambda labels: any(p(labels) for p in parts))

    result = disjunction()
    if pos != len(tokens):
        raise SelectorError(f"unexpected {tokens[pos]!r} at token {pos + 1}")
    return result


@dataclass(frozen=True)
class EntityRule:
    """source or destination of a Calico rule."""

    selector: Match | None = None
    namespace_selector: Match | None = None
    nets: tuple[IPNetwork, ...] = ()
    not_nets: tuple[IPNetwork, ...] = ()
    ports: tuple[tuple[int | str, int | None], ...] = ()  # (port or name, end)
    text: str = ""


@dataclass(frozen=True)
class CalicoRule:
    direction: Direction
    index: int
    action: str
    protocol: str | None
    source: EntityRule
    destination: EntityRule

    @property
    def field(self) -> str:
        return f"{self.direction.lower()}[{self.index}]"

    def port_set(self, dst_ports: tuple[ContainerPort, ...] | None) -> PortSet:
        protocols = (self.protocol,) if self.protocol in PROTOCOLS else PROTOCOLS if self.protocol is None else ()
        if not self.destination.ports:
            return resolve_ports([(protocols, None, None)], dst_ports) if self.protocol is not None else ALL
        return resolve_ports(((protocols, port, end) for port, end in self.destination.ports), dst_ports)


@dataclass(frozen=True)
class CalicoPolicy:
    kind: str
    namespace: str | None
    name: str
    order: float
    selector: Match
    namespace_selector: Match | None
    types: tuple[Direction, ...]
    ingress: tuple[CalicoRule, ...]
    egress: tuple[CalicoRule, ...]
    selector_text: str = "all()"
    source: SourceRef = SourceRef()

    @property
    def key(self) -> str:
        return f"Calico {self.kind}/{self.namespace}/{self.name}" if self.namespace else f"Calico {self.kind}/{self.name}"

    def rules(self, direction: Direction) -> tuple[CalicoRule, ...]:
        if direction not in self.types:
            return ()
        return self.ingress if direction == "Ingress" else self.egress


def parse_calico(obj: ExtendedPolicy) -> tuple[CalicoPolicy | None, list[FieldError]]:
    errors: list[FieldError] = []
    spec = obj.spec if isinstance(obj.spec, dict) else {}

    def selector(raw: Any, path: str) -> Match | None:
        if raw is None:
            return None
        try:
            return compile_selector(raw)
        except SelectorError as exc:
            errors.append(FieldError(path, f"invalid selector {raw!r}: {exc}"))
            return None

    order = spec.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
        errors.append(FieldError("spec.order", f"{order!r} must be a number"))
        order = None
    subject = selector(spec.get("selector", "all()"), "spec.selector") or (lambda labels: True)
    ns_sel = selector(spec.get("namespaceSelector"), "spec.namespaceSelector")
    rules: dict[Direction, list[CalicoRule]] = {"Ingress": [], "Egress": []}
    for direction in ("Ingress", "Egress"):
        raw_rules = spec.get(direction.lower()) or []
        if not isinstance(raw_rules, list):
            errors.append(FieldError(f"spec.{direction.lower()}", "must be a list"))
            continue
        for i, raw in enumerate(raw_rules):
            path = f"spec.{direction.lower()}[{i}]"
            if not isinstance(raw, dict):
                errors.append(FieldError(path, "must be an object"))
                continue
            action = raw.get("action")
            if action not in ("Allow", "Deny", "Pass", "Log"):
                errors.append(FieldError(f"{path}.action", f"{action!r} must be Allow, Deny, Pass or Log"))
                continue
            protocol = _protocol(raw.get("protocol"), f"{path}.protocol", errors)
            entities = []
            for side in ("source", "destination"):
                ent = raw.get(side) or {}
                if not isinstance(ent, dict):
                    errors.append(FieldError(f"{path}.{side}", "must be an object"))
                    ent = {}
                nets = _nets(ent.get("nets"), f"{path}.{side}.nets", errors)
                not_nets = _nets(ent.get("notNets"), f"{path}.{side}.notNets", errors)
                ports: list[tuple[int | str, int | None]] = []
                for p in ent.get("ports") or []:
                    if isinstance(p, int) and not isinstance(p, bool):
                        ports.append((p, None))
                    elif isinstance(p, str) and re.fullmatch(r"\d+:\d+", p):
                        lo, hi = (int(x) for x in p.split(":"))
                        ports.append((lo, hi))
                    elif isinstance(p, str) and p.isdigit():
                        ports.append((int(p), None))
                    elif isinstance(p, str):
                        ports.append((p, None))
                    else:
                        errors.append(FieldError(f"{path}.{side}.ports", f"{p!r} is not a port, range or name"))
                entities.append(EntityRule(selector(ent.get("selector"), f"{path}.{side}.selector"),
                                           selector(ent.get("namespaceSelector"), f"{path}.{side}.namespaceSelector"),
                                           nets, not_nets, tuple(ports), str(ent.get("selector") or ent.get("namespaceSelector") or ent.get("nets") or "any")))
            rules[direction].append(CalicoRule(direction, i, action, protocol, entities[0], entities[1]))
    types_raw = spec.get("types")
    if types_raw is not None and (not isinstance(types_raw, list) or not all(t in ("Ingress", "Egress") for t in types_raw)
                                  or len(set(types_raw)) != len(types_raw)):
        errors.append(FieldError("spec.types", f"{types_raw!r} must be a list of Ingress and Egress"))
        types_raw = None
    if types_raw:
        types = tuple(t for t in ("Ingress", "Egress") if t in types_raw)
    else:
        types = ("Ingress",) + (("Egress",) if rules["Egress"] else ())
    if errors:
        return None, errors
    namespace = obj.namespace if obj.kind == "NetworkPolicy" else None
    kind = "NetworkPolicy" if obj.kind == "NetworkPolicy" else "GlobalNetworkPolicy"
    raw_selector = spec.get("selector")
    return CalicoPolicy(kind, namespace, obj.name, float(order) if order is not None else float("inf"), subject, ns_sel,
                        types, tuple(rules["Ingress"]), tuple(rules["Egress"]),  # type: ignore[arg-type]
                        raw_selector.strip() if isinstance(raw_selector, str) else "all()", obj.source), errors


def entity_matches(ent: EntityRule, policy: CalicoPolicy, labels: Labels | None, namespace: str | None,
                   ns_labels: Labels | None, ips: tuple[IPAddress, ...]) -> bool:
    """Whether a rule's source/destination names an endpoint (labels) or an address (labels None)."""
    if ent.nets and not any(ip.version == n.version and ip in n for ip in ips for n in ent.nets):
        return False
    if ent.not_nets and any(ip.version == n.version and ip in n for ip in ips for n in ent.not_nets):
        return False
    if ent.selector is None and ent.namespace_selector is None:
        return True
    if labels is None:
        return False  # selectors name endpoints, never outside addresses
    if ent.namespace_selector is not None:
        if not ent.namespace_selector(ns_labels or {}):
            return False
    elif policy.namespace is not None and namespace != policy.namespace:
        return False  # a namespaced policy's selectors stay in its namespace
    return ent.selector is None or ent.selector(labels)


_PROTOCOL_NUMBERS = {"6": "TCP", "17": "UDP", "132": "SCTP", "1": "ICMP", "58": "ICMPv6", "136": "UDPLite"}
_PROTOCOL_NAMES = {"TCP": "TCP", "UDP": "UDP", "SCTP": "SCTP", "ICMP": "ICMP", "ICMPV6": "ICMPv6", "UDPLITE": "UDPLite"}


def _protocol(raw: Any, path: str, errors: list[FieldError]) -> str | None:
    """Calico's protocol: a name (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite) or a number 1-255;
    numbers of the protocols a port can name become their names."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= 255:
        return _PROTOCOL_NUMBERS.get(str(raw), str(raw))
    if isinstance(raw, str):
        if raw.isdigit() and 1 <= int(raw) <= 255:
            return _PROTOCOL_NUMBERS.get(str(int(raw)), str(int(raw)))
        if raw.upper() in _PROTOCOL_NAMES:
            return _PROTOCOL_NAMES[raw.upper()]
    errors.append(FieldError(path, f"{raw!r} is not a protocol name (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite) or number 1-255"))
    return None


def _nets(raw: Any, path: str, errors: list[FieldError]) -> tuple[IPNetwork, ...]:
    """CIDRs, or bare addresses (Calico reads `192.0.2.10` as /32); anything else is an error."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list of CIDRs"))
        return ()
    out = []
    for k, item in enumerate(raw):
        text = item if isinstance(item, str) else None
        if text is not None and "/" not in text:
            text = f"{text}/{128 if ':' in text else 32}"
        net = parse_cidr(text)
        if net is None:
            errors.append(FieldError(f"{path}[{k}]", f"{item!r} is not a valid CIDR or address"))
        else:
            out.append(net)
    return tuple(out)


def endpoint_view(analysis: Analysis, other: Endpoint) -> tuple[Labels | None, str | None, Labels | None, tuple[IPAddress, ...]]:
    """(Calico labels, namespace, namespace labels, IPs) of an endpoint, for rule matching."""
    if not isinstance(other, int):
        return None, None, None, (other,)
    memo: dict[int, tuple[Labels | None, str | None, Labels | None, tuple[IPAddress, ...]]] = analysis.memo.setdefault(("calico-view",), {})  # type: ignore[assignment]
    hit = memo.get(other)
    if hit is None:
        cls = analysis.classes[other]
        ns_labels = analysis.namespace_labels(cls.namespace)
        hit = memo[other] = (calico_labels(cls.label_map, cls.namespace, ns_labels), cls.namespace, ns_labels, cls.ips)
    return hit


def _everyone(rule: CalicoRule) -> bool:
    peer, own = (rule.source, rule.destination) if rule.direction == "Ingress" else (rule.destination, rule.source)
    open_peer = peer.selector is None and peer.namespace_selector is None and not peer.nets and not peer.not_nets
    own_all = own.selector is None and own.namespace_selector is None and not own.nets and not own.not_nets
    return open_peer and own_all and not rule.destination.ports and not rule.source.ports and rule.protocol is None


class CalicoStackRule(MemoPorts):
    __slots__ = ("action", "everyone", "label", "policy", "rule")
    subject_dependent = True  # a rule's own side (destination of an ingress rule) may narrow the subject

    def __init__(self, policy: CalicoPolicy, rule: CalicoRule):
        self.policy = policy
        self.rule = rule
        self.action: Action = rule.action  # type: ignore[assignment]  # Log rules are left out at compile
        self.label = f"{policy.key} {rule.field}"
        self.everyone = _everyone(rule)
        super().__init__()

    def names(self, analysis: Analysis, subject: int, other: Endpoint) -> bool:
        o = endpoint_view(analysis, other)
        s = endpoint_view(analysis, subject)
        src, dst = (o, s) if self.rule.direction == "Ingress" else (s, o)
        rule = self.rule
        return (entity_matches(rule.source, self.policy, *src)
                and entity_matches(EntityRule(rule.destination.selector, rule.destination.namespace_selector,
                                              rule.destination.nets, rule.destination.not_nets), self.policy, *dst))

    def port_set(self, dst_ports: tuple[ContainerPort, ...] | None) -> PortSet:
        return self.rule.port_set(dst_ports)

    def peer_sets(self, analysis: Analysis) -> None:
        return None

    def describe(self) -> str:
        return f"{self.rule.action} from {self.rule.source.text} to {self.rule.destination.text}"


class CalicoStackPolicy:
    """A Calico policy in the namespace tier at its order (NetworkPolicy sits at 1000)."""

    __slots__ = ("_rules", "key", "order", "policy", "source")
    kind = "Calico"
    tier: Tier = "namespace"
    note = "Calico order"

    def __init__(self, policy: CalicoPolicy):
        self.policy = policy
        self.key = policy.key
        self.order = (policy.order, policy.key)
        self.source = policy.source
        self._rules = {d: tuple(CalicoStackRule(policy, r) for r in policy.rules(d) if r.action != "Log")
                       for d in ("Ingress", "Egress")}

    def rules(self, direction: Direction) -> tuple[CalicoStackRule, ...]:
        return self._rules[direction]

    def isolates(self, direction: Direction) -> bool:
        return direction in self.policy.types

    def selects(self, analysis: Analysis, cid: int) -> bool:
        labels, ns, ns_labels, _ = endpoint_view(analysis, cid)
        p = self.policy
        return ((p.namespace is None or p.namespace == ns) and (p.namespace_selector is None or p.namespace_selector(ns_labels or {}))
                and p.selector(labels or {}))

    def whole_namespace(self, analysis: Analysis, namespace: str) -> bool:
        """Only a selector that is all() (or empty) selects every pod, present and future: an
        expression is never judged on a made-up pod."""
        p = self.policy
        if p.namespace not in (None, namespace) or p.selector_text not in ("", "all()"):
            return False
        return p.namespace_selector is None or p.namespace_selector(analysis.namespace_labels(namespace))

    def networks(self) -> Iterable[IPNetwork]:
        for direction in ("Ingress", "Egress"):
            for rule in self.policy.rules(direction):
                for entity in (rule.source, rule.destination):
                    yield from entity.nets
                    yield from entity.not_nets


class _CalicoKind:
    name = "Calico"
    enforced_by: dict[str, Enforcement] = {"calico": "yes", "canal": "yes"}

    def reads(self, obj: ExtendedPolicy) -> bool:
        return obj.kind in ("NetworkPolicy", "GlobalNetworkPolicy") and group_of(obj) in ("projectcalico.org", "crd.projectcalico.org")

    def compile(self, objects: Sequence[ExtendedPolicy]) -> Compiled:
        parsed = [(o, *parse_calico(o)) for o in objects]
        valid = [p for _, p, _ in parsed if p is not None]
        return Compiled(tuple(CalicoStackPolicy(p) for p in valid), tuple((o, tuple(e)) for o, p, e in parsed if e), tuple(parsed))


KIND = _CalicoKind()
