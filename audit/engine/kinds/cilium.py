"""CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2), read as Cilium reads them.

Sources: Cilium's CRD schema (pkg/k8s/apis/cilium.io/client/crds/v2), its rule sanitizer
(pkg/policy/api/rule_validation.go), the namespace and cluster injection of peer selectors
(pkg/k8s/apis/cilium.io/utils), the labels it derives for pods (pkg/k8s/utils) and filters
(pkg/labelsfilter), and the policy repository's enforcement (pkg/policy). An object is `spec`
and `specs` side by side; one invalid rule rejects the whole object, as the agent does.

A pod selected by a rule with entries in a direction is enforced there (unless enableDefaultDeny
says otherwise): only what an allow rule of any kind allows passes, and deny rules win over every
allow, NetworkPolicy's included. What an inventory cannot resolve narrows, never widens: DNS
names (toFQDNs), Services without a selector, nodes and Cilium's own identities match nothing
here, and L7 rules are judged at layer 4 with the restriction named (NP-HYG-009).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audit.engine.addresses import EVERY_ADDRESS, IPBlock, parse_cidr
from audit.engine.compiled import L7, CompiledPeer, CompiledPolicy, CompiledPort, CompiledRule, CompiledSubject, HttpRule, Layer
from audit.engine.direction import DIRECTIONS, Direction
from audit.engine.dnsnames import NAME_CHARS, PATTERN_CHARS, fqdn
from audit.engine.kinds.base import Compiled, KindDeclaration, Resource, Support
from audit.engine.labelsfilter import CLUSTER_KEY, NAMESPACE_KEY, SERVICE_ACCOUNT_KEY, identity_label
from audit.engine.ports import PROTOCOLS
from audit.engine.selection import PodSelection
from audit.engine.selectors import OPERATORS, FieldError, Requirement, Selector, label_value_error, parse_selector, show
from audit.inventory import Inventory, PolicyObject, Service

CNP = "CiliumNetworkPolicy"
CCNP = "CiliumClusterwideNetworkPolicy"
FAMILY = "Cilium"
NAMESPACE_LABEL_PREFIX = "io.cilium.k8s.namespace.labels."
CLUSTER_NAME = "default"
"""Cilium's cluster name when none is configured (`cluster-name` in cilium-config)."""

ENTITIES = ("all", "world", "cluster", "host", "init", "ingress", "unmanaged", "remote-node", "health", "none", "kube-apiserver")
"""The CRD's enum: world-ipv4 and world-ipv6 are Go constants the API server rejects."""
_NON_POD_ENTITIES = {"host", "remote-node", "kube-apiserver", "ingress", "health", "init", "unmanaged"}
_PORT_PROTOCOLS = ("TCP", "UDP", "SCTP", "VRRP", "IGMP", "ANY")
_SVC_NAME = re.compile(r"^([a-zA-Z0-9]-?)*[a-zA-Z](-?[a-zA-Z0-9])*$")
_L7 = {"http": "HTTP", "kafka": "Kafka", "dns": "DNS", "l7proto": "L7"}
_MAX_PORTS = 40
_POD_SOURCES = ("k8s", "any", "unspec")
"""Label sources a pod's labels match: Kubernetes', and any (an unprefixed key)."""

_RULE_FIELDS = {"endpointSelector", "nodeSelector", "ingress", "ingressDeny", "egress", "egressDeny", "labels", "description",
                "enableDefaultDeny", "log"}
_COMMON = {"Ingress": {"fromEndpoints", "fromRequires", "fromCIDR", "fromCIDRSet", "fromEntities", "fromGroups", "fromNodes", "icmps"},
           "Egress": {"toEndpoints", "toRequires", "toCIDR", "toCIDRSet", "toEntities", "toServices", "toGroups", "toNodes", "icmps"}}
_ALLOW_ONLY = {"Ingress": {"toPorts", "authentication"}, "Egress": {"toPorts", "toFQDNs", "authentication"}}
_DENY_ONLY = {"toPorts"}
_PORT_RULE_FIELDS = {"ports", "rules", "terminatingTLS", "originatingTLS", "serverNames", "listener"}

def cilium_labels(pod_labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str],
                  service_account: str | None = None) -> dict[str, str]:
    """The identity labels Cilium gives a pod: its own (but `io.cilium.k8s*` and the filtered
    ones), its namespace's name and labels, its service account, the cluster."""
    labels = {k: v for k, v in pod_labels.items() if not k.startswith("io.cilium.k8s") and identity_label(k)}
    labels.update({NAMESPACE_LABEL_PREFIX + k: v for k, v in namespace_labels.items()})
    labels[NAMESPACE_KEY] = namespace
    if service_account:
        labels[SERVICE_ACCOUNT_KEY] = service_account
    labels[CLUSTER_KEY] = CLUSTER_NAME
    return labels


@dataclass(frozen=True)
class CiliumView:
    """The labels Cilium's endpoint selectors see (``audit.engine.selection.LabelView``)."""

    def pod(self, labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str],
            service_account: str, service_account_labels: Mapping[str, str]) -> Mapping[str, str]:
        return cilium_labels(labels, namespace, namespace_labels, service_account)

    def namespace(self, name: str, labels: Mapping[str, str]) -> Mapping[str, str]:
        return cilium_labels({}, name, labels)


VIEW = CiliumView()


@dataclass(frozen=True)
class _Keys:
    """An endpoint selector's keys sorted by label source (pkg/labels ParseSelectLabel)."""

    selector: Selector
    reserved: bool
    """A key of another source than k8s/any (`reserved:host`, `$host`, `reserved.host`): it names Cilium's
    own identities, which are never pods, and turns off the namespace and cluster injection."""


def _source(key: str) -> tuple[str, str]:
    """(source, key) as Cilium parses a selector key: `src:key`, `$key` (reserved), `reserved.key`, else any."""
    if key.startswith("$"):
        return "reserved", key[1:]
    if ":" in key:
        source, _, rest = key.partition(":")
        return source, rest
    if key.startswith("reserved."):
        return "reserved", key[len("reserved."):]
    return "any", key


def endpoint_selector(raw: Any, path: str, errors: list[FieldError]) -> _Keys:
    """An endpoint selector, its keys read by source: k8s and any match a pod's labels; every other
    source (reserved identities, container labels) never matches a pod, so a requirement on it is
    kept under a key no pod label can have."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(FieldError(path, "must be a label selector object"))
        return _Keys(Selector(), False)
    special: list[Requirement] = []
    plain: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("matchLabels", "matchExpressions")}
    if isinstance(raw.get("matchLabels"), dict):
        labels = {}
        for key, value in raw["matchLabels"].items():
            source, bare = _source(str(key))
            if source in _POD_SOURCES:
                labels[bare] = value
            elif (problem := label_value_error("" if value is None else value)) is not None:
                errors.append(FieldError(f"{path}.matchLabels", problem))
            else:
                special.append(Requirement(f"{source}:{bare}", "In", ("" if value is None else str(value),)))
        plain["matchLabels"] = labels
    elif "matchLabels" in raw:
        plain["matchLabels"] = raw["matchLabels"]
    if isinstance(raw.get("matchExpressions"), list):
        exprs = []
        for i, e in enumerate(raw["matchExpressions"]):
            if isinstance(e, dict) and isinstance(e.get("key"), str):
                source, bare = _source(e["key"])
                if source not in _POD_SOURCES:
                    values = e.get("values") or []
                    if e.get("operator") not in OPERATORS or not isinstance(values, list):
                        errors.append(FieldError(f"{path}.matchExpressions[{i}]", "needs an operator of In, NotIn, Exists, DoesNotExist"))
                    else:
                        special.append(Requirement(f"{source}:{bare}", e["operator"], tuple(sorted(str(v) for v in values))))
                    continue
                e = {**e, "key": bare}
            exprs.append(e)
        plain["matchExpressions"] = exprs
    elif "matchExpressions" in raw:
        plain["matchExpressions"] = raw["matchExpressions"]
    selector, errs = parse_selector(plain, path)
    errors += errs
    if special:
        selector = Selector(tuple(sorted(set(selector.requirements) | set(special), key=lambda r: (r.key, r.operator, r.values))))
    return _Keys(selector, bool(special))


def endpoints(keys: _Keys, namespace: str | None, clusterwide: bool) -> PodSelection:
    """The pods an endpoint selector names (pkg/k8s/apis/cilium.io/utils getEndpointSelector): in a
    namespaced policy, the policy's namespace unless the selector names a namespace (its name, in
    any expression, or its labels) or a reserved identity; in a clusterwide one, pods of every
    namespace. Namespace requirements select namespaces, the rest pods."""
    selector = keys.selector
    names_namespace = any(r.key == NAMESPACE_KEY for r in selector.requirements)
    names_labels = any(r.key.startswith(NAMESPACE_LABEL_PREFIX) for r in selector.requirements)
    own = namespace if not clusterwide and not names_namespace and not names_labels and not keys.reserved else None
    on_namespace = tuple(r for r in selector.requirements if r.key == NAMESPACE_KEY or r.key.startswith(NAMESPACE_LABEL_PREFIX))
    on_pods = tuple(r for r in selector.requirements if r not in on_namespace)
    # Every pod carries its namespace's name: `Exists` on it narrows nothing.
    on_namespace = tuple(r for r in on_namespace if not (r.key == NAMESPACE_KEY and r.operator == "Exists"))
    return PodSelection(namespace=own, namespaces=Selector(on_namespace) if on_namespace else None, pods=Selector(on_pods), view=VIEW)


@dataclass
class _Reader:
    """Reads one object's rules; errors reject the whole object, as the agent does."""

    obj: PolicyObject
    inventory: Inventory
    errors: list[FieldError]
    notes: list[str]
    groups: bool = False
    """A rule names cloud groups: the agent ignores the object (its operator derives others)."""

    @property
    def namespace(self) -> str | None:
        return self.obj.namespace if self.obj.kind == CNP else None

    def unknown(self, raw: Mapping[str, Any], known: set[str], path: str) -> None:
        for key in sorted(set(raw) - known, key=str):
            self.errors.append(FieldError(f"{path}.{key}", "unknown field (not in Cilium's CRD: kubectl's strict field validation rejects it)"))

    def parts(self) -> list[tuple[str, dict[str, Any]]]:
        spec, more = self.obj.spec, dict(self.obj.more)
        parts: list[tuple[str, Any]] = []
        if spec is not None:
            parts.append(("spec", spec))
        specs = more.get("specs")
        if specs is not None:
            if not isinstance(specs, list):
                self.errors.append(FieldError("specs", "must be a list of rules"))
            else:
                parts += [(f"specs[{i}]", s) for i, s in enumerate(specs)]
        if spec is None and specs is None:
            self.errors.append(FieldError("spec", "neither spec nor specs: Cilium's agent imports nothing from it (empty policy)"))
        out = []
        for path, part in parts:
            if not isinstance(part, dict):
                self.errors.append(FieldError(path, "must be an object"))
                continue
            self.unknown(part, _RULE_FIELDS, path)
            if ("endpointSelector" in part) == ("nodeSelector" in part):
                self.errors.append(FieldError(path, "exactly one of endpointSelector or nodeSelector is required"))
                continue
            if "nodeSelector" in part and self.obj.kind == CNP:
                self.errors.append(FieldError(f"{path}.nodeSelector", "only a CiliumClusterwideNetworkPolicy may select nodes"))
                continue
            sections = [k for k in ("ingress", "ingressDeny", "egress", "egressDeny") if k in part]
            if not sections:
                self.errors.append(FieldError(path, "at least one of ingress, ingressDeny, egress or egressDeny is required"))
                continue
            if not any(isinstance(part[k], list) and part[k] for k in sections):
                self.errors.append(FieldError(path, "rule must have at least one of ingress, ingressDeny, egress, egressDeny with a rule "
                                                    "(Cilium's agent rejects only empty lists)"))
                continue
            out.append((path, part))
        return out

    def rule(self, raw: Any, direction: Direction, index: int, deny: bool, path: str, label: str) -> CompiledRule | None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.errors.append(FieldError(path, "must be an object"))
            return None
        known = _COMMON[direction] | (_DENY_ONLY if deny else _ALLOW_ONLY[direction])
        self.unknown(raw, known, path)
        side = "from" if direction == "Ingress" else "to"
        l3_keys = [f"{side}{k}" for k in ("Endpoints", "CIDR", "CIDRSet", "Entities", "Nodes", "Groups")]
        if direction == "Egress":
            l3_keys += ["toServices"] + ([] if deny else ["toFQDNs"])
        present = [k for k in l3_keys if isinstance(raw.get(k), list) and raw[k]]
        if len(present) > 1:
            self.errors.append(FieldError(path, f"combining {present[0]} and {present[1]} is not supported (Cilium's rule sanitizer)"))
        if raw.get(f"{side}Requires"):
            self.errors.append(FieldError(f"{path}.{side}Requires", "must have at most 0 items: fromRequires and toRequires were removed "
                                                                  "in Cilium 1.19 (its CRD rejects them)"))
        # An explicit empty list of peers selects nothing (pkg/policy/utils mergeEndpointSelectors).
        empty_list = any(isinstance(raw.get(f"{side}{k}"), list) and not raw[f"{side}{k}"]
                         for k in ("Endpoints", "CIDR", "CIDRSet", "Entities", "Nodes"))
        peers = self.peers(raw, side, deny, path)
        ports, limits = self.ports(raw.get("toPorts"), direction, deny, path)
        icmps = raw.get("icmps")
        if icmps is not None:
            if raw.get("toPorts"):
                self.errors.append(FieldError(f"{path}.icmps", "icmps and toPorts cannot be in the same rule"))
            self.check_icmps(icmps, f"{path}.icmps")
            ports, limits = (), limits + (f"{path}.icmps: ICMP types (this audit judges TCP, UDP and SCTP ports: no port is open)",)
        mode = raw.get("authentication", {}).get("mode") if isinstance(raw.get("authentication"), dict) else None
        if raw.get("authentication") is not None:
            if mode not in ("disabled", "required", "test-always-fail"):
                self.errors.append(FieldError(f"{path}.authentication.mode", f"{mode!r}: supported values: disabled, required, test-always-fail"))
            elif mode != "disabled":
                limits += (f"{path}.authentication: mutual authentication ({mode}) must succeed first",)
        has_l3 = any(raw.get(k) is not None for k in l3_keys)
        names_none = empty_list or (has_l3 and not peers and not any(raw.get(k) == [] for k in ("toServices", "toFQDNs")))
        no_l4 = ports is None and not raw.get("toPorts") and icmps is None
        if not has_l3 and no_l4:  # `{}`: names no peer (Cilium's default-deny idiom)
            peer_text = "no peer"
        elif names_none:
            peer_text = "no peer (an empty list of peers)"
        else:
            peer_text = " OR ".join(p.text for p in peers) if peers else "any peer"
        all_peers = not peers and not names_none and not (not has_l3 and no_l4)
        return CompiledRule(direction, "Deny" if deny else "Allow", path, label, f"{'deny ' if deny else ''}{peer_text}",
                            () if names_none else tuple(peers), all_peers, ports, limits=limits, index=index)

    def peers(self, raw: dict[str, Any], side: str, deny: bool, path: str) -> list[CompiledPeer]:
        peers: list[CompiledPeer] = []
        for j, sel_raw in enumerate(self.items(raw, f"{side}Endpoints", path)):
            field = f"{path}.{side}Endpoints[{j}]"
            keys = endpoint_selector(sel_raw, field, self.errors)
            peers.append(CompiledPeer(field, f"{side}Endpoints [{keys.selector}]", endpoints(keys, self.namespace, self.obj.kind == CCNP),
                                      selectors=((field, keys.selector),)))
        for j, entity in enumerate(self.items(raw, f"{side}Entities", path)):
            field = f"{path}.{side}Entities[{j}]"
            if entity not in ENTITIES:
                self.errors.append(FieldError(field, f"{entity!r}: supported values: {', '.join(ENTITIES)}"))
                continue
            text = f"entity {entity}"
            if entity == "all":
                peers.append(CompiledPeer(field, text))
            elif entity == "cluster":
                peers.append(CompiledPeer(field, text, PodSelection()))  # and the nodes and Cilium's own identities
            elif entity == "world":
                peers.append(CompiledPeer(field, text, blocks=EVERY_ADDRESS, blocks_match_pods=False))
            elif entity in _NON_POD_ENTITIES:
                peers.append(CompiledPeer(field, text, unresolvable=f"entity {entity} (nodes and Cilium's own identities are not pods "
                                                                   "or outside addresses here)"))
        for j, cidr in enumerate(self.items(raw, f"{side}CIDR", path)):
            net = parse_cidr(cidr)
            if net is None:
                self.errors.append(FieldError(f"{path}.{side}CIDR[{j}]", f"{show(cidr)} is not a valid CIDR"))
            else:
                peers.append(CompiledPeer(f"{path}.{side}CIDR[{j}]", f"CIDR {net}", blocks=(IPBlock(net),), blocks_match_pods=False))
        for j, item in enumerate(self.items(raw, f"{side}CIDRSet", path)):
            peer = self.cidr_set(item, f"{path}.{side}CIDRSet[{j}]")
            if peer is not None:
                peers.append(peer)
        for j, item in enumerate(self.items(raw, f"{side}FQDNs", path)):
            field = f"{path}.{side}FQDNs[{j}]"
            name = self.fqdn_selector(item, field)
            if name is not None:
                peers.append(CompiledPeer(field, f"DNS {name}", unresolvable=f"{side}FQDNs: DNS name {name} (reach answers for the "
                                                                               "name itself)", names=(fqdn(name),)))
        for key, what in ((f"{side}Groups", "cloud groups (Cilium's agent ignores this object; the operator derives policies from it)"),
                          (f"{side}Nodes", "nodes (and the agent rejects it unless enable-node-selector-labels is on)")):
            for j, _item in enumerate(self.items(raw, key, path)):
                peers.append(CompiledPeer(f"{path}.{key}[{j}]", key, unresolvable=f"{key}: {what}"))
        if raw.get(f"{side}Groups"):
            self.groups = True
            self.notes.append(f"{path}.{side}Groups: Cilium's agent ignores the whole object; only policies its operator derives "
                              "from the cloud groups take effect, and they are not in the inventory")
        for j, svc in enumerate(self.items(raw, "toServices", path) if side == "to" else ()):
            peers.extend(self.service(svc, f"{path}.toServices[{j}]", deny))
        return peers

    def fqdn_selector(self, raw: Any, field: str) -> str | None:
        """One FQDNSelector (toFQDNs, rules.dns): matchName or matchPattern, as the CRD validates them."""
        if not isinstance(raw, dict) or len([k for k in ("matchName", "matchPattern") if raw.get(k)]) != 1:
            self.errors.append(FieldError(field, "exactly one of matchName or matchPattern is required"))
            return None
        self.unknown(raw, {"matchName", "matchPattern"}, field)
        key = "matchName" if raw.get("matchName") else "matchPattern"
        value = raw[key]
        check = NAME_CHARS if key == "matchName" else PATTERN_CHARS
        if not isinstance(value, str) or len(value) > 255 or not check.match(value):
            self.errors.append(FieldError(f"{field}.{key}", f"{show(value)} is not a valid {key} (letters, digits, -, _ and ."
                                                           f"{', *' if key == 'matchPattern' else ''}; at most 255 characters)"))
            return None
        return value

    def items(self, raw: dict[str, Any], key: str, path: str) -> list[Any]:
        value = raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.errors.append(FieldError(f"{path}.{key}", "must be a list"))
            return []
        return value

    def cidr_set(self, item: Any, field: str) -> CompiledPeer | None:
        if not isinstance(item, dict):
            self.errors.append(FieldError(field, "must be an object with cidr (or cidrGroupRef, cidrGroupSelector) and except"))
            return None
        sources = [k for k in ("cidr", "cidrGroupRef", "cidrGroupSelector") if k in item]
        if len(sources) != 1:
            self.errors.append(FieldError(field, "exactly one of cidr, cidrGroupRef or cidrGroupSelector is required"))
            return None
        if sources[0] != "cidr":
            return CompiledPeer(field, f"CIDR group {show(item[sources[0]])}",
                                unresolvable=f"{sources[0]}: CiliumCIDRGroups are not in the inventory")
        net = parse_cidr(item["cidr"])
        if net is None:
            self.errors.append(FieldError(f"{field}.cidr", f"{show(item['cidr'])} is not a valid CIDR"))
            return None
        excepts = []
        raw_except = item.get("except") or []
        if not isinstance(raw_except, list):
            self.errors.append(FieldError(f"{field}.except", "must be a list of CIDRs"))
            return None
        for k, value in enumerate(raw_except):
            ex = parse_cidr(value)
            if ex is None or ex.version != net.version or not ex.subnet_of(net):  # type: ignore[arg-type]
                self.errors.append(FieldError(f"{field}.except[{k}]", f"{show(value)} must be a CIDR inside {net}"))
                return None
            excepts.append(ex)
        block = IPBlock(net, tuple(excepts))
        return CompiledPeer(field, f"CIDR {block}", blocks=(block,), blocks_match_pods=False)

    def service(self, raw: Any, field: str, deny: bool) -> list[CompiledPeer]:
        """A toServices entry as the agent resolves it (pkg/policy/k8s/service.go): the pods each Service
        it names selects; the backends of one without a selector (addresses not in the inventory)."""
        if deny:
            return [CompiledPeer(field, "toServices", unresolvable="toServices in a deny rule: Cilium's agent never resolves it")]
        if not isinstance(raw, dict) or len([k for k in ("k8sService", "k8sServiceSelector") if k in raw]) != 1:
            self.errors.append(FieldError(field, "exactly one of k8sService or k8sServiceSelector is required"))
            return []
        ref = raw.get("k8sService")
        chosen: list[Service] = []
        if "k8sService" in raw:
            if not isinstance(ref, dict) or not isinstance(ref.get("serviceName"), str) or not isinstance(ref.get("namespace") or "", str):
                self.errors.append(FieldError(f"{field}.k8sService", "needs serviceName (and namespace) as strings"))
                return []
            ns = ref.get("namespace") or ""
            text = f"service {ns + '/' if ns else '*/'}{ref['serviceName']}"
            chosen = [s for s in self.inventory.services if s.name == ref["serviceName"] and ns in ("", s.namespace)]
        else:
            sel_raw = raw["k8sServiceSelector"]
            if not isinstance(sel_raw, dict) or not isinstance(sel_raw.get("namespace") or "", str) or sel_raw.get("selector") is None:
                self.errors.append(FieldError(f"{field}.k8sServiceSelector", "needs a selector (and a namespace string)"))
                return []
            selector, errs = parse_selector(sel_raw.get("selector"), f"{field}.k8sServiceSelector.selector")
            self.errors.extend(errs)
            ns = sel_raw.get("namespace") or ""
            text = f"services [{selector}]" + (f" in {ns}" if ns else "")
            chosen = [s for s in self.inventory.services if ns in ("", s.namespace) and selector.matches(dict(s.labels))]
        if not chosen:
            return [CompiledPeer(field, text, unresolvable=f"{text}: no such Service in the inventory (Cilium may then allow the rule's "
                                                           "ports to every destination: cilium/cilium#20067)")]
        out = []
        for service in chosen:
            name = f"service {service.namespace}/{service.name}"
            if service.selector is None:
                out.append(CompiledPeer(field, name, unresolvable=f"{name}: a Service without a selector (its endpoints' addresses are "
                                                                  "not in the inventory)"))
            else:
                selector = Selector(tuple(Requirement(k, "In", (v,)) for k, v in service.selector))
                out.append(CompiledPeer(field, name, PodSelection(namespace=service.namespace, pods=selector, view=VIEW)))
        return out

    def ports(self, raw: Any, direction: Direction, deny: bool, path: str) -> tuple[tuple[CompiledPort, ...] | None, tuple[str, ...]]:
        """toPorts as port entries (None: no toPorts, every port of every protocol), and what L7 rules restrict."""
        if raw is None or raw == []:
            return None, ()
        if not isinstance(raw, list):
            self.errors.append(FieldError(f"{path}.toPorts", "must be a list"))
            return None, ()
        entries: list[CompiledPort] = []
        limits: list[str] = []
        for t, rule in enumerate(raw):
            where = f"{path}.toPorts[{t}]"
            if not isinstance(rule, dict):
                self.errors.append(FieldError(where, "must be an object"))
                continue
            self.unknown(rule, {"ports"} if deny else _PORT_RULE_FIELDS, where)
            ports = rule.get("ports") or []
            if not isinstance(ports, list):
                self.errors.append(FieldError(f"{where}.ports", "must be a list"))
                continue
            if len(ports) > _MAX_PORTS:
                self.errors.append(FieldError(f"{where}.ports", f"at most {_MAX_PORTS} ports"))
            parsed = [p for k, item in enumerate(ports) if (p := self.port(item, f"{where}.ports[{k}]")) is not None]
            if not deny:
                limits += self.l7(rule, direction, parsed, where)
                restricts = self.l7_rules(rule.get("rules"), f"{where}.rules")
                if restricts is not None:
                    parsed = [dataclasses.replace(p, l7=restricts) for p in parsed]
            entries += parsed
        return tuple(entries), tuple(limits)

    def l7_rules(self, rules: Any, where: str) -> L7 | None:
        """The requests a port rule lets through (None: every request). ``http: []`` is a plain
        layer-4 allow (no parser is set); ``http: [{}]`` lets every request through the proxy."""
        if not isinstance(rules, dict):
            return None
        kinds = [k for k in ("http", "kafka", "dns", "l7proto") if k in rules]
        if len(kinds) != 1:
            return None  # rejected by the validation above
        kind, items = kinds[0], rules[kinds[0]]
        if kind == "http" and isinstance(items, list) and items:
            return L7("HTTP", f"{where}.http", tuple(self.http_rule(item, f"{where}.http[{i}]") for i, item in enumerate(items)))
        if kind == "dns" and isinstance(items, list) and items:
            names = [fqdn(value) for i, item in enumerate(items) if (value := self.fqdn_selector(item, f"{where}.dns[{i}]")) is not None]
            return L7("DNS", f"{where}.dns", dns=tuple(names))
        if kind == "kafka" and isinstance(items, list) and items:
            return L7("Kafka", f"{where}.kafka")
        if kind == "l7proto" and isinstance(items, str):
            return L7(items, f"{where}.l7")
        return None

    def http_rule(self, raw: Any, where: str) -> HttpRule:
        """One PortRuleHTTP as cilium-envoy matches it (pkg/envoy/policy envoy_l7_rules_translator.go)."""
        if not isinstance(raw, dict):
            self.errors.append(FieldError(where, "must be an object"))
            return HttpRule(where, unknown="not an object")
        self.unknown(raw, {"method", "path", "host", "headers", "headerMatches"}, where)
        parts: dict[str, str | None] = {}
        unknown = None
        for key in ("method", "path", "host"):
            value = raw.get(key)
            if value is not None and not isinstance(value, str):
                self.errors.append(FieldError(f"{where}.{key}", f"{show(value)} must be a string (a regular expression)"))
                value = None
            if value:
                try:
                    re.compile(value)
                except re.error as exc:
                    unknown = f"{where}.{key}: {show(value)} is not a regular expression this audit can evaluate ({exc})"
            parts[key] = value or None
        headers: list[tuple[str, str | None]] = []
        for i, header in enumerate(raw.get("headers") or []):
            if not isinstance(header, str):
                self.errors.append(FieldError(f"{where}.headers[{i}]", f"{show(header)} must be a string"))
                continue
            name, _, value = header.partition(" ")
            headers.append((name.rstrip(":").lower(), value if _ else None))
        for i, match in enumerate(raw.get("headerMatches") or []):
            if not isinstance(match, dict) or not isinstance(match.get("name"), str):
                self.errors.append(FieldError(f"{where}.headerMatches[{i}]", "needs a name"))
                continue
            if match.get("mismatch"):
                continue  # LOG, ADD, DELETE, REPLACE: the request passes, logged or rewritten
            if match.get("secret") is not None:
                unknown = f"{where}.headerMatches[{i}]: the value is held in a secret this audit does not read"
                continue
            value = match.get("value")
            headers.append((match["name"].lower(), str(value) if value else None))
        return HttpRule(where, parts["method"], parts["path"], parts["host"], tuple(headers), unknown)

    def port(self, raw: Any, where: str) -> CompiledPort | None:
        if not isinstance(raw, dict):
            self.errors.append(FieldError(where, "must be an object with port, endPort and protocol"))
            return None
        self.unknown(raw, {"port", "endPort", "protocol"}, where)
        protocol = raw.get("protocol", "ANY") or "ANY"
        if protocol not in _PORT_PROTOCOLS:
            self.errors.append(FieldError(f"{where}.protocol", f"{show(protocol)}: supported values: {', '.join(_PORT_PROTOCOLS)}"))
            return None
        value = raw.get("port")
        if protocol in ("VRRP", "IGMP"):
            if value not in (None, "", "0"):
                self.errors.append(FieldError(f"{where}.port", f"{protocol} has no ports"))
            return CompiledPort(where, ())  # not a TCP, UDP or SCTP port: nothing this audit counts as open
        if value is None or value == "":
            self.errors.append(FieldError(f"{where}.port", 'port must be specified ("0" for every port)'))
            return None
        if not isinstance(value, str):
            self.errors.append(FieldError(f"{where}.port", f"{show(value)} must be a string (a port number or name in quotes, as Cilium's CRD types it)"))
            return None
        text = value
        protocols = PROTOCOLS if protocol == "ANY" else (protocol,)
        if len(text) <= 15 and _SVC_NAME.fullmatch(text):
            return CompiledPort(where, protocols, text.lower())
        number = _go_uint(text)
        if number is None or number > 65535:
            self.errors.append(FieldError(f"{where}.port", f"{show(value)} is not a port number (0-65535) or a port name"))
            return None
        end = raw.get("endPort")
        if end is not None and (isinstance(end, bool) or not isinstance(end, int) or not 0 <= end <= 65535):
            self.errors.append(FieldError(f"{where}.endPort", f"{show(end)} must be a number from 0 to 65535"))
            return None
        if number == 0:
            # Port 0 is every port; with an endPort below 65535, 0..endPort (pkg/policy/portrange.go).
            return CompiledPort(where, protocols, None) if not end or end == 65535 else CompiledPort(where, protocols, 1, end)
        return CompiledPort(where, protocols, number, end if end is not None and end > number else None)

    def l7(self, rule: dict[str, Any], direction: Direction, ports: list[CompiledPort], where: str) -> list[str]:
        """Validate a port rule's L7 part as the sanitizer does; name what restricts it."""
        out: list[str] = []
        rules = rule.get("rules")
        if rules is not None:
            kinds = [k for k in ("http", "kafka", "dns", "l7proto") if isinstance(rules, dict) and k in rules]
            if not isinstance(rules, dict) or len(kinds) != 1:
                self.errors.append(FieldError(f"{where}.rules", "exactly one of http, kafka, dns or l7proto is required"))
                return out
            kind = kinds[0]
            if (kind == "l7proto") != isinstance(rules[kind], str) or (kind != "l7proto" and not isinstance(rules[kind], list)):
                # The CRD types l7proto as a string and the others as lists: anything else is refused.
                self.errors.append(FieldError(f"{where}.rules.{kind}", "must be a string" if kind == "l7proto" else "must be a list"))
                return out
            if kind == "dns" and direction == "Ingress":
                self.errors.append(FieldError(f"{where}.rules.dns", "DNS rules are not allowed on ingress"))
            if kind != "dns" and any(p.protocols != ("TCP",) for p in ports):
                self.errors.append(FieldError(f"{where}.ports", "L7 rules can only apply to TCP (not ANY) except for DNS rules"))
            if kind == "dns" and (not ports or any(p.end is not None for p in ports)):
                self.errors.append(FieldError(f"{where}.ports", "DNS rules need ports, and no port ranges"))
            if any(p.port is None for p in ports):
                self.errors.append(FieldError(f"{where}.ports", "L7 rules cannot be used with port 0"))
            out.append(f"{_L7[kind]} rules restrict {where}")
        for key, what in (("terminatingTLS", "TLS termination"), ("originatingTLS", "TLS origination"), ("serverNames", "TLS server names"),
                          ("listener", "an Envoy listener")):
            if rule.get(key):
                out.append(f"{what} restricts {where}")
        return out

    def check_icmps(self, raw: Any, path: str) -> None:
        if not isinstance(raw, list):
            self.errors.append(FieldError(path, "must be a list"))
            return
        for i, item in enumerate(raw):
            fields = item.get("fields") if isinstance(item, dict) else None
            if not isinstance(fields, list) or len(fields) > _MAX_PORTS:
                self.errors.append(FieldError(f"{path}[{i}].fields", f"must be a list of at most {_MAX_PORTS} ICMP fields"))
                continue
            for k, f in enumerate(fields):
                ok = isinstance(f, dict) and f.get("family", "IPv4") in ("IPv4", "IPv6") and (
                    (isinstance(f.get("type"), int) and not isinstance(f.get("type"), bool) and 0 <= f["type"] <= 255)
                    or (isinstance(f.get("type"), str) and f["type"].isalnum()))
                if not ok:
                    self.errors.append(FieldError(f"{path}[{i}].fields[{k}]", "needs a type (0-255 or a name) and a family of IPv4 or IPv6"))


def _go_uint(text: str) -> int | None:
    """strconv.ParseUint(text, 0, 16)'s number, or None: a 0x, 0o or 0b prefix, or a leading 0 for octal."""
    lowered = text.lower()
    try:
        if lowered.startswith(("0x", "0o", "0b")):
            return int(text, 0)
        if len(text) > 1 and text.startswith("0"):
            return int(text[1:], 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


def compile_cilium(obj: PolicyObject, inventory: Inventory) -> tuple[list[CompiledPolicy], list[FieldError]]:
    """The policies of one object (`spec` and each of `specs`), or the errors that reject it whole."""
    reader = _Reader(obj, inventory, [], [])
    parts = reader.parts()
    namespace = reader.namespace
    out: list[CompiledPolicy] = []
    for n, (path, part) in enumerate(parts):
        name = obj.name if len(parts) == 1 else f"{obj.name}[{n}]"
        key = f"{obj.kind}/{namespace}/{name}" if namespace else f"{obj.kind}/{name}"
        host = "nodeSelector" in part
        field = "nodeSelector" if host else "endpointSelector"
        keys = endpoint_selector(part.get(field), f"{path}.{field}", reader.errors)
        rules: list[CompiledRule] = []
        has: dict[Direction, bool] = {"Ingress": False, "Egress": False}
        for direction in DIRECTIONS:
            for deny in (False, True):
                section = direction.lower() + ("Deny" if deny else "")
                raw_rules = part.get(section)
                if raw_rules is None:
                    continue
                if not isinstance(raw_rules, list):
                    reader.errors.append(FieldError(f"{path}.{section}", "must be a list"))
                    continue
                has[direction] = has[direction] or bool(raw_rules)
                for i, raw in enumerate(raw_rules):
                    rule = reader.rule(raw, direction, i, deny, f"{path}.{section}[{i}]", f"{key} {section}[{i}]")
                    if rule is not None:
                        rules.append(rule)
        enforces = _default_deny(part.get("enableDefaultDeny"), has, f"{path}.enableDefaultDeny", reader.errors)
        if host:
            continue  # a host policy selects nodes, never a pod: validated, then left out
        selection = endpoints(keys, namespace, obj.kind == CCNP)
        if obj.kind == CNP:  # the agent always ANDs the policy's namespace into a namespaced subject
            selection = PodSelection(namespace=namespace, namespaces=selection.namespaces, pods=selection.pods, view=VIEW)
        ignored = reader.groups
        denies, allows = ([r for r in rules if (r.action == "Deny") == deny] for deny in (True, False))
        layers = () if ignored else (
            Layer("namespace", (float("-inf"), key), "Cilium deny rules win over allows",
                  tuple((d, tuple(r for r in denies if r.direction == d)) for d in DIRECTIONS)),
            Layer("namespace", (1000.0, key), obj.kind, tuple((d, tuple(r for r in allows if r.direction == d)) for d in DIRECTIONS),
                  enforces))
        subject = CompiledSubject(f"{path}.endpointSelector", f"endpointSelector {keys.selector}", selection)
        out.append(CompiledPolicy(obj.kind, FAMILY, namespace, name, key, subject, tuple(rules) if not ignored else (),
                                  tuple(d for d in DIRECTIONS if has[d]), layers, obj.source, obj.annotations,
                                  notes=tuple(dict.fromkeys(reader.notes)), spec=obj.spec))
    return ([] if reader.errors else out), reader.errors


def _default_deny(raw: Any, has: Mapping[Direction, bool], path: str, errors: list[FieldError]) -> tuple[Direction, ...]:
    """The directions a rule enforces: those it has entries in, unless enableDefaultDeny turns one off
    (then only its deny rules restrict there)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(FieldError(path, "must be an object with ingress and egress booleans"))
        return ()
    for key in ("ingress", "egress"):
        if raw.get(key) is not None and not isinstance(raw[key], bool):
            errors.append(FieldError(f"{path}.{key}", "must be true or false"))
    return tuple(d for d in DIRECTIONS if has[d] and raw.get(d.lower()) is not False)


class _CiliumKind:
    declaration = KindDeclaration(
        FAMILY,
        (Resource(CNP, "cilium.io", ("v2",), "ciliumnetworkpolicies", namespaced=True),
         Resource(CCNP, "cilium.io", ("v2",), "ciliumclusterwidenetworkpolicies", namespaced=False)),
        enforced_by={"cilium": (
            Support((CNP,), switch="enable-cilium-network-policy", source="Cilium pkg/option/config.go"),
            Support((CCNP,), switch="enable-cilium-clusterwide-network-policy", source="Cilium pkg/option/config.go"))},
        fields=(
            ("spec, specs", "evaluated", "side by side at the top level; every rule of both; neither: the agent imports nothing"),
            ("endpointSelector", "evaluated", "k8s:, any: and unprefixed keys match the pod's identity labels; reserved: and other sources never a pod; a namespaced policy's own namespace always ANDed"),
            ("nodeSelector", "validated", "host policies select nodes, never a pod (CiliumClusterwideNetworkPolicy only)"),
            ("ingress, egress", "evaluated", "an entry in a direction enforces it; `{}` allows nothing"),
            ("ingressDeny, egressDeny", "evaluated", "win over every allow, NetworkPolicy's included"),
            ("enableDefaultDeny", "evaluated", "false: the rules' allows only add, their denies restrict"),
            ("fromEndpoints, toEndpoints", "evaluated", "namespace scoping as the agent injects it (namespace key, namespace-labels keys, reserved keys); identity labels only (pod-template-hash and kubernetes.io/* are dropped); io.kubernetes.pod.namespace, io.cilium.k8s.namespace.labels.*, io.cilium.k8s.policy.serviceaccount derived"),
            ("fromEntities, toEntities", "evaluated", "all, cluster (every pod), world (outside addresses, never a pod), none; host, remote-node, kube-apiserver, ingress, health, init, unmanaged name nodes and Cilium's own identities: nothing here; world-ipv4/6 rejected as the CRD does"),
            ("fromCIDR, toCIDR, fromCIDRSet, toCIDRSet", "evaluated", "outside addresses, with except; never a pod; CIDR groups: not evaluable"),
            ("toServices", "evaluated", "a Service with a selector: its pods (k8sService by name, any namespace when none is given; k8sServiceSelector by the Service's labels); without a selector or not in the inventory: nothing here; in a deny rule: never resolved (as the agent)"),
            ("toFQDNs", "evaluated", "for a DNS name asked about (`reach SRC NAME`): matchName and matchPattern as the agent matches them, the lookup's interception by rules.dns; for pods and addresses: nothing here"),
            ("fromNodes, toNodes", "not evaluable", "nodes; the agent also rejects the policy unless enable-node-selector-labels is on"),
            ("fromGroups, toGroups", "not evaluable", "the agent ignores the object; its operator derives policies from cloud groups"),
            ("fromRequires, toRequires", "validated", "removed in Cilium 1.19: rejected as the CRD does"),
            ("toPorts.ports", "evaluated", "port as a string (Go's base 0, or a name), endPort (below port: the port alone), TCP/UDP/SCTP/ANY; VRRP and IGMP open no port; `toPorts: [{}]` allows nothing"),
            ("toPorts.rules.http", "evaluated", "per request (`reach --http`): method, path, host matched whole, headers, headerMatches; without a request, the request shapes that pass are listed"),
            ("toPorts.rules.dns", "evaluated", "the lookups the DNS proxy lets through (for DNS names asked about)"),
            ("toPorts.rules (kafka, l7proto)", "L4 only", "the port is judged and the restriction named; an HTTP request to it is refused"),
            ("toPorts TLS, serverNames, listener", "L4 only", "named"),
            ("icmps", "L4 only", "ICMP only: no TCP, UDP or SCTP port opens"),
            ("authentication", "L4 only", "mutual authentication named"),
            ("labels, description, log", "validated", "no effect on traffic"),
        ),
        summary="spec and specs, endpointSelector (k8s:, any: and reserved: keys; the identity labels Cilium keeps, namespace, "
                "service account), ingress/egress and their Deny rules, fromEndpoints/toEndpoints (namespace scoping as the agent "
                "injects it), every entity, CIDR and CIDR sets, toServices (resolved to the Service's pods), toPorts (ranges, "
                "names, ANY), HTTP rules per request and toFQDNs/DNS rules for DNS names asked about (Kafka and other L7 named), "
                "icmps, enableDefaultDeny, the sanitizer's validation; nodes, groups and Cilium's own identities match nothing here")

    def subject(self, obj: PolicyObject) -> PodSelection | None:
        spec = obj.spec if isinstance(obj.spec, dict) else None
        specs = dict(obj.more).get("specs")
        part = spec if spec is not None else specs[0] if isinstance(specs, list) and specs and isinstance(specs[0], dict) else None
        if not isinstance(part, dict) or "endpointSelector" not in part:
            return None
        errors: list[FieldError] = []
        keys = endpoint_selector(part.get("endpointSelector"), "endpointSelector", errors)
        if errors:
            return None
        selection = endpoints(keys, obj.namespace if obj.kind == CNP else None, obj.kind == CCNP)
        return PodSelection(namespace=obj.namespace, namespaces=selection.namespaces, pods=selection.pods, view=VIEW) \
            if obj.kind == CNP else selection

    def compile(self, objects: Sequence[PolicyObject], inventory: Inventory) -> Compiled:
        parsed = [(o, *compile_cilium(o, inventory)) for o in objects]
        return Compiled(tuple(p for _, ps, _ in parsed for p in ps), tuple((o, tuple(e)) for o, _, e in parsed if e))


KIND = _CiliumKind()
