"""Ready-to-apply YAML that remediations point to, built as data and serialised.

Names come from the input: pasted into YAML text, a namespace such as "a\n---\nkind: ..." would
smuggle a second document into the fix. Built as objects and written by a YAML dumper, every
name stays one scalar.
"""

from __future__ import annotations

from typing import Any

import yaml

from audit.engine.analysis import DnsTarget


def dump(*docs: dict[str, Any]) -> str:
    """YAML documents, separated by ``---``."""
    return yaml.safe_dump_all(list(docs), sort_keys=False, default_flow_style=False, explicit_start=False, width=1000)


def default_deny_policy(namespace: str, types: tuple[str, ...] = ("Ingress", "Egress")) -> dict[str, Any]:
    """A policy selecting every pod with no rules: default-deny for ``types``."""
    suffix = "all" if len(types) == 2 else types[0].lower()
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"default-deny-{suffix}", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": list(types)}}


def allow_dns_policy(namespace: str, dns: DnsTarget) -> dict[str, Any]:
    """Egress from every pod of ``namespace`` to the cluster DNS pods on 53/UDP and 53/TCP."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "allow-dns", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
                "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": dns.namespace}},
                        "podSelector": {"matchLabels": dict(dns.labels)}}],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}}


def default_deny(namespace: str, types: tuple[str, ...] = ("Ingress", "Egress")) -> str:
    return dump(default_deny_policy(namespace, types))


def allow_dns(namespace: str, dns: DnsTarget) -> str:
    return dump(allow_dns_policy(namespace, dns))


def baseline(namespace: str, dns: DnsTarget) -> str:
    """Default-deny in both directions plus the DNS allow it needs."""
    return dump(default_deny_policy(namespace), allow_dns_policy(namespace, dns))
