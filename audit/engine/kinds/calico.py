"""Calico NetworkPolicy and GlobalNetworkPolicy (projectcalico.org/v3, crd.projectcalico.org/v1), read as Calico reads them.

Sources: Calico's API types and defaults (api/pkg/apis/projectcalico/v3, api/pkg/defaults), its
validator (libcalico-go/lib/validator/v3), the conversion of rules into Felix's model
(libcalico-go/lib/backend/syncersv1/updateprocessors: namespace scoping of selectors, service
accounts, services), the labels it gives pods and namespaces (libcalico-go/lib/backend/k8s/
conversion) and Felix's tiers (felix/rules/endpoints.go).

Per side of a connection, Calico's tiers are walked in order (a Kubernetes NetworkPolicy sits in
the default tier at order 1000); in a tier, the policies that select the pod for that direction
by `order`, their rules in order; the first rule that matches decides: Allow, Deny, or Pass (to
the next tier). Log decides nothing. When policies of a tier applied and none decided, the tier's
default action applies (Deny, or Pass for a tier that says so). What Felix does not enforce at
L3/L4 (HTTP matches, which need Application Layer Policy) and what an inventory cannot resolve
(network sets, host endpoints, the client's port) is named, never widened.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audit.engine.addresses import IPBlock, IPNetwork, parse_cidr
from audit.engine.compiled import DEFAULT_GROUP, Action, CompiledPeer, CompiledPolicy, CompiledPort, CompiledRule, CompiledSubject, Layer
from audit.engine.direction import DIRECTIONS, Direction
from audit.engine.kinds.base import Compiled, KindDeclaration, Resource, Support
from audit.engine.ports import PROTOCOLS
from audit.engine.selection import PodSelection
from audit.engine.selectors import FieldError, Requirement, Selector, show
from audit.inventory import Inventory, PolicyObject

NAMESPACE_LABEL = "projectcalico.org/namespace"
NAME_LABEL = "projectcalico.org/name"
ACCOUNT_LABEL = "projectcalico.org/serviceaccount"
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
NAMESPACE_PREFIX = "pcns."
ACCOUNT_PREFIX = "pcsa."
FAMILY = "Calico"
Labels = dict[str, str]
Match = Callable[[Mapping[str, str]], bool]

_TOKEN = re.compile(r"[ \t]*(?:(\|\||&&|==|!=|\(|\)|\{|\}|,|!)|('[^']*'|\"[^\"]*\")|([A-Za-z0-9_./\-]+))")
_BUILTIN_TIERS = {"default": (1_000_000.0, True), "kube-admin": (1000.0, False), "kube-baseline": (10_000_000.0, False),
                  "adminnetworkpolicy": (1000.0, False), "baselineadminnetworkpolicy": (10_000_000.0, False)}
"""Tier -> (order, whether its end denies): Calico's built-in tiers (kube-admin and kube-baseline pass by default)."""
_PROTOCOL_NUMBERS = {"6": "TCP", "17": "UDP", "132": "SCTP", "1": "ICMP", "58": "ICMPv6", "136": "UDPLite"}
_PROTOCOL_NAMES = ("TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite")
_SPEC_FIELDS = {"tier", "order", "selector", "types", "ingress", "egress", "serviceAccountSelector", "performanceHints"}
_GLOBAL_FIELDS = {"namespaceSelector", "doNotTrack", "preDNAT", "applyOnForward"}
_RULE_FIELDS = {"action", "ipVersion", "protocol", "notProtocol", "icmp", "notICMP", "source", "destination", "http", "metadata"}
_ENTITY_FIELDS = {"nets", "notNets", "selector", "notSelector", "namespaceSelector", "ports", "notPorts", "serviceAccounts", "services"}
_PORT_NAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,128}$")


class SelectorError(ValueError):
    """A Calico selector that Calico would reject; the message says where."""


def calico_labels(pod_labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str],
                  service_account: str | None = None, account_labels: Mapping[str, str] | None = None) -> Labels:
    """The labels Calico's selectors see on a pod: its own (but `pcns.`/`pcsa.` ones), its namespace,
    orchestrator and service account, then its namespace's labels (`pcns.`) and its service
    account's (`pcsa.`) where the pod does not set the key itself."""
    labels = {k: v for k, v in pod_labels.items() if not k.startswith((NAMESPACE_PREFIX, ACCOUNT_PREFIX))}
    labels[NAMESPACE_LABEL] = namespace
    labels[ORCHESTRATOR_LABEL] = "k8s"
    if service_account:
        labels[ACCOUNT_LABEL] = service_account
    inherited = {NAMESPACE_PREFIX + k: v for k, v in namespace_labels.items()}
    inherited[NAMESPACE_PREFIX + NAME_LABEL] = namespace
    if service_account:
        inherited.update({ACCOUNT_PREFIX + k: v for k, v in (account_labels or {}).items()})
        inherited[ACCOUNT_PREFIX + NAME_LABEL] = service_account
    for k, v in inherited.items():
        labels.setdefault(k, v)
    return labels


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip(" \t") == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SelectorError(f"unexpected character {text[pos:].lstrip(' ' + chr(9))[0]!r} at position {pos}")
        out.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    return out


def compile_selector(text: Any, prefix: str = "") -> Match:
    """Compile Calico's selector expression language:
    all(), global(), has(k), !has(k), k == 'v', k != 'v', k in {'a','b'}, k not in {...},
    k contains 'x', k starts with 'x', k ends with 'x', !, &&, ||, parentheses; only spaces and
    tabs separate tokens. ``prefix`` is put before every label key (Calico's `pcns.` and `pcsa.`)."""
    if text is None or (isinstance(text, str) and not text.strip(" \t")):
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
            key = prefix + take()
            take(")")
            return lambda labels: key in labels
        key = take()
        if key[0] in "'\"":
            raise SelectorError(f"expected a label at token {pos}, found {key!r}")
        key = prefix + key
        op = peek()
        if op == "==":
            take()
            v = value()
            return lambda labels: labels.get(key) == v
        if op == "!=":
            take()
            v = value()
            return lambda labels: labels.get(key) != v
        if op in ("in", "not", "notin"):
            negate = take() != "in"
            if op == "not":
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
        if op in ("contains", "starts", "ends", "startswith", "endswith"):
            take()
            if op in ("starts", "ends"):
                take("with")
            v = value()
            tests: dict[str, Callable[[str], bool]] = {"contains": lambda s: v in s, "starts": lambda s: s.startswith(v),
                                                      "ends": lambda s: s.endswith(v)}
            test = tests[op.removesuffix("with")]
            return lambda labels: key in labels and test(labels[key])
        raise SelectorError(f"expected an operator after {key[len(prefix):]!r} at token {pos + 1}" + (f", found {op!r}" if op else ""))

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


def parse_calico_selector(text: Any, prefix: str = "") -> CalicoSelector:
    """A Calico selector as a matcher; raises SelectorError as Calico would reject it."""
    test = compile_selector(text, prefix)
    tokens = _tokens(text) if isinstance(text, str) else []
    empty = tuple(tokens[i - 1] for i in range(1, len(tokens) - 1) if tokens[i] == "==" and tokens[i + 1] in ("''", '""'))
    return CalicoSelector((prefix + "|" if prefix else "") + text.strip(" \t") if isinstance(text, str) else "", test, empty)


@dataclass(frozen=True)
class _Not:
    """A matcher that is true where another is false (an entity's notSelector)."""

    inner: CalicoSelector

    @property
    def empty(self) -> bool:
        return False

    @property
    def empty_values(self) -> tuple[str, ...]:
        return ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return not self.inner.matches(labels)

    def __str__(self) -> str:
        return f"not ({self.inner})"


@dataclass(frozen=True)
class _All:
    """Matchers ANDed (a selector, a notSelector and service accounts on one side)."""

    parts: tuple[Any, ...]

    @property
    def empty(self) -> bool:
        return all(p.empty for p in self.parts)

    @property
    def empty_values(self) -> tuple[str, ...]:
        return tuple(v for p in self.parts for v in p.empty_values)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(p.matches(labels) for p in self.parts)

    def __str__(self) -> str:
        return " && ".join(f"({p})" for p in self.parts)


def _and(parts: list[Any]) -> Any | None:
    parts = [p for p in parts if p is not None and not p.empty]
    return None if not parts else parts[0] if len(parts) == 1 else _All(tuple(parts))


@dataclass(frozen=True)
class CalicoView:
    """The labels Calico's selectors see (``audit.engine.selection.LabelView``): a namespace's own
    labels and its name as `projectcalico.org/name`, as a namespaceSelector reads them."""

    def pod(self, labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str],
            service_account: str, service_account_labels: Mapping[str, str]) -> Mapping[str, str]:
        return calico_labels(labels, namespace, namespace_labels, service_account, service_account_labels)

    def namespace(self, name: str, labels: Mapping[str, str]) -> Mapping[str, str]:
        return {**labels, NAME_LABEL: name}


VIEW = CalicoView()


@dataclass(frozen=True)
class Tiers:
    """Calico's tiers: name -> (order, whether its end denies), the built-in ones and those in the inventory."""

    known: Mapping[str, tuple[float, bool]]

    @classmethod
    def of(cls, objects: Sequence[PolicyObject], errors: dict[int, list[FieldError]]) -> Tiers:
        known = dict(_BUILTIN_TIERS)
        for obj in objects:
            spec = obj.spec if isinstance(obj.spec, dict) else {}
            order, action = spec.get("order"), spec.get("defaultAction", "Deny")
            if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
                errors.setdefault(id(obj), []).append(FieldError("spec.order", f"{order!r} must be a number"))
                continue
            if action not in ("Deny", "Pass"):
                errors.setdefault(id(obj), []).append(FieldError("spec.defaultAction", f"{action!r}: supported values: Deny, Pass"))
                continue
            if obj.name not in ("default", "kube-admin", "kube-baseline"):  # built-in tiers are fixed (the CRD's rules)
                known[obj.name] = (float(order) if order is not None else float("inf"), action == "Deny")
        return cls(known)


@dataclass
class _Reader:
    obj: PolicyObject
    inventory: Inventory
    errors: list[FieldError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def namespace(self) -> str | None:
        return self.obj.namespace if self.obj.kind == "NetworkPolicy" else None

    def unknown(self, raw: Mapping[str, Any], known: set[str], path: str) -> None:
        for key in sorted(set(raw) - known, key=str):
            self.errors.append(FieldError(f"{path}.{key}", "unknown field (not in Calico's API: kubectl's strict field validation rejects it)"))

    def selector(self, raw: Any, path: str, prefix: str = "", global_ok: bool = False) -> CalicoSelector | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            self.errors.append(FieldError(path, f"{show(raw)} must be a selector string"))
            return None
        if len(raw) > 1024:
            self.errors.append(FieldError(path, "must be at most 1024 characters"))
            return None
        if "global(" in raw and not (global_ok and raw.replace(" ", "") == "global()"):
            self.errors.append(FieldError(path, "global() is allowed only as a rule's whole namespaceSelector"))
            return None
        try:
            return parse_calico_selector(raw, prefix)
        except SelectorError as exc:
            self.errors.append(FieldError(path, f"invalid selector {show(raw)}: {exc}"))
            return None

    def rule(self, raw: Any, direction: Direction, index: int, label: str) -> tuple[CompiledRule | None, bool]:
        """One rule, and whether it is one at all (a Log rule decides nothing but is a rule)."""
        path = f"spec.{direction.lower()}[{index}]"
        if not isinstance(raw, dict):
            self.errors.append(FieldError(path, "must be an object"))
            return None, False
        self.unknown(raw, _RULE_FIELDS, path)
        action = raw.get("action")
        if action not in ("Allow", "Deny", "Pass", "Log"):
            self.errors.append(FieldError(f"{path}.action", f"{show(action)}: supported values: Allow, Deny, Pass, Log"))
            return None, False
        protocol = _protocol(raw.get("protocol"), f"{path}.protocol", self.errors)
        not_protocol = _protocol(raw.get("notProtocol"), f"{path}.notProtocol", self.errors)
        version = raw.get("ipVersion")
        if version is not None and version not in (4, 6):
            self.errors.append(FieldError(f"{path}.ipVersion", f"{show(version)}: supported values: 4, 6"))
            version = None
        limits: list[str] = []
        for key in ("icmp", "notICMP"):
            self.icmp(raw.get(key), protocol, f"{path}.{key}", key == "icmp")
        if raw.get("icmp") is not None or raw.get("notICMP") is not None:
            limits.append(f"{path}: ICMP type and code")
        if (protocol in ("ICMP", "1") and version == 6) or (protocol in ("ICMPv6", "58") and version == 4):
            self.errors.append(FieldError(f"{path}.ipVersion", f"{version} does not carry {protocol}"))
        sides: dict[str, dict[str, Any]] = {}
        for side in ("source", "destination"):
            ent = raw.get(side) or {}
            if not isinstance(ent, dict):
                self.errors.append(FieldError(f"{path}.{side}", "must be an object"))
                ent = {}
            self.unknown(ent, _ENTITY_FIELDS, f"{path}.{side}")
            sides[side] = ent
        peer_side, own_side = ("source", "destination") if direction == "Ingress" else ("destination", "source")
        nets = [n for side in sides.values() for key in ("nets", "notNets") for n in _nets(side.get(key), "", [])]
        if len({n.version for n in nets}) > 1:
            self.errors.append(FieldError(path, "rule contains both IPv4 and IPv6 CIDRs"))
        if version is not None and any(n.version != version for n in nets):
            self.errors.append(FieldError(path, f"rule's CIDRs do not match ipVersion {version}"))
        if nets and version is None:
            version = nets[0].version
        peer = self.entity(sides[peer_side], f"{path}.{peer_side}", direction, peer_side)
        own = self.entity(sides[own_side], f"{path}.{own_side}", direction, own_side)
        if (direction == "Egress" and sides["source"].get("services")) or (direction == "Ingress" and sides["destination"].get("services")):
            side = "source" if direction == "Egress" else "destination"
            self.errors.append(FieldError(f"{path}.{side}.services", "a Service may be named only in an ingress rule's source or an "
                                                                      "egress rule's destination"))
        ports = self.ports(sides["destination"], protocol, not_protocol, f"{path}.destination")
        not_ports = self.not_ports(sides["destination"], protocol, f"{path}.destination")
        if sides["source"].get("ports") or sides["source"].get("notPorts"):
            self.check_ports(sides["source"], protocol, f"{path}.source")
            limits.append(f"{path}.source ports (the client's port)")
        if raw.get("http") is not None:
            self.http(raw["http"], action, protocol, direction, f"{path}.http")
            limits.append(f"HTTP rules restrict {path} (enforced only with Calico's Application Layer Policy; Felix alone allows at L4)")
        service = sides["destination"].get("services") if direction == "Egress" else None
        if isinstance(service, dict) and (sides["destination"].get("ports") or sides["destination"].get("notPorts")):
            self.errors.append(FieldError(f"{path}.destination.ports", "cannot be combined with destination.services (the Service's ports apply)"))
        if peer is not None and peer.pods is not None and isinstance(service, dict):
            ports = self.service_ports(service, protocol)
        if action == "Log":
            return None, True
        text = f"{action} from {_text(sides['source'])} to {_text(sides['destination'])}"
        act: Action = action
        return CompiledRule(direction, act, path, label, text, (peer,) if peer is not None else (), peer is None, ports, not_ports,
                            own, tuple(limits), index=index, ip_family=version), True

    def entity(self, ent: dict[str, Any], path: str, direction: Direction, side: str) -> CompiledPeer | None:
        """A rule's source or destination as a peer (None: it names everything). Its parts are ANDed
        (rules.go getEndpointSelector): the namespace scope (namespaceSelector, else the policy's own
        namespace for a NetworkPolicy, else every namespace) applies as soon as a selector, a
        notSelector or service accounts are given; nets alone name any address."""
        sel = self.selector(ent.get("selector"), f"{path}.selector")
        not_sel = self.selector(ent.get("notSelector"), f"{path}.notSelector")
        ns_raw = ent.get("namespaceSelector")
        ns_global = isinstance(ns_raw, str) and ns_raw.replace(" ", "") == "global()"
        ns_sel = None if ns_global else self.selector(ns_raw, f"{path}.namespaceSelector", global_ok=True)
        accounts = self.accounts(ent.get("serviceAccounts"), f"{path}.serviceAccounts")
        nets = _nets(ent.get("nets"), f"{path}.nets", self.errors)
        not_nets = _nets(ent.get("notNets"), f"{path}.notNets", self.errors)
        if any(n.prefixlen == 0 for n in not_nets):
            self.errors.append(FieldError(f"{path}.notNets", "a catch-all CIDR in notNets matches nothing (Calico rejects it)"))
        services = ent.get("services")
        if services is not None:
            return self.service_peer(services, ent, path)
        if ns_global:
            return CompiledPeer(path, "namespaceSelector: global()", unresolvable="namespaceSelector global(): host endpoints and "
                                                                               "global network sets are not in the inventory")
        scoped = any(x is not None for x in (sel, not_sel, ns_sel, accounts)) or ns_raw is not None
        if not scoped and not nets and not not_nets:
            return None
        pods = None
        if scoped:
            namespace = self.namespace if ns_raw is None else None
            pods = PodSelection(namespace=namespace, namespaces=ns_sel, pods=_and([sel, _Not(not_sel) if not_sel else None, accounts]),
                                view=VIEW)
        selectors = tuple((f"{path}.{name}", m) for name, m in (("selector", sel), ("namespaceSelector", ns_sel)) if m is not None)
        if not_sel is not None and self.namespace is None and ns_raw is None and sel is None and accounts is None:
            # A global notSelector alone names anything but those endpoints, outside addresses included.
            return CompiledPeer(path, f"notSelector: {not_sel}", None, tuple(IPBlock(n) for n in nets), not_nets,
                                not_pods=PodSelection(pods=not_sel, view=VIEW), selectors=selectors)
        text = " ".join(t for t in (
            f"namespaceSelector: {ns_sel}" if ns_sel is not None else "",
            f"selector: {sel}" if sel is not None else "",
            f"notSelector: {not_sel}" if not_sel is not None else "",
            f"serviceAccounts: {accounts}" if accounts is not None else "",
            f"nets {', '.join(map(str, nets))}" if nets else "",
            f"notNets {', '.join(map(str, not_nets))}" if not_nets else "") if t)
        return CompiledPeer(path, text, pods, tuple(IPBlock(n) for n in nets), not_nets, selectors=selectors)

    def accounts(self, raw: Any, path: str) -> Any | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.errors.append(FieldError(path, "must be an object with names and selector"))
            return None
        self.unknown(raw, {"names", "selector"}, path)
        names = raw.get("names")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            self.errors.append(FieldError(f"{path}.names", "must be a list of service account names"))
            names = None
        by_name = None
        if names:
            wanted = frozenset(names)

            def named(labels: Mapping[str, str]) -> bool:
                return labels.get(ACCOUNT_LABEL) in wanted

            by_name = CalicoSelector(f"{ACCOUNT_LABEL} in {{{', '.join(repr(n) for n in sorted(wanted))}}}", named)
        # The selector reads the account's labels (pcsa.*); every pod has an account (the API server
        # defaults it), so `all()` is every pod.
        by_labels = self.selector(raw.get("selector"), f"{path}.selector", prefix=ACCOUNT_PREFIX)
        return _and([by_name, by_labels])

    def service_peer(self, raw: Any, ent: dict[str, Any], path: str) -> CompiledPeer:
        """A Service as a peer: the pods its selector selects in its namespace (Felix matches the
        EndpointSlices' addresses, and for a destination their ports)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            self.errors.append(FieldError(f"{path}.services.name", "required"))
            return CompiledPeer(path, "services", unresolvable="services")
        if any(ent.get(k) for k in ("namespaceSelector", "selector", "notSelector", "serviceAccounts", "nets", "notNets")):
            self.errors.append(FieldError(f"{path}.services", "cannot be combined with selectors, service accounts or nets"))
        namespace = raw.get("namespace") or ""
        if self.namespace is None and not namespace:
            self.errors.append(FieldError(f"{path}.services.namespace", "required in a GlobalNetworkPolicy"))
        text = f"service {namespace or '(no namespace)'}/{raw['name']}"
        if not namespace:
            return CompiledPeer(path, text, unresolvable=f"{text}: Felix looks the Service up as '/{raw['name']}' and matches nothing")
        service = next((s for s in self.inventory.services if s.namespace == namespace and s.name == raw["name"]), None)
        if service is None:
            return CompiledPeer(path, text, unresolvable=f"{text}: no such Service in the inventory")
        if service.selector is None:
            return CompiledPeer(path, text, unresolvable=f"{text}: a Service without a selector (its endpoints are not in the inventory)")
        selector = Selector(tuple(Requirement(k, "In", (v,)) for k, v in service.selector))
        return CompiledPeer(path, text, PodSelection(namespace=namespace, pods=selector))

    def service_ports(self, raw: dict[str, Any], protocol: str | None) -> tuple[CompiledPort, ...] | None:
        """A destination Service's target ports (names resolve against each pod's container ports)."""
        service = next((s for s in self.inventory.services if s.namespace == (raw.get("namespace") or "") and s.name == raw.get("name")), None)
        if service is None or not service.ports:
            return None
        return tuple(CompiledPort(f"services.ports[{i}]", (p.protocol,) if p.protocol in PROTOCOLS else ("TCP",),
                                  p.target if p.target is not None else p.port) for i, p in enumerate(service.ports))

    def check_ports(self, ent: dict[str, Any], protocol: str | None, path: str) -> list[tuple[str, int | str, int | None]]:
        out = []
        for key in ("ports", "notPorts"):
            raw = ent.get(key)
            if raw is None:
                continue
            if not isinstance(raw, list):
                self.errors.append(FieldError(f"{path}.{key}", "must be a list of ports"))
                continue
            for k, p in enumerate(raw):
                where = f"{path}.{key}[{k}]"
                parsed = _port(p)
                if parsed is None:
                    self.errors.append(FieldError(where, f"{show(p)} is not a port (1-65535), a range min:max or a port name"))
                    continue
                if not isinstance(parsed[0], str) and protocol not in PROTOCOLS:
                    self.errors.append(FieldError(where, "rules with numeric ports or port ranges must set protocol to TCP, UDP or SCTP"))
                    continue
                if isinstance(parsed[0], str) and protocol is not None and protocol not in PROTOCOLS:
                    self.errors.append(FieldError(where, f"protocol {protocol} has no ports"))
                    continue
                out.append((key, *parsed))
        return out

    def ports(self, ent: dict[str, Any], protocol: str | None, not_protocol: str | None, path: str) -> tuple[CompiledPort, ...] | None:
        """The destination ports with the rule's protocols (None: every port of every protocol)."""
        protocols = tuple(p for p in ((protocol,) if protocol in PROTOCOLS else PROTOCOLS if protocol is None else ())
                          if p != not_protocol)
        entries = [CompiledPort(f"{path}.ports[{i}]", protocols, port, end)
                   for i, (key, port, end) in enumerate(e for e in self.check_ports(ent, protocol, path) if e[0] == "ports")]
        if entries:
            return tuple(entries)
        if protocol is None and not_protocol is None:
            return None
        return (CompiledPort(f"{path.rsplit('.', 1)[0]}.protocol", protocols),) if protocols else ()

    def not_ports(self, ent: dict[str, Any], protocol: str | None, path: str) -> tuple[CompiledPort, ...]:
        protocols = (protocol,) if protocol in PROTOCOLS else PROTOCOLS
        raw: list[Any] = ent["notPorts"] if isinstance(ent.get("notPorts"), list) else []
        out = []
        for k, p in enumerate(raw):
            parsed = _port(p)
            if parsed is not None:
                out.append(CompiledPort(f"{path}.notPorts[{k}]", protocols, parsed[0], parsed[1]))
        return tuple(out)

    def icmp(self, raw: Any, protocol: str | None, path: str, positive: bool) -> None:
        if raw is None:
            return
        if not isinstance(raw, dict):
            self.errors.append(FieldError(path, "must be an object with type and code"))
            return
        self.unknown(raw, {"type", "code"}, path)
        kind, code = raw.get("type"), raw.get("code")
        if kind is not None and (isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= 254):
            self.errors.append(FieldError(f"{path}.type", f"{show(kind)} must be an integer from 0 to 254"))
        if code is not None and (isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255):
            self.errors.append(FieldError(f"{path}.code", f"{show(code)} must be an integer from 0 to 255"))
        if code is not None and kind is None:
            self.errors.append(FieldError(f"{path}.code", "ICMP code specified without an ICMP type"))
        if positive and protocol not in ("ICMP", "ICMPv6", "1", "58"):
            self.errors.append(FieldError(path, "icmp needs protocol ICMP or ICMPv6"))

    def http(self, raw: Any, action: str, protocol: str | None, direction: Direction, path: str) -> None:
        if not isinstance(raw, dict):
            self.errors.append(FieldError(path, "must be an object with methods and paths"))
            return
        self.unknown(raw, {"methods", "paths"}, path)
        if action != "Allow":
            self.errors.append(FieldError(path, "HTTP matches are allowed only on Allow rules"))
        if direction != "Ingress":
            self.errors.append(FieldError(path, "HTTP matches are allowed only on ingress rules"))
        if protocol not in (None, "TCP"):
            self.errors.append(FieldError(path, "HTTP matches need protocol TCP (or none)"))
        methods = raw.get("methods") or []
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods) or len(set(methods)) != len(methods):
            self.errors.append(FieldError(f"{path}.methods", "must be a list of distinct method names"))
        for i, entry in enumerate(raw.get("paths") or []):
            if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in ("exact", "prefix"):
                self.errors.append(FieldError(f"{path}.paths[{i}]", "exactly one of exact or prefix is required"))
                continue
            value = next(iter(entry.values()))
            if not isinstance(value, str) or not value.startswith("/") or any(c in value for c in "?# "):
                self.errors.append(FieldError(f"{path}.paths[{i}]", f"{show(value)} must start with / and hold no ?, # or space"))


def _port(raw: Any) -> tuple[int | str, int | None] | None:
    """Calico's port: a number, a "min:max" range, or a name (numorstring.PortFromString)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return (raw, None) if 1 <= raw <= 65535 else None
    if not isinstance(raw, str):
        return None
    if re.fullmatch(r"\d+", raw):
        return (int(raw), None) if 1 <= int(raw) <= 65535 else None
    if re.fullmatch(r"\d+:\d+", raw):
        lo, hi = (int(x) for x in raw.split(":"))
        return (lo, hi if hi != lo else None) if 1 <= lo <= hi <= 65535 else None
    return (raw, None) if _PORT_NAME.fullmatch(raw) else None


def _protocol(raw: Any, path: str, errors: list[FieldError]) -> str | None:
    """Calico's protocol: TCP, UDP, ICMP, ICMPv6, SCTP or UDPLite (case as written) or a number 1-255;
    the numbers of the named ones become their names."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= 255:
        return _PROTOCOL_NUMBERS.get(str(raw), str(raw))
    if isinstance(raw, str):
        if raw.isdigit() and 1 <= int(raw) <= 255:
            return _PROTOCOL_NUMBERS.get(str(int(raw)), str(int(raw)))
        if raw in _PROTOCOL_NAMES:
            return raw
    errors.append(FieldError(path, f"{show(raw)} is not a protocol name (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite) or number 1-255"))
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
            errors.append(FieldError(f"{path}[{k}]", f"{show(item)} is not a valid CIDR or address"))
        else:
            out.append(net)
    return tuple(out)


def _text(ent: dict[str, Any]) -> str:
    return str(ent.get("selector") or ent.get("namespaceSelector") or ent.get("nets") or ent.get("services") or "any")


def compile_calico(obj: PolicyObject, inventory: Inventory, tiers: Tiers | None = None) -> tuple[CompiledPolicy | None, list[FieldError]]:
    """A Calico NetworkPolicy or GlobalNetworkPolicy in the compiled model, or the errors that reject it."""
    reader = _Reader(obj, inventory)
    errors = reader.errors
    tiers = tiers or Tiers(_BUILTIN_TIERS)
    spec = obj.spec if isinstance(obj.spec, dict) else {}
    if not isinstance(obj.spec, dict):
        errors.append(FieldError("spec", "must be an object"))
    namespace = reader.namespace
    reader.unknown(spec, _SPEC_FIELDS | (_GLOBAL_FIELDS if namespace is None else set()), "spec")
    name = obj.name
    tier = spec.get("tier") or "default"
    if not isinstance(tier, str):
        errors.append(FieldError("spec.tier", f"{show(tier)} must be a tier name"))
        tier = "default"
    if obj.api_version.startswith("crd.projectcalico.org/") and name.startswith(f"{tier}."):
        name = name[len(tier) + 1:]  # the CRD's stored name carries its tier
    key = f"Calico {obj.kind}/{namespace}/{name}" if namespace else f"Calico {obj.kind}/{name}"
    order = spec.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
        errors.append(FieldError("spec.order", f"{show(order)} must be a number"))
        order = None
    subject_sel = reader.selector(spec.get("selector", ""), "spec.selector")
    account_sel = reader.selector(spec.get("serviceAccountSelector"), "spec.serviceAccountSelector", prefix=ACCOUNT_PREFIX)
    ns_sel = reader.selector(spec.get("namespaceSelector"), "spec.namespaceSelector") if namespace is None else None
    rules: list[CompiledRule] = []
    written: dict[Direction, bool] = {"Ingress": False, "Egress": False}
    for direction in DIRECTIONS:
        raw_rules = spec.get(direction.lower())
        if raw_rules is None:
            continue
        if not isinstance(raw_rules, list):
            errors.append(FieldError(f"spec.{direction.lower()}", "must be a list"))
            continue
        for i, raw in enumerate(raw_rules):
            rule, is_rule = reader.rule(raw, direction, i, f"{key} {direction.lower()}[{i}]")
            written[direction] = written[direction] or is_rule
            if rule is not None:
                rules.append(rule)
    types = _types(spec.get("types"), written, obj.api_version, errors)
    flags = {k: spec.get(k) for k in ("doNotTrack", "preDNAT", "applyOnForward") if spec.get(k) is not None}
    if any(not isinstance(v, bool) for v in flags.values()):
        errors.append(FieldError("spec", "doNotTrack, preDNAT and applyOnForward must be true or false"))
    if flags.get("preDNAT") and flags.get("doNotTrack"):
        errors.append(FieldError("spec.preDNAT", "preDNAT and doNotTrack cannot both be true"))
    if (flags.get("preDNAT") or flags.get("doNotTrack")) and not flags.get("applyOnForward"):
        errors.append(FieldError("spec.applyOnForward", "must be true when preDNAT or doNotTrack is"))
    if flags.get("preDNAT") and (written["Egress"] or "Egress" in types):
        errors.append(FieldError("spec.egress", "a preDNAT policy cannot have egress rules or the Egress type"))
    if errors:
        return None, errors
    host_only = bool(flags.get("doNotTrack") or flags.get("preDNAT"))
    if host_only:
        reader.notes.append("doNotTrack or preDNAT: applies to host endpoints only, never to pods (Felix)")
    group_order, closes = tiers.known.get(tier, (DEFAULT_GROUP[0] - 0.5, True))
    if tier not in tiers.known:
        reader.notes.append(f"tier {tier!r} is not in the inventory: its order is unknown (evaluated just before the default tier)")
    in_effect = tuple(r for r in rules if r.direction in types)
    ignored = tuple((d, f"spec.{d.lower()} has rules but spec.types is {list(types)}: they are ignored")
                    for d in DIRECTIONS if written[d] and d not in types)
    layers = () if host_only else (Layer(
        "namespace", (float(order) if order is not None else float("inf"), f"{name}/{namespace or ''}/{obj.kind}"),
        f"Calico order{'' if tier == 'default' else f', tier {tier}'}",
        tuple((d, tuple(r for r in in_effect if r.direction == d)) for d in DIRECTIONS), types, ordered=True,
        group=(group_order, tier), group_closes=closes),)
    selection = PodSelection(namespace=namespace, namespaces=ns_sel, pods=_and([subject_sel, account_sel]), view=VIEW)
    subject_text = f"selector {subject_sel or 'all()'}" + (f" serviceAccountSelector {account_sel.text.split('|', 1)[-1]}"
                                                           if account_sel else "")
    return CompiledPolicy(obj.kind, FAMILY, namespace, name, key,
                          CompiledSubject("spec.selector", subject_text, selection, missing="selector" not in spec),
                          in_effect, types, layers, obj.source, obj.annotations, spec.get("types") is not None, ignored,
                          notes=tuple(reader.notes), api=f"Calico {obj.kind}", spec=obj.spec), errors


def _types(raw: Any, written: dict[Direction, bool], api_version: str, errors: list[FieldError]) -> tuple[Direction, ...]:
    """Calico's default (api/pkg/defaults defaultPolicyTypesField): Ingress, unless the policy has
    egress rules and no ingress rules (Egress), or both (both). A crd.projectcalico.org/v1 object
    written directly is never defaulted: Felix reads no types as both directions."""
    if raw is not None:
        if not isinstance(raw, list) or not raw or len(raw) > 2 or not all(t in ("Ingress", "Egress") for t in raw) \
                or len(set(raw)) != len(raw):
            errors.append(FieldError("spec.types", f"{show(raw)} must be a list of Ingress and Egress, each once"))
            return ()
        return tuple(d for d in DIRECTIONS if d in raw)
    if api_version.startswith("crd.projectcalico.org/"):
        return DIRECTIONS
    if not written["Egress"]:
        return ("Ingress",)
    return ("Egress",) if not written["Ingress"] else DIRECTIONS


class _CalicoKind:
    declaration = KindDeclaration(
        FAMILY,
        (Resource("NetworkPolicy", "projectcalico.org", ("v3",), "networkpolicies", namespaced=True, display="Calico NetworkPolicy"),
         Resource("GlobalNetworkPolicy", "projectcalico.org", ("v3",), "globalnetworkpolicies", namespaced=False,
                  display="Calico GlobalNetworkPolicy"),
         Resource("Tier", "projectcalico.org", ("v3",), "tiers", namespaced=False, display="Calico Tier", auxiliary=True),
         # Calico's aggregated API (v3) and its CRDs (v1) hold the same objects: read one of them.
         Resource("NetworkPolicy", "crd.projectcalico.org", ("v1",), "networkpolicies", namespaced=True, display="Calico NetworkPolicy",
                  same_as="networkpolicies.projectcalico.org"),
         Resource("GlobalNetworkPolicy", "crd.projectcalico.org", ("v1",), "globalnetworkpolicies", namespaced=False,
                  display="Calico GlobalNetworkPolicy", same_as="globalnetworkpolicies.projectcalico.org"),
         Resource("Tier", "crd.projectcalico.org", ("v1",), "tiers", namespaced=False, display="Calico Tier", auxiliary=True,
                  same_as="tiers.projectcalico.org")),
        enforced_by={cni: (Support(source="Calico's own API: Felix enforces it in every version"),) for cni in ("calico", "canal")},
        fields=(
            ("tier (and Tier objects)", "evaluated", "tiers walked by order; a tier's end denies (or passes, defaultAction Pass) for pods its policies select; built-in default, kube-admin, kube-baseline; a tier missing from the inventory is named"),
            ("order", "evaluated", "lower first; none: last; ties by name, namespace, kind"),
            ("selector", "evaluated", "the whole expression language on the labels Calico gives pods (projectcalico.org/namespace, orchestrator, serviceaccount, pcns.*, pcsa.*); a namespaced policy's own namespace ANDed"),
            ("serviceAccountSelector", "evaluated", "the service account's labels (pcsa.*)"),
            ("namespaceSelector (GlobalNetworkPolicy)", "evaluated", "the namespace's labels and projectcalico.org/name"),
            ("types", "evaluated", "and Calico's default: Ingress, Egress for egress-only rules, both for both; raw crd.projectcalico.org/v1 objects: both"),
            ("doNotTrack, preDNAT, applyOnForward", "evaluated", "doNotTrack and preDNAT policies apply to host endpoints only, never to pods"),
            ("action", "evaluated", "Allow, Deny, Pass (to the next tier), Log (decides nothing)"),
            ("protocol, notProtocol", "evaluated", "names and numbers; ICMP, ICMPv6, UDPLite open no TCP, UDP or SCTP port"),
            ("ipVersion (and the family of nets)", "evaluated", "a rule matches only traffic of its IP version; pods without known addresses are taken as IPv4"),
            ("icmp, notICMP", "L4 only", "ICMP type and code named"),
            ("source/destination selector, namespaceSelector", "evaluated", "scoped as Felix scopes them: the policy's namespace unless a namespaceSelector; every namespace for a global policy; global(): host endpoints and network sets, nothing here"),
            ("notSelector", "evaluated", "in a namespaced policy the rest of its namespace; alone in a global policy anything else, outside addresses included"),
            ("serviceAccounts (names, selector)", "evaluated", "the pod's service account and its labels"),
            ("services", "evaluated", "a destination Service: its pods and target ports; a source Service: its pods; without a selector, not in the inventory, or an empty namespace in a namespaced policy: nothing here"),
            ("nets, notNets", "evaluated", "outside addresses and pods by their addresses"),
            ("destination ports, notPorts", "evaluated", "numbers, ranges, names"),
            ("source ports", "L4 only", "the client's port is named"),
            ("http", "L4 only", "Felix ignores it; only Application Layer Policy enforces it: named"),
            ("performanceHints, metadata", "validated", "no effect on traffic"),
        ),
        summary="tier (Tier order and defaultAction), order, selector, serviceAccountSelector, namespaceSelector, types and their "
                "default, Allow/Deny/Pass/Log rules, protocol and notProtocol, ipVersion, source/destination selector, notSelector, "
                "namespaceSelector, serviceAccounts, services (resolved to the Service's pods and ports), nets, notNets, ports, "
                "notPorts, the labels Calico gives pods and namespaces; HTTP matches, ICMP types and source ports judged at L4 "
                "and named; doNotTrack/preDNAT policies apply to hosts only; network sets and host endpoints match nothing here")

    def subject(self, obj: PolicyObject) -> PodSelection | None:
        if obj.kind == "Tier":
            return None
        reader = _Reader(obj, Inventory((), (), ()))
        spec = obj.spec if isinstance(obj.spec, dict) else {}
        selector = reader.selector(spec.get("selector", ""), "spec.selector")
        namespaces = reader.selector(spec.get("namespaceSelector"), "spec.namespaceSelector") if reader.namespace is None else None
        if reader.errors:
            return None
        return PodSelection(namespace=reader.namespace, namespaces=namespaces, pods=selector, view=VIEW)

    def compile(self, objects: Sequence[PolicyObject], inventory: Inventory) -> Compiled:
        tier_errors: dict[int, list[FieldError]] = {}
        tiers = Tiers.of([o for o in objects if o.kind == "Tier"], tier_errors)
        policies = [o for o in objects if o.kind != "Tier"]
        parsed = [(o, *compile_calico(o, inventory, tiers)) for o in policies]
        invalid = [(o, tuple(e)) for o, p, e in parsed if e]
        invalid += [(o, tuple(tier_errors[id(o)])) for o in objects if id(o) in tier_errors]
        return Compiled(tuple(p for _, p, _ in parsed if p is not None), tuple(invalid))


KIND = _CalicoKind()

