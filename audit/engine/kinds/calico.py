"""Calico NetworkPolicy and GlobalNetworkPolicy at L3/L4 (projectcalico.org/v3, crd.projectcalico.org/v1).

Per side of a connection, the Calico policies that select the pod and a Kubernetes
NetworkPolicy (which Calico runs as order 1000) are walked in order; within a policy the rules
in order; the first rule that matches decides: Allow, Deny, or Pass (skip the rest of the tier:
the namespace's default allow applies). Log decides nothing. When policies applied but none
decided, the connection is denied (end of tier).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audit.engine.addresses import IPBlock, IPNetwork, parse_cidr
from audit.engine.compiled import CompiledPeer, CompiledPolicy, CompiledPort, CompiledRule, CompiledSubject, Layer
from audit.engine.direction import DIRECTIONS, Direction
from audit.engine.kinds.base import Compiled, KindDeclaration, Resource
from audit.engine.ports import PROTOCOLS
from audit.engine.selection import PodSelection
from audit.engine.selectors import FieldError
from audit.inventory import Inventory, PolicyObject

NAMESPACE_LABEL = "projectcalico.org/namespace"
NAMESPACE_PREFIX = "pcns."
Labels = dict[str, str]
Match = Callable[[Mapping[str, str]], bool]

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
class CalicoSelector:
    """A compiled Calico selector expression (``audit.engine.selection.Matcher``), equal by its text."""

    text: str
    test: Match = field(compare=False, hash=False)
    empty_values: tuple[str, ...] = field(default=(), compare=False, hash=False)

    @property
    def empty(self) -> bool:
        return self.text.replace(" ", "") in ("", "all()")

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.test(labels)

    def __str__(self) -> str:
        return self.text or "all()"


def parse_calico_selector(text: Any) -> CalicoSelector:
    """A Calico selector as a matcher; raises SelectorError as Calico would reject it."""
    test = compile_selector(text)
    tokens = _tokens(text) if isinstance(text, str) else []
    empty = tuple(tokens[i - 1] for i in range(1, len(tokens) - 1) if tokens[i] == "==" and tokens[i + 1] in ("''", '""'))
    return CalicoSelector(text.strip() if isinstance(text, str) else "", test, empty)


@dataclass(frozen=True)
class CalicoView:
    """The labels Calico's selectors see (``audit.engine.selection.LabelView``)."""

    def pod(self, labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str],
            service_account: str, service_account_labels: Mapping[str, str]) -> Mapping[str, str]:
        return calico_labels(labels, namespace, namespace_labels)

    def namespace(self, name: str, labels: Mapping[str, str]) -> Mapping[str, str]:
        return labels


VIEW = CalicoView()
FAMILY = "Calico"
_KINDS = ("NetworkPolicy", "GlobalNetworkPolicy")


def compile_calico(obj: PolicyObject) -> tuple[CompiledPolicy | None, list[FieldError]]:
    """A Calico NetworkPolicy or GlobalNetworkPolicy in the compiled model, or the errors that reject it."""
    errors: list[FieldError] = []
    spec = obj.spec if isinstance(obj.spec, dict) else {}
    namespace = obj.namespace if obj.kind == "NetworkPolicy" else None
    key = f"Calico {obj.kind}/{namespace}/{obj.name}" if namespace else f"Calico {obj.kind}/{obj.name}"

    def selector(raw: Any, path: str) -> CalicoSelector | None:
        if raw is None:
            return None
        try:
            return parse_calico_selector(raw)
        except SelectorError as exc:
            errors.append(FieldError(path, f"invalid selector {raw!r}: {exc}"))
            return None

    order = spec.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
        errors.append(FieldError("spec.order", f"{order!r} must be a number"))
        order = None
    subject = selector(spec.get("selector", "all()"), "spec.selector") or parse_calico_selector("all()")
    ns_sel = selector(spec.get("namespaceSelector"), "spec.namespaceSelector")
    rules: list[CompiledRule] = []
    written: dict[Direction, bool] = {"Ingress": False, "Egress": False}
    for direction in DIRECTIONS:
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
            written[direction] = True
            protocol = _protocol(raw.get("protocol"), f"{path}.protocol", errors)
            sides = {}
            for side in ("source", "destination"):
                ent = raw.get(side) or {}
                if not isinstance(ent, dict):
                    errors.append(FieldError(f"{path}.{side}", "must be an object"))
                    ent = {}
                sides[side] = ent
            peer_side, own_side = ("source", "destination") if direction == "Ingress" else ("destination", "source")
            peer = _entity(sides[peer_side], f"{path}.{peer_side}", namespace, selector, errors)
            own = _entity(sides[own_side], f"{path}.{own_side}", namespace, selector, errors, own=True)
            ports = _ports(sides["destination"].get("ports"), protocol, f"{path}.destination", errors)
            limits = tuple(f"{path}.source.ports (the client's port) is not evaluated" for _ in [0] if sides["source"].get("ports"))
            if action == "Log":
                continue  # a Log rule decides nothing
            text = f"{action} from {_text(sides['source'])} to {_text(sides['destination'])}"
            rules.append(CompiledRule(direction, action, path, f"{key} {direction.lower()}[{i}]", text,
                                      (peer,) if peer is not None else (), peer is None, ports, own=own, limits=limits, index=i))
    types_raw = spec.get("types")
    if types_raw is not None and (not isinstance(types_raw, list) or not all(t in ("Ingress", "Egress") for t in types_raw)
                                  or len(set(types_raw)) != len(types_raw)):
        errors.append(FieldError("spec.types", f"{types_raw!r} must be a list of Ingress and Egress"))
        types_raw = None
    types: tuple[Direction, ...]
    if types_raw:
        types = tuple(d for d in DIRECTIONS if d in types_raw)
    else:
        types = tuple(d for d in DIRECTIONS if d == "Ingress" or written["Egress"])
    if errors:
        return None, errors
    in_effect = tuple(r for r in rules if r.direction in types)
    ignored = tuple((d, f"spec.{d.lower()} has rules but spec.types is {list(types)}: they are ignored")
                    for d in DIRECTIONS if written[d] and d not in types)
    layer = Layer("namespace", (float(order) if order is not None else float("inf"), key), "Calico order",
                  tuple((d, tuple(r for r in in_effect if r.direction == d)) for d in DIRECTIONS), types, ordered=True)
    selection = PodSelection(namespace=namespace, namespaces=ns_sel, pods=subject, view=VIEW)
    return CompiledPolicy(obj.kind, FAMILY, namespace, obj.name, key,
                          CompiledSubject("spec.selector", f"selector {subject}", selection, missing="selector" not in spec),
                          in_effect, types, (layer,), obj.source, obj.annotations, bool(types_raw), ignored,
                          api=f"Calico {obj.kind}", spec=obj.spec), errors


def _text(ent: dict[str, Any]) -> str:
    return str(ent.get("selector") or ent.get("namespaceSelector") or ent.get("nets") or "any")


def _entity(ent: dict[str, Any], path: str, namespace: str | None, selector: Callable[[Any, str], CalicoSelector | None],
            errors: list[FieldError], own: bool = False) -> CompiledPeer | None:
    """A rule's source or destination as a peer (None: it names everything, or on the rule's own
    side nothing narrows the subject). Its parts are ANDed; a namespaced policy's selectors stay
    in its namespace."""
    sel = selector(ent.get("selector"), f"{path}.selector")
    ns_sel = selector(ent.get("namespaceSelector"), f"{path}.namespaceSelector")
    nets = _nets(ent.get("nets"), f"{path}.nets", errors)
    not_nets = _nets(ent.get("notNets"), f"{path}.notNets", errors)
    if sel is None and ns_sel is None and not nets and not not_nets:
        return None
    pods = None
    if sel is not None or ns_sel is not None:
        pods = PodSelection(namespace=namespace if ns_sel is None else None, namespaces=ns_sel, pods=sel, view=VIEW)
    selectors = tuple((f"{path}.{name}", m) for name, m in (("selector", sel), ("namespaceSelector", ns_sel)) if m is not None)
    text = " ".join(f"{name}: {m}" for name, m in (("namespaceSelector", ns_sel), ("selector", sel)) if m is not None)
    text = " ".join(t for t in (text, f"nets {', '.join(map(str, nets))}" if nets else "",
                                f"notNets {', '.join(map(str, not_nets))}" if not_nets else "") if t)
    return CompiledPeer(path, text, pods, tuple(IPBlock(n) for n in nets), not_nets, selectors=selectors)


def _ports(raw: Any, protocol: str | None, path: str, errors: list[FieldError]) -> tuple[CompiledPort, ...] | None:
    """The destination ports with the rule's protocol (None: every port of every protocol)."""
    protocols = (protocol,) if protocol in PROTOCOLS else PROTOCOLS if protocol is None else ()
    entries = []
    for k, p in enumerate(raw or []):
        where = f"{path}.ports[{k}]"
        if isinstance(p, int) and not isinstance(p, bool):
            entries.append(CompiledPort(where, protocols, p))
        elif isinstance(p, str) and re.fullmatch(r"\d+:\d+", p):
            lo, hi = (int(x) for x in p.split(":"))
            entries.append(CompiledPort(where, protocols, lo, hi))
        elif isinstance(p, str) and p.isdigit():
            entries.append(CompiledPort(where, protocols, int(p)))
        elif isinstance(p, str):
            entries.append(CompiledPort(where, protocols, p))
        else:
            errors.append(FieldError(where, f"{p!r} is not a port, range or name"))
    if entries:
        return tuple(entries) if protocols else ()
    if protocol is None:
        return None
    return (CompiledPort(path.rsplit(".", 1)[0] + ".protocol", protocols),) if protocols else ()


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


class _CalicoKind:
    declaration = KindDeclaration(
        FAMILY,
        (Resource("NetworkPolicy", "projectcalico.org", ("v3",), "networkpolicies", namespaced=True, display="Calico NetworkPolicy"),
         Resource("GlobalNetworkPolicy", "projectcalico.org", ("v3",), "globalnetworkpolicies", namespaced=False,
                  display="Calico GlobalNetworkPolicy"),
         # Calico's aggregated API (v3) and its CRDs (v1) hold the same objects: read one of them.
         Resource("NetworkPolicy", "crd.projectcalico.org", ("v1",), "networkpolicies", namespaced=True, display="Calico NetworkPolicy",
                  same_as="networkpolicies.projectcalico.org"),
         Resource("GlobalNetworkPolicy", "crd.projectcalico.org", ("v1",), "globalnetworkpolicies", namespaced=False,
                  display="Calico GlobalNetworkPolicy", same_as="globalnetworkpolicies.projectcalico.org")),
        enforced_by={"calico": "yes", "canal": "yes"},
        summary="order, selector, namespaceSelector, types, Allow/Deny/Pass/Log rules, source/destination selector, "
                "namespaceSelector, nets, notNets, ports, protocol")

    def compile(self, objects: Sequence[PolicyObject], inventory: Inventory) -> Compiled:
        parsed = [(o, *compile_calico(o)) for o in objects]
        return Compiled(tuple(p for _, p, _ in parsed if p is not None), tuple((o, tuple(e)) for o, p, e in parsed if e))


KIND = _CalicoKind()
