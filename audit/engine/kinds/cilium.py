"""CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy at L3/L4.

A pod selected by a Cilium policy with ingress (egress) rules, or deny rules, is enforced in
that direction (unless enableDefaultDeny says otherwise): only what some NetworkPolicy or Cilium
allow rule allows passes, and Cilium deny rules win over every allow. L7 rules (http, dns,
kafka) allow their port at L4; toFQDNs and toServices cannot be resolved from an inventory and
match nothing (the explanation says so).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audit.engine.addresses import IPAddress, IPBlock, IPNetwork, parse_cidr
from audit.engine.direction import Direction
from audit.engine.kinds import Compiled, Enforcement, group_of
from audit.engine.ports import ALL, PROTOCOLS, MemoPorts, PortSet, port_name_error, resolve_ports
from audit.engine.selectors import FieldError, Selector, parse_selector
from audit.inventory import ContainerPort, ExtendedPolicy, SourceRef

if TYPE_CHECKING:
    from audit.engine.analysis import Analysis, Endpoint
    from audit.engine.stack import Action, Tier

CNP = "CiliumNetworkPolicy"
CCNP = "CiliumClusterwideNetworkPolicy"
NAMESPACE_KEY = "io.kubernetes.pod.namespace"
NAMESPACE_LABEL_PREFIX = "io.cilium.k8s.namespace.labels."
_WORLD = {"world", "world-ipv4", "world-ipv6"}


def cilium_labels(pod_labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str]) -> dict[str, str]:
    """The labels Cilium gives an endpoint: the pod's, its namespace name, its namespace's labels."""
    labels = dict(pod_labels)
    labels[NAMESPACE_KEY] = namespace
    labels.update({NAMESPACE_LABEL_PREFIX + k: v for k, v in namespace_labels.items()})
    return labels


@dataclass(frozen=True)
class CiliumPeer:
    selector: Selector | None = None  # endpoints
    namespace: str | None = None  # endpoints of a namespaced policy stay in its namespace
    entities: tuple[str, ...] = ()
    blocks: tuple[IPBlock, ...] = ()
    unresolvable: str | None = None  # toFQDNs, toServices, ...

    def __str__(self) -> str:
        if self.selector is not None:
            return f"endpoints[{self.selector}]" + (f" in {self.namespace}" if self.namespace else "")
        if self.entities:
            return "entities " + ",".join(self.entities)
        if self.blocks:
            return "CIDR " + ", ".join(map(str, self.blocks))
        return f"{self.unresolvable} (not evaluated)"


@dataclass(frozen=True)
class CiliumRule:
    direction: Direction
    index: int
    deny: bool
    peers: tuple[CiliumPeer, ...]  # empty: any peer (when ports are given)
    ports: tuple[tuple[str, int | str | None, int | None], ...]  # (protocol or ANY, port or name or None, end)
    empty: bool  # `{}`: selects nothing (Cilium's default-deny idiom)
    l7: bool

    @property
    def field(self) -> str:
        return f"{self.direction.lower()}{'Deny' if self.deny else ''}[{self.index}]"

    def port_set(self, dst_ports: tuple[ContainerPort, ...] | None) -> PortSet:
        if not self.ports:
            return ALL
        return resolve_ports(((PROTOCOLS if proto == "ANY" else (proto,), port, end) for proto, port, end in self.ports), dst_ports)


@dataclass(frozen=True)
class CiliumPolicy:
    kind: str
    namespace: str | None
    name: str
    subject: Selector
    ingress: tuple[CiliumRule, ...]
    egress: tuple[CiliumRule, ...]
    enforces: tuple[Direction, ...]

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def rules(self, direction: Direction) -> tuple[CiliumRule, ...]:
        return self.ingress if direction == "Ingress" else self.egress


def _strip(raw: Any) -> Any:
    """Selector keys may carry a source prefix (k8s:, any:); matching uses the bare key."""
    if not isinstance(raw, dict):
        return raw
    out = dict(raw)
    if isinstance(raw.get("matchLabels"), dict):
        out["matchLabels"] = {str(k).split(":", 1)[-1] if str(k).startswith(("k8s:", "any:")) else k: v
                              for k, v in raw["matchLabels"].items()}
    if isinstance(raw.get("matchExpressions"), list):
        out["matchExpressions"] = [
            {**e, "key": e["key"].split(":", 1)[-1]} if isinstance(e, dict) and str(e.get("key", "")).startswith(("k8s:", "any:")) else e
            for e in raw["matchExpressions"]
        ]
    return out


def parse_cilium(obj: ExtendedPolicy) -> tuple[list[CiliumPolicy], list[FieldError]]:
    """The policies of one object (`spec` and each of `specs`), or the errors that reject it."""
    errors: list[FieldError] = []
    spec = obj.spec if isinstance(obj.spec, dict) else {}
    parts: list[tuple[str, Any]] = []
    if set(spec) - {"specs", "description"}:
        parts.append(("spec", spec))
    if isinstance(spec.get("specs"), list):
        parts += [(f"spec.specs[{i}]", s) for i, s in enumerate(spec["specs"])]
    if not parts:
        return [], [FieldError("spec", "needs an endpointSelector (or specs)")]
    out = []
    for n, (path, part) in enumerate(parts):
        if not isinstance(part, dict):
            errors.append(FieldError(path, "must be an object"))
            continue
        # Cilium's schema: every rule names exactly one of endpointSelector and nodeSelector.
        if ("endpointSelector" in part) == ("nodeSelector" in part):
            errors.append(FieldError(path, "exactly one of endpointSelector or nodeSelector is required"))
            continue
        if "nodeSelector" in part:
            continue  # host policies select nodes, not pods
        subject, errs = parse_selector(_strip(part.get("endpointSelector") or {}), f"{path}.endpointSelector")
        errors += errs
        rules: dict[Direction, list[CiliumRule]] = {"Ingress": [], "Egress": []}
        has: dict[Direction, bool] = {"Ingress": False, "Egress": False}
        for direction in ("Ingress", "Egress"):
            for deny in (False, True):
                field = direction.lower() + ("Deny" if deny else "")
                raw_rules = part.get(field)
                if raw_rules is None:
                    continue
                if not isinstance(raw_rules, list):
                    errors.append(FieldError(f"{path}.{field}", "must be a list"))
                    continue
                has[direction] = True
                for i, raw in enumerate(raw_rules):
                    rule = _rule(raw, direction, i, deny, obj.namespace if obj.kind == CNP else None, f"{path}.{field}[{i}]", errors)
                    if rule is not None:
                        rules[direction].append(rule)
        raw_default = part.get("enableDefaultDeny")
        default_deny: dict[str, Any] = raw_default if isinstance(raw_default, dict) else {}
        enforces = tuple(d for d in ("Ingress", "Egress") if has[d] and default_deny.get(d.lower(), True) is not False)
        name = obj.name if len(parts) == 1 else f"{obj.name}[{n}]"
        out.append(CiliumPolicy(obj.kind, obj.namespace if obj.kind == CNP else None, name, subject,
                                tuple(rules["Ingress"]), tuple(rules["Egress"]), enforces))  # type: ignore[arg-type]
    return ([] if errors else out), errors


def _rule(raw: Any, direction: Direction, index: int, deny: bool, namespace: str | None, path: str,
          errors: list[FieldError]) -> CiliumRule | None:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(FieldError(path, "must be an object"))
        return None
    side = "from" if direction == "Ingress" else "to"
    peers: list[CiliumPeer] = []
    for sel_raw in raw.get(f"{side}Endpoints") or []:
        sel, errs = parse_selector(_strip(sel_raw or {}), f"{path}.{side}Endpoints")
        errors += errs
        names_namespace = any(r.key == NAMESPACE_KEY for r in sel.requirements)
        peers.append(CiliumPeer(selector=sel, namespace=None if names_namespace else namespace))
    if raw.get(f"{side}Entities"):
        peers.append(CiliumPeer(entities=tuple(str(e) for e in raw[f"{side}Entities"])))
    blocks = []
    for cidr in raw.get(f"{side}CIDR") or []:
        net = parse_cidr(cidr)
        if net is None:
            errors.append(FieldError(f"{path}.{side}CIDR", f"{cidr!r} is not a valid CIDR"))
        else:
            blocks.append(IPBlock(net))
    for item in raw.get(f"{side}CIDRSet") or []:
        net = parse_cidr(item.get("cidr")) if isinstance(item, dict) else None
        excepts = [parse_cidr(e) for e in (item.get("except") or [])] if isinstance(item, dict) else []
        if net is None or any(e is None for e in excepts):
            errors.append(FieldError(f"{path}.{side}CIDRSet", f"{item!r} is not a valid CIDR set"))
        else:
            blocks.append(IPBlock(net, tuple(excepts)))  # type: ignore[arg-type]
    if blocks:
        peers.append(CiliumPeer(blocks=tuple(blocks)))
    for key in (f"{side}FQDNs", f"{side}Services", f"{side}Requires", f"{side}Nodes", f"{side}Groups"):
        if raw.get(key):
            peers.append(CiliumPeer(unresolvable=key))
    ports: list[tuple[str, int | str | None, int | None]] = []
    l7 = False
    for tp in raw.get("toPorts") or []:
        if not isinstance(tp, dict):
            continue
        l7 = l7 or bool(tp.get("rules"))
        for p in tp.get("ports") or [{}]:
            protocol = str((p or {}).get("protocol") or "ANY").upper()
            if protocol not in PROTOCOLS + ("ANY",):
                errors.append(FieldError(f"{path}.toPorts", f"protocol {protocol!r} is not supported"))
                continue
            port_raw = (p or {}).get("port")
            port: int | str | None
            if port_raw in (None, "", "0", 0):
                port = None
            elif isinstance(port_raw, bool) or not isinstance(port_raw, (int, str)):
                errors.append(FieldError(f"{path}.toPorts", f"port {port_raw!r} must be a number or a name"))
                continue
            elif str(port_raw).isdigit():
                port = int(port_raw)
                if not 1 <= port <= 65535:
                    errors.append(FieldError(f"{path}.toPorts", f"port {port_raw!r} must be between 1 and 65535"))
                    continue
            elif port_name_error(str(port_raw)):
                errors.append(FieldError(f"{path}.toPorts", f"port {port_raw!r} is not a port number or a valid port name"))
                continue
            else:
                port = str(port_raw)
            end = (p or {}).get("endPort")
            if end is not None and (isinstance(end, bool) or not isinstance(end, int) or not isinstance(port, int)
                                    or not port <= end <= 65535):
                errors.append(FieldError(f"{path}.toPorts", f"endPort {end!r} must be a port number from port to 65535"))
                continue
            ports.append((protocol, port, end))
    empty = not peers and not ports
    return CiliumRule(direction, index, deny, tuple(peers), tuple(ports), empty, l7)


def peer_matches(peer: CiliumPeer, other_labels: dict[str, str] | None, other_namespace: str | None,
                 other_ip: IPAddress | None) -> bool:
    """Whether a peer names an endpoint (given by its Cilium labels) or an outside address."""
    if peer.selector is not None:
        return other_labels is not None and (peer.namespace is None or peer.namespace == other_namespace) \
            and peer.selector.matches(other_labels)
    if peer.entities:
        ents = set(peer.entities)
        if "all" in ents:
            return True
        if other_labels is not None:
            return "cluster" in ents
        return bool(ents & _WORLD)
    if peer.blocks:
        return other_ip is not None and any(b.contains(other_ip) for b in peer.blocks)
    return False


def endpoint_labels(analysis: Analysis, cid: int) -> dict[str, str]:
    """Cilium's labels of a pod class, computed once per analysis."""
    memo: dict[int, dict[str, str]] = analysis.memo.setdefault(("cilium-labels",), {})  # type: ignore[assignment]
    hit = memo.get(cid)
    if hit is None:
        cls = analysis.classes[cid]
        hit = memo[cid] = cilium_labels(cls.label_map, cls.namespace, analysis.namespace_labels(cls.namespace))
    return hit


def _everyone(rule: CiliumRule) -> bool:
    return not rule.empty and not rule.ports and (not rule.peers or any(
        "all" in p.entities or "cluster" in p.entities or (p.selector is not None and p.selector.empty and p.namespace is None)
        for p in rule.peers))


class CiliumStackRule(MemoPorts):
    __slots__ = ("action", "everyone", "label", "rule")
    subject_dependent = False

    def __init__(self, policy: CiliumPolicy, rule: CiliumRule):
        self.rule = rule
        self.action: Action = "Deny" if rule.deny else "Allow"
        self.label = f"{policy.key} {rule.field}"
        self.everyone = _everyone(rule)
        super().__init__()

    def names(self, analysis: Analysis, subject: int, other: Endpoint) -> bool:
        """An empty L3 part with ports means any peer; `{}` names none (Cilium's default-deny idiom)."""
        rule = self.rule
        if rule.empty:
            return False
        if not rule.peers:
            return True
        if isinstance(other, int):
            cls = analysis.classes[other]
            if not cls.governed and not cls.virtual:
                return False
            labels = endpoint_labels(analysis, other)
            return any(peer_matches(p, labels, cls.namespace, None) for p in rule.peers)
        return any(peer_matches(p, None, None, other) for p in rule.peers)

    def port_set(self, dst_ports: tuple[ContainerPort, ...] | None) -> PortSet:
        return self.rule.port_set(dst_ports)

    def peer_sets(self, analysis: Analysis) -> None:
        return None

    def describe(self) -> str:
        return f"{'deny ' if self.rule.deny else ''}{'any peer' if not self.rule.peers else ' OR '.join(map(str, self.rule.peers))}"


class CiliumStackPolicy:
    """One half of a Cilium policy in the namespace tier: its deny rules first (they win over
    every allow, NetworkPolicy's included), its allow rules beside NetworkPolicy's."""

    __slots__ = ("_rules", "deny", "key", "note", "order", "policy", "source")
    kind = "Cilium"
    tier: Tier = "namespace"

    def __init__(self, policy: CiliumPolicy, deny: bool, source: SourceRef):
        self.policy = policy
        self.key = policy.key
        self.deny = deny
        self.order = (float("-inf") if deny else 1000.0, policy.key)
        self.note = "Cilium deny rules win over allows" if deny else policy.kind
        self.source = source
        self._rules = {d: tuple(CiliumStackRule(policy, r) for r in policy.rules(d) if r.deny == deny) for d in ("Ingress", "Egress")}

    def rules(self, direction: Direction) -> tuple[CiliumStackRule, ...]:
        return self._rules[direction]

    def isolates(self, direction: Direction) -> bool:
        return direction in self.policy.enforces

    def selects(self, analysis: Analysis, cid: int) -> bool:
        p = self.policy
        return (p.namespace is None or p.namespace == analysis.classes[cid].namespace) and p.subject.matches(endpoint_labels(analysis, cid))

    def whole_namespace(self, analysis: Analysis, namespace: str) -> bool:
        """An endpointSelector that names only the namespace (its name or labels) selects all of it."""
        p = self.policy
        if p.namespace not in (None, namespace):
            return False
        if any(r.key != NAMESPACE_KEY and not r.key.startswith(NAMESPACE_LABEL_PREFIX) for r in p.subject.requirements):
            return False
        return p.subject.matches(cilium_labels({}, namespace, analysis.namespace_labels(namespace)))

    def networks(self) -> Iterable[IPNetwork]:
        for direction in ("Ingress", "Egress"):
            for rule in self.policy.rules(direction):
                for peer in rule.peers:
                    for block in peer.blocks:
                        yield block.cidr
                        yield from block.excepts


class _CiliumKind:
    name = "Cilium"
    enforced_by: dict[str, Enforcement] = {"cilium": "yes"}

    def reads(self, obj: ExtendedPolicy) -> bool:
        return obj.kind in (CNP, CCNP) and group_of(obj) == "cilium.io"

    def compile(self, objects: Sequence[ExtendedPolicy]) -> Compiled:
        parsed = [(o, *parse_cilium(o)) for o in objects]
        stack = tuple(CiliumStackPolicy(p, deny, o.source) for o, ps, _ in parsed for p in ps for deny in (True, False))
        return Compiled(stack, tuple((o, tuple(e)) for o, _, e in parsed if e), tuple(parsed))


KIND = _CiliumKind()
