"""ClusterNetworkPolicy (policy.networking.k8s.io v1alpha2, network-policy-api v0.2): the successor
of AdminNetworkPolicy and BaselineAdminNetworkPolicy in one kind.

``spec.tier`` puts a policy in the admin tier (before NetworkPolicy) or the baseline tier (for
pods NetworkPolicy does not isolate); ``priority`` (0-1000, lower first) orders it there, beside
AdminNetworkPolicies of the same tier. Actions are Accept, Deny and Pass (to the next tier);
rules match ``protocols`` (tcp/udp/sctp with a destinationPort number or range, or a
destinationNamedPort). ``domainNames`` peers cannot be resolved from an inventory and match
nothing; ``nodes`` peers match no pod (node addresses are not in the inventory).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audit.engine.compiled import Tier
from audit.engine.direction import Direction
from audit.engine.kinds.admin import GROUP, AdminPeer, AdminPolicy, AdminPort, AdminRule, admin_subject, compile_admin, parse_peer, parse_subject, rule_items
from audit.engine.kinds.base import Compiled, KindDeclaration, Resource, Support
from audit.engine.ports import port_name_error
from audit.engine.selection import PodSelection
from audit.engine.selectors import FieldError
from audit.inventory import Inventory, PolicyObject

CNP = "ClusterNetworkPolicy"
_SPEC_FIELDS = {"tier", "priority", "subject", "ingress", "egress"}
_RULE_FIELDS = {"Ingress": {"name", "action", "from", "protocols"}, "Egress": {"name", "action", "to", "protocols"}}
_PROTOCOL_KEYS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}


def parse_cluster_network_policy(obj: PolicyObject) -> tuple[AdminPolicy | None, tuple[FieldError, ...]]:
    """Validate as the v1alpha2 CRD's schema and CEL rules would; errors name the field."""
    errors: list[FieldError] = []
    spec = obj.spec if isinstance(obj.spec, dict) else {}
    if not isinstance(obj.spec, dict):
        errors.append(FieldError("spec", "required, an object"))
    for key in sorted(set(spec) - _SPEC_FIELDS, key=str):
        errors.append(FieldError(f"spec.{key}", "unknown field"))
    tier = spec.get("tier")
    if tier not in ("Admin", "Baseline"):
        errors.append(FieldError("spec.tier", f"{tier!r}: supported values: Admin, Baseline"))
    priority = spec.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000:
        errors.append(FieldError("spec.priority", f"{priority!r} must be an integer from 0 to 1000"))
        priority = None
    sub_ns, sub_pod_ns, sub_pods = parse_subject(spec.get("subject"), errors, strict=True)
    ingress = _rules(spec.get("ingress"), "Ingress", errors)
    egress = _rules(spec.get("egress"), "Egress", errors)
    if errors:
        return None, tuple(errors)
    placed: Tier = "admin" if tier == "Admin" else "baseline"
    return AdminPolicy(CNP, obj.name, priority, sub_ns, sub_pod_ns, sub_pods, ingress, egress, obj.source, placed, CNP,
                       obj.annotations, obj.spec), ()


def _rules(raw: Any, direction: Direction, errors: list[FieldError]) -> tuple[AdminRule, ...]:
    peer_field = "from" if direction == "Ingress" else "to"
    out = []
    for i, path, item in rule_items(raw, direction, 25, errors):
        for key in sorted(set(item) - _RULE_FIELDS[direction], key=str):
            errors.append(FieldError(f"{path}.{key}", "unknown field" + (" (v1alpha2 matches ports under protocols)" if key == "ports" else "")))
        action = item.get("action")
        if action not in ("Accept", "Deny", "Pass"):
            errors.append(FieldError(f"{path}.action", f"{action!r}: supported values: Accept, Deny, Pass"))
        name = item.get("name", "")
        if not isinstance(name, str) or len(name) > 100:
            errors.append(FieldError(f"{path}.name", "must be a string of at most 100 characters"))
        raw_peers = item.get(peer_field)
        if not isinstance(raw_peers, list) or not 1 <= len(raw_peers) <= 25:
            errors.append(FieldError(f"{path}.{peer_field}", "required, a list of 1 to 25 peers"))
            raw_peers = []
        peers: list[AdminPeer] = []
        for j, rp in enumerate(raw_peers):
            ppath = f"{path}.{peer_field}[{j}]"
            if direction == "Egress" and isinstance(rp, dict) and list(rp) == ["domainNames"]:
                if not isinstance(rp["domainNames"], list) or not rp["domainNames"]:
                    errors.append(FieldError(f"{ppath}.domainNames", "must be a non-empty list"))
                elif action != "Accept":
                    errors.append(FieldError(f"{ppath}.domainNames", "only Accept rules may name domainNames"))
                peers.append(AdminPeer(unresolvable="domainNames"))  # a name cannot be resolved here: it matches nothing
                continue
            if isinstance(rp, dict) and "pods" in rp and isinstance(rp["pods"], dict) and "podSelector" not in rp["pods"]:
                errors.append(FieldError(f"{ppath}.pods.podSelector", "required"))
            peer = parse_peer(rp, ppath, direction, errors)
            if peer is not None:
                peers.append(peer)
        ports = _protocols(item.get("protocols"), f"{path}.protocols", errors)
        if direction == "Egress" and any(p.name is not None for p in ports) and isinstance(raw_peers, list) and any(
                isinstance(rp, dict) and {"networks", "nodes", "domainNames"} & set(rp) for rp in raw_peers):
            errors.append(FieldError(path, "networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames"))
        if action in ("Accept", "Deny", "Pass"):
            out.append(AdminRule(direction, i, name if isinstance(name, str) else "", "Allow" if action == "Accept" else action,
                                 tuple(peers), tuple(ports)))
    return tuple(out)


def _protocols(raw: Any, path: str, errors: list[FieldError]) -> list[AdminPort]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not 1 <= len(raw) <= 25:
        errors.append(FieldError(path, "must be a list of 1 to 25 entries when given"))
        return []
    out = []
    for k, entry in enumerate(raw):
        epath = f"{path}[{k}]"
        if not isinstance(entry, dict) or len(entry) != 1:
            errors.append(FieldError(epath, "exactly one of tcp, udp, sctp or destinationNamedPort is required"))
            continue
        (key, value), = entry.items()
        if key == "destinationNamedPort":
            if not isinstance(value, str) or port_name_error(value):
                errors.append(FieldError(f"{epath}.destinationNamedPort", f"{value!r} is not a valid port name"))
                continue
            out.append(AdminPort(name=value))
            continue
        if key not in _PROTOCOL_KEYS:
            errors.append(FieldError(f"{epath}.{key}", "unknown field: exactly one of tcp, udp, sctp or destinationNamedPort"))
            continue
        protocol = _PROTOCOL_KEYS[key]
        if not isinstance(value, dict) or list(value) != ["destinationPort"] or not isinstance(value["destinationPort"], dict):
            errors.append(FieldError(f"{epath}.{key}", "needs destinationPort (an object with number or range)"))
            continue
        port = value["destinationPort"]
        if len(port) != 1 or next(iter(port)) not in ("number", "range"):
            errors.append(FieldError(f"{epath}.{key}.destinationPort", "exactly one of number or range is required"))
            continue
        if "number" in port:
            number = port["number"]
            if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
                errors.append(FieldError(f"{epath}.{key}.destinationPort.number", f"{number!r} must be between 1 and 65535"))
                continue
            out.append(AdminPort(protocol, number))
            continue
        rng = port["range"]
        start, end = (rng.get("start"), rng.get("end")) if isinstance(rng, dict) else (None, None)
        if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535 for v in (start, end)) or end <= start:  # type: ignore[operator]
            errors.append(FieldError(f"{epath}.{key}.destinationPort.range", f"start {start!r} and end {end!r}: Start port must be less than End port"))
            continue
        out.append(AdminPort(protocol, start, end))
    return out


class _ClusterNetworkKind:
    declaration = KindDeclaration(
        CNP, (Resource(CNP, GROUP, ("v1alpha2",), "clusternetworkpolicies", namespaced=False),),
        # Sources in the README's enforcement matrix.
        enforced_by={
            "kube-network-policies": (Support(switch="cluster-network-policy", source="kube-network-policies cmd/kube-network-policies/npa-v1alpha2"),),
            "kube-ovn": (Support(since="1.15", switch="enable-anp", source="Kube-OVN pkg/controller/controller.go"),),
            **{calico: (Support(since="3.32", switch="kubernetes-datastore", source="Calico v3.32 release notes"),) for calico in ("calico", "canal")},
            "antrea": (Support(since="2.7", switch="ClusterNetworkPolicy", source="Antrea pkg/features/antrea_features.go"),),
            "cilium": (Support(since="1.20", switch="enable-k8s-cluster-network-policy", source="Cilium pkg/option/config.go"),),
        },
        summary="tier (Admin, Baseline), priority, subject, Accept/Deny/Pass rules, peers (namespaces, pods, networks), "
                "protocols (tcp/udp/sctp ports and ranges, named ports); domainNames and nodes peers match nothing here")

    def subject(self, obj: PolicyObject) -> PodSelection | None:
        return admin_subject(obj)

    def compile(self, objects: Sequence[PolicyObject], inventory: Inventory) -> Compiled:
        parsed = [(o, *parse_cluster_network_policy(o)) for o in objects]
        return Compiled(tuple(compile_admin(p, "protocols") for _, p, _ in parsed if p is not None),
                        tuple((o, e) for o, p, e in parsed if p is None))


KIND = _ClusterNetworkKind()
