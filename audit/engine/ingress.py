"""What an ingress controller can reach: Ingress and Route objects, through their Services.

As np-guard's netpol-analyzer reads them: an Ingress (default backend and every path) or a
Route (`to` and alternate backends) names Services in its own namespace; a Service with a
selector names the pods it selects and, per port, the pod port it lands on (`targetPort`, a
number or a container port name; else `port`). A backend port names one Service port (by
name, number or target); without one, every Service port counts. Only TCP ports the pods
declare are kept. The controller is a virtual pod without labels in a namespace of its own
(`Analysis.ingress_controller`); the connection is those ports where its egress and the
pod's ingress both allow it, every policy layer included.
"""

from __future__ import annotations

from audit.engine.analysis import Analysis, PodClass
from audit.engine.ports import NONE, PortSet
from audit.inventory import Backend, Service

SOURCE = "{ingress-controller}"
"""How connectivity names the ingress controller (np-guard's name)."""


def ingress_ports(analysis: Analysis) -> dict[int, PortSet]:
    """Per pod class: the TCP ports Ingress and Route objects send traffic to (before policies)."""
    services = {(s.namespace, s.name): s for s in analysis.inventory.services}
    out: dict[int, PortSet] = {}
    for ing in analysis.inventory.ingresses:
        for backend in ing.backends:
            service = services.get((ing.namespace, backend.service))
            if service is None or service.selector is None:
                continue  # no such Service, or one without a selector: nothing to follow
            wanted = dict(service.selector)
            for cid in analysis.classes_by_ns.get(ing.namespace, ()):
                cls = analysis.classes[cid]
                if cls.governed and all(cls.label_map.get(k) == v for k, v in wanted.items()):
                    ports = _pod_ports(cls, service, backend)
                    if ports:
                        out[cid] = out.get(cid, NONE) | ports
    return out


def _pod_ports(cls: PodClass, service: Service, backend: Backend) -> PortSet:
    """The declared TCP pod ports a backend reaches through its Service."""
    if backend.port is None:
        chosen = list(service.ports)
    else:
        chosen = [p for p in service.ports
                  if (p.name is not None and p.name == backend.port) or p.port == backend.port or p.target == backend.port][:1]
    declared = {p.port for p in cls.ports if p.protocol == "TCP"}
    numbers = set()
    for port in chosen:
        target = port.port if port.target is None else port.target
        if isinstance(target, str):
            named = next((p for p in cls.ports if p.name == target), None)
            if named is None or named.protocol != "TCP":
                continue
            target = named.port
        if target in declared:
            numbers.add(target)
    return PortSet.of({"TCP": [(n, n) for n in numbers]}) if numbers else NONE
