"""Ready-to-apply YAML that remediations point to."""

from __future__ import annotations

from audit.engine.analysis import DnsTarget


def default_deny(namespace: str, types: tuple[str, ...] = ("Ingress", "Egress")) -> str:
    """A policy selecting every pod with no rules: default-deny for ``types``."""
    suffix = "all" if len(types) == 2 else types[0].lower()
    lines = [
        "apiVersion: networking.k8s.io/v1",
        "kind: NetworkPolicy",
        "metadata:",
        f"  name: default-deny-{suffix}",
        f"  namespace: {namespace}",
        "spec:",
        "  podSelector: {}",
        "  policyTypes:",
        *[f"    - {t}" for t in types],
    ]
    return "\n".join(lines) + "\n"


def allow_dns(namespace: str, dns: DnsTarget) -> str:
    """Egress from every pod of ``namespace`` to the cluster DNS pods on 53/UDP and 53/TCP."""
    labels = "\n".join(f"              {k}: {v}" for k, v in dns.labels)
    return (
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        "metadata:\n"
        "  name: allow-dns\n"
        f"  namespace: {namespace}\n"
        "spec:\n"
        "  podSelector: {}\n"
        "  policyTypes:\n"
        "    - Egress\n"
        "  egress:\n"
        "    - to:\n"
        "        - namespaceSelector:\n"
        "            matchLabels:\n"
        f"              kubernetes.io/metadata.name: {dns.namespace}\n"
        "          podSelector:\n"
        "            matchLabels:\n"
        f"{labels}\n"
        "      ports:\n"
        "        - port: 53\n"
        "          protocol: UDP\n"
        "        - port: 53\n"
        "          protocol: TCP\n"
    )


def baseline(namespace: str, dns: DnsTarget) -> str:
    """Default-deny in both directions plus the DNS allow it needs."""
    return default_deny(namespace) + "---\n" + allow_dns(namespace, dns)
