"""Pod classes: pods that every policy treats alike, and where the cluster DNS pods are."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from audit.engine.addresses import IPAddress
from audit.engine.cached import cached
from audit.inventory import ContainerPort, Labels, Workload


def ip_value(raw: str) -> tuple[int, int] | None:
    """(version, integer) of an IP address, or None; through inet_pton, no address objects."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, raw), "big")
    except OSError:
        pass
    try:
        return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, raw), "big")
    except OSError:
        return None


def parse_ip(raw: str) -> IPAddress | None:
    """An IP address, or None; through inet_pton, about 20x faster than ipaddress's parser."""
    parsed = ip_value(raw)
    if parsed is None:
        return None
    return ipaddress.IPv4Address(parsed[1]) if parsed[0] == 4 else ipaddress.IPv6Address(parsed[1])


@dataclass(eq=False)
class PodClass:
    """Pods that every NetworkPolicy treats alike."""

    id: int
    namespace: str
    labels: Labels
    label_map: Mapping[str, str]
    ports: tuple[ContainerPort, ...]
    host_network: bool
    pods: int
    workloads: tuple[Workload, ...]
    virtual: bool = False
    service_account: str = "default"
    refs: tuple[str, ...] = field(init=False)
    """Its workloads' references (``ns/name[Kind]``), made once: coverage, checks and reports list them by the thousand."""
    governed: bool = field(init=False)
    """Real pods that NetworkPolicy can govern (hostNetwork pods share the node's network); an
    attribute, not a property: asked a million times a scan."""

    def __post_init__(self) -> None:
        self.refs = tuple(w.ref for w in self.workloads)
        self.governed = not self.host_network and not self.virtual

    @cached
    def ips(self) -> tuple[IPAddress, ...]:
        """The pods' IPs (live clusters), parsed on first use: only ipBlock peers need them."""
        parsed = (parse_ip(raw) for w in self.workloads for raw in w.ips)
        return tuple(ip for ip in parsed if ip is not None)

    def describe(self) -> str:
        names = ", ".join(self.refs[:3])
        more = f" (+{len(self.workloads) - 3} more)" if len(self.workloads) > 3 else ""
        return names + more


@dataclass(frozen=True)
class DnsTarget:
    """Where the cluster DNS pods are: the pods the ``service`` selects in ``namespace`` (CoreDNS
    keeps the kube-dns Service name; its Helm chart labels pods differently), else pods with
    ``labels``, else a virtual pod with them (said so in the report)."""

    namespace: str = "kube-system"
    labels: Labels = (("k8s-app", "kube-dns"),)
    service: str = "kube-dns"

    def describe(self) -> str:
        return f"{self.namespace}/{','.join(f'{k}={v}' for k, v in self.labels)}"
