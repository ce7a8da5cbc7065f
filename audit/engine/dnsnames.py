"""DNS names as Cilium's toFQDNs and `rules.dns` read them (pkg/fqdn/matchpattern): names and
patterns lower-case with a trailing dot; `*` stands for any run of DNS characters but `.` within a
label (`*.cilium.io` matches `sub.cilium.io`, not `cilium.io` nor `a.b.cilium.io`); a lone `*`
(`**`, `*.`) matches every name; a leading `**.` matches one or more labels (Cilium 1.19 and later).
"""

from __future__ import annotations

import functools
import ipaddress
import re

_LABEL = "[-a-zA-Z0-9_]"
_MATCH_ALL = re.compile(r"^[*]+[.]?$")
NAME_CHARS = re.compile(r"^([-a-zA-Z0-9_]+[.]?)+$")
"""What the CRD accepts in matchName."""
PATTERN_CHARS = re.compile(r"^([-a-zA-Z0-9_*]+[.]?)+$")
"""What the CRD accepts in matchPattern."""


def fqdn(name: str) -> str:
    """A name as the DNS proxy compares it: lower-case, with the trailing dot."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


@functools.lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    pattern = fqdn(pattern)
    if _MATCH_ALL.match(pattern):
        return re.compile(rf"^({_LABEL}+[.])+$|^[.]$")
    text = pattern.replace(".", "[.]")
    if text.startswith("**[.]"):
        text = f"({_LABEL}+([.]{_LABEL}+){{0,}})[.]" + text[len("**[.]"):]  # no `*`: the next step rewrites every `*`
    text = re.sub(r"[*]+", f"{_LABEL}*", text)
    return re.compile(f"^{text}$")


def name_matches(pattern: str, name: str) -> bool:
    """Whether a matchName or matchPattern entry names ``name``."""
    return _regex(pattern).match(fqdn(name)) is not None


def is_dns_name(text: str) -> bool:
    """A destination written as a DNS name (a namespace name never holds a dot)."""
    return "." in text and "/" not in text and NAME_CHARS.match(text.rstrip(".") + ".") is not None


class _Named:
    """An address that a DNS name resolved to: Cilium's toFQDNs peers name it."""

    __slots__ = ()
    dns_name: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Named) and int(self) == int(other) and self.dns_name == other.dns_name  # type: ignore[call-overload]

    def __hash__(self) -> int:
        return hash((int(self), self.dns_name))  # type: ignore[call-overload]


class NamedIPv4(_Named, ipaddress.IPv4Address):
    __slots__ = ("dns_name",)


class NamedIPv6(_Named, ipaddress.IPv6Address):
    __slots__ = ("dns_name",)


NamedAddress = (NamedIPv4, NamedIPv6)


def named(address: ipaddress.IPv4Address | ipaddress.IPv6Address, name: str) -> NamedIPv4 | NamedIPv6:
    """``address`` as the answer to a lookup of ``name``."""
    out = NamedIPv4(int(address)) if address.version == 4 else NamedIPv6(int(address))
    out.dns_name = fqdn(name)
    return out
