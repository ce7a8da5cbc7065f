"""CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy at L3/L4.

A pod selected by a Cilium policy with ingress (egress) rules, or deny rules, is enforced in
that direction (unless enableDefaultDeny says otherwise): only what some NetworkPolicy or Cilium
allow rule allows passes, and Cilium deny rules win over every allow. L7 rules (http, dns,
kafka) allow their port at L4 (the rule's limits say so); toFQDNs and toServices cannot be
resolved from an inventory and match nothing (the explanation says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audit.engine.addresses import EVERY_ADDRESS, IPBlock, parse_cidr
from audit.engine.compiled import CompiledPeer, CompiledPolicy, CompiledPort, CompiledRule, CompiledSubject, Layer
from audit.engine.direction import DIRECTIONS, Direction
from audit.engine.kinds.base import Compiled, KindDeclaration, Resource
from audit.engine.ports import PROTOCOLS, port_name_error
from audit.engine.selection import PodSelection
from audit.engine.selectors import FieldError, Selector, parse_selector
from audit.inventory import PolicyObject

CNP = "CiliumNetworkPolicy"
CCNP = "CiliumClusterwideNetworkPolicy"
FAMILY = "Cilium"
NAMESPACE_KEY = "io.kubernetes.pod.namespace"
NAMESPACE_LABEL_PREFIX = "io.cilium.k8s.namespace.labels."
_L7 = {"http": "HTTP", "dns": "DNS", "kafka": "Kafka", "l7proto": "L7"}
_UNRESOLVABLE = ("FQDNs", "Services", "Requires", "Nodes", "Groups")


def cilium_labels(pod_labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str]) -> dict[str, str]:
    """The labels Cilium gives an endpoint: the pod's, its namespace name, its namespace's labels."""
    labels = dict(pod_labels)
    labels[NAMESPACE_KEY] = namespace
    labels.update({NAMESPACE_LABEL_PREFIX + k: v for k, v in namespace_labels.items()})
    return labels


@dataclass(frozen=True)
class CiliumView:
    """The labels Cilium's endpoint selectors see (``audit.engine.selection.LabelView``)."""

    def pod(self, labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str],
            service_account: str | None) -> Mapping[str, str]:
        return cilium_labels(labels, namespace, namespace_labels)

    def namespace(self, name: str, labels: Mapping[str, str]) -> Mapping[str, str]:
        return cilium_labels({}, name, labels)


VIEW = CiliumView()


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


def endpoints(selector: Selector, namespace: str | None) -> PodSelection:
    """The pods an endpoint selector names: its namespace requirements (the namespace's name and
    labels, as Cilium labels them) select namespaces, the rest pods. A namespaced policy's
    selector that does not name the namespace stays in the policy's own."""
    names_namespace = any(r.key == NAMESPACE_KEY for r in selector.requirements)
    on_namespace = tuple(r for r in selector.requirements if r.key == NAMESPACE_KEY or r.key.startswith(NAMESPACE_LABEL_PREFIX))
    on_pods = tuple(r for r in selector.requirements if r not in on_namespace)
    # Every endpoint carries its namespace's name: `Exists` on it narrows nothing.
    on_namespace = tuple(r for r in on_namespace if not (r.key == NAMESPACE_KEY and r.operator == "Exists"))
    return PodSelection(namespace=None if names_namespace else namespace, namespaces=Selector(on_namespace) if on_namespace else None,
                        pods=Selector(on_pods), view=VIEW)


def _parse_parts(obj: PolicyObject, errors: list[FieldError]) -> list[tuple[str, dict[str, Any]]]:
    spec = obj.spec if isinstance(obj.spec, dict) else {}
    parts: list[tuple[str, Any]] = []
    if set(spec) - {"specs", "description"}:
        parts.append(("spec", spec))
    if isinstance(spec.get("specs"), list):
        parts += [(f"spec.specs[{i}]", s) for i, s in enumerate(spec["specs"])]
    if not parts:
        errors.append(FieldError("spec", "needs an endpointSelector (or specs)"))
    out = []
    for path, part in parts:
        if not isinstance(part, dict):
            errors.append(FieldError(path, "must be an object"))
            continue
        # Cilium's schema: every rule names exactly one of endpointSelector and nodeSelector.
        if ("endpointSelector" in part) == ("nodeSelector" in part):
            errors.append(FieldError(path, "exactly one of endpointSelector or nodeSelector is required"))
            continue
        out.append((path, part))
    return out


def compile_cilium(obj: PolicyObject) -> tuple[list[CompiledPolicy], list[FieldError]]:
    """The policies of one object (`spec` and each of `specs`), or the errors that reject it."""
    errors: list[FieldError] = []
    parts = _parse_parts(obj, errors)
    namespace = obj.namespace if obj.kind == CNP else None
    out = []
    for n, (path, part) in enumerate(parts):
        if "nodeSelector" in part:
            continue  # host policies select nodes, not pods
        sel, errs = parse_selector(_strip(part.get("endpointSelector") or {}), f"{path}.endpointSelector")
        errors += errs
        name = obj.name if len(parts) == 1 else f"{obj.name}[{n}]"
        key = f"{obj.kind}/{namespace}/{name}" if namespace else f"{obj.kind}/{name}"
        rules: list[CompiledRule] = []
        has: dict[Direction, bool] = {"Ingress": False, "Egress": False}
        for direction in DIRECTIONS:
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
                    rule = _rule(raw, direction, i, deny, namespace, f"{path}.{field}[{i}]", f"{key} {field}[{i}]", errors)
                    if rule is not None:
                        rules.append(rule)
        raw_default = part.get("enableDefaultDeny")
        default_deny: dict[str, Any] = raw_default if isinstance(raw_default, dict) else {}
        enforces = tuple(d for d in DIRECTIONS if has[d] and default_deny.get(d.lower(), True) is not False)
        denies, allows = ([r for r in rules if (r.action == "Deny") == deny] for deny in (True, False))
        layers = (Layer("namespace", (float("-inf"), key), "Cilium deny rules win over allows",
                        tuple((d, tuple(r for r in denies if r.direction == d)) for d in DIRECTIONS)),
                  Layer("namespace", (1000.0, key), obj.kind,
                        tuple((d, tuple(r for r in allows if r.direction == d)) for d in DIRECTIONS), enforces))
        subject = CompiledSubject(f"{path}.endpointSelector", f"endpointSelector {sel}", endpoints(sel, namespace))
        out.append(CompiledPolicy(obj.kind, FAMILY, namespace, name, key, subject, tuple(rules),
                                  tuple(d for d in DIRECTIONS if has[d]), layers, obj.source, obj.annotations, spec=obj.spec))
    return ([] if errors else out), errors


def _rule(raw: Any, direction: Direction, index: int, deny: bool, namespace: str | None, path: str, label: str,
          errors: list[FieldError]) -> CompiledRule | None:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(FieldError(path, "must be an object"))
        return None
    side = "from" if direction == "Ingress" else "to"
    peers = _peers(raw, side, namespace, path, errors)
    ports, limits = _ports(raw.get("toPorts"), path, errors)
    empty = not peers and ports is None and not raw.get("toPorts")
    peer_text = " OR ".join(p.text for p in peers) if peers else ("no peer" if empty else "any peer")
    text = f"{'deny ' if deny else ''}{peer_text}"
    # An L3 part with only ports means every peer; `{}` names none (Cilium's default-deny idiom).
    return CompiledRule(direction, "Deny" if deny else "Allow", path, label, text, tuple(peers), not peers and not empty, ports,
                        limits=limits, index=index)


def _peers(raw: dict[str, Any], side: str, namespace: str | None, path: str, errors: list[FieldError]) -> list[CompiledPeer]:
    peers: list[CompiledPeer] = []
    for j, sel_raw in enumerate(_list(raw.get(f"{side}Endpoints"), f"{path}.{side}Endpoints", errors)):
        field = f"{path}.{side}Endpoints[{j}]"
        sel, errs = parse_selector(_strip(sel_raw or {}), field)
        errors += errs
        peers.append(CompiledPeer(field, f"{side}Endpoints [{sel}]", endpoints(sel, namespace), selectors=((field, sel),)))
    for j, entity in enumerate(_list(raw.get(f"{side}Entities"), f"{path}.{side}Entities", errors)):
        field = f"{path}.{side}Entities[{j}]"
        text = f"{side}Entities {entity}"
        if entity == "all":
            peers.append(CompiledPeer(field, text))
        elif entity == "cluster":
            peers.append(CompiledPeer(field, text, PodSelection()))
        elif entity in ("world", "world-ipv4", "world-ipv6"):
            blocks = {"world": EVERY_ADDRESS, "world-ipv4": EVERY_ADDRESS[:1], "world-ipv6": EVERY_ADDRESS[1:]}[str(entity)]
            peers.append(CompiledPeer(field, text, blocks=blocks, blocks_match_pods=False))
        else:
            peers.append(CompiledPeer(field, text, unresolvable=f"{side}Entities {entity}"))
    for j, cidr in enumerate(_list(raw.get(f"{side}CIDR"), f"{path}.{side}CIDR", errors)):
        net = parse_cidr(cidr)
        if net is None:
            errors.append(FieldError(f"{path}.{side}CIDR[{j}]", f"{cidr!r} is not a valid CIDR"))
        else:
            peers.append(CompiledPeer(f"{path}.{side}CIDR[{j}]", f"{side}CIDR {net}", blocks=(IPBlock(net),), blocks_match_pods=False))
    for j, item in enumerate(_list(raw.get(f"{side}CIDRSet"), f"{path}.{side}CIDRSet", errors)):
        net = parse_cidr(item.get("cidr")) if isinstance(item, dict) else None
        excepts = [parse_cidr(e) for e in (item.get("except") or [])] if isinstance(item, dict) else []
        if net is None or any(e is None for e in excepts):
            errors.append(FieldError(f"{path}.{side}CIDRSet[{j}]", f"{item!r} is not a valid CIDR set"))
        else:
            block = IPBlock(net, tuple(e for e in excepts if e is not None))
            peers.append(CompiledPeer(f"{path}.{side}CIDRSet[{j}]", f"{side}CIDRSet {block}", blocks=(block,), blocks_match_pods=False))
    for what in _UNRESOLVABLE:
        key = f"{side}{what}"
        if raw.get(key):
            peers.append(CompiledPeer(f"{path}.{key}", key, unresolvable=key))
    return peers


def _list(raw: Any, path: str, errors: list[FieldError]) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list"))
        return []
    return raw


def _ports(raw: Any, path: str, errors: list[FieldError]) -> tuple[tuple[CompiledPort, ...] | None, tuple[str, ...]]:
    """toPorts as port entries (None: no toPorts, every port), and the L7 rules that restrict them."""
    entries: list[CompiledPort] = []
    limits: list[str] = []
    for t, tp in enumerate(_list(raw, f"{path}.toPorts", errors)):
        if not isinstance(tp, dict):
            errors.append(FieldError(f"{path}.toPorts[{t}]", "must be an object"))
            continue
        rules = tp.get("rules")
        if isinstance(rules, dict):
            limits += [f"{_L7.get(k, k)} rules restrict {path}.toPorts[{t}]" for k in rules if rules[k]]
        for k, p in enumerate(tp.get("ports") or [{}]):
            where = f"{path}.toPorts[{t}].ports[{k}]"
            p = p or {}
            if not isinstance(p, dict):
                errors.append(FieldError(where, "must be an object"))
                continue
            protocol = str(p.get("protocol") or "ANY").upper()
            if protocol not in PROTOCOLS + ("ANY",):
                errors.append(FieldError(f"{where}.protocol", f"protocol {protocol!r} is not supported"))
                continue
            port_raw = p.get("port")
            port: int | str | None
            if port_raw in (None, "", "0", 0):
                port = None
            elif isinstance(port_raw, bool) or not isinstance(port_raw, (int, str)):
                errors.append(FieldError(f"{where}.port", f"port {port_raw!r} must be a number or a name"))
                continue
            elif str(port_raw).isdigit():
                port = int(port_raw)
                if not 1 <= port <= 65535:
                    errors.append(FieldError(f"{where}.port", f"port {port_raw!r} must be between 1 and 65535"))
                    continue
            elif port_name_error(str(port_raw)):
                errors.append(FieldError(f"{where}.port", f"port {port_raw!r} is not a port number or a valid port name"))
                continue
            else:
                port = str(port_raw)
            end = p.get("endPort")
            if end is not None and (isinstance(end, bool) or not isinstance(end, int) or not isinstance(port, int)
                                    or not port <= end <= 65535):
                errors.append(FieldError(f"{where}.endPort", f"endPort {end!r} must be a port number from port to 65535"))
                continue
            entries.append(CompiledPort(where, PROTOCOLS if protocol == "ANY" else (protocol,), port, end))
    if raw is None or (not entries and not isinstance(raw, list)):
        return None, tuple(limits)
    return (tuple(entries) if entries else None), tuple(limits)


class _CiliumKind:
    declaration = KindDeclaration(
        FAMILY,
        (Resource(CNP, "cilium.io", ("v2",), "ciliumnetworkpolicies", namespaced=True),
         Resource(CCNP, "cilium.io", ("v2",), "ciliumclusterwidenetworkpolicies", namespaced=False)),
        enforced_by={"cilium": "yes"},
        summary="endpointSelector, ingress/egress and their Deny rules, fromEndpoints/toEndpoints, entities, CIDR and CIDR sets, "
                "toPorts (L7 rules judged at L4), enableDefaultDeny; toFQDNs, toServices, fromRequires, nodes and groups match nothing here")

    def compile(self, objects: Sequence[PolicyObject]) -> Compiled:
        parsed = [(o, *compile_cilium(o)) for o in objects]
        return Compiled(tuple(p for _, ps, _ in parsed for p in ps), tuple((o, tuple(e)) for o, _, e in parsed if e))


KIND = _CiliumKind()
