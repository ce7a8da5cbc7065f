"""Addresses and address blocks, as every policy kind names them (CIDRs with exceptions)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PREFIX_RE = re.compile(r"[0-9]{1,3}")


def parse_cidr(value: Any) -> IPNetwork | None:
    """Parse CIDR notation as Go's net.ParseCIDR does: ADDRESS/BITS with BITS a decimal prefix
    length (no netmask or hostmask form), no IPv6 zone, no surrounding space; host bits allowed."""
    if not isinstance(value, str) or value.count("/") != 1:
        return None
    address, bits = value.split("/")
    if not _PREFIX_RE.fullmatch(bits) or "%" in address or address != address.strip() or not address:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class IPBlock:
    """A CIDR and the blocks it excepts (NetworkPolicy's ipBlock, Cilium's CIDR set, Calico's nets)."""

    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, ip: IPAddress) -> bool:
        if ip.version != self.cidr.version or ip not in self.cidr:
            return False
        return not any(ip in ex for ex in self.excepts)

    @property
    def is_everything(self) -> bool:
        """0.0.0.0/0 or ::/0 with no except: the whole address family."""
        return self.cidr.prefixlen == 0 and not self.excepts

    def __str__(self) -> str:
        if self.excepts:
            return f"{self.cidr} except {', '.join(map(str, self.excepts))}"
        return str(self.cidr)


EVERY_ADDRESS = (IPBlock(ipaddress.ip_network("0.0.0.0/0")), IPBlock(ipaddress.ip_network("::/0")))
"""Both whole address families."""
