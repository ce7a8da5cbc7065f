"""The labels Cilium puts in a pod's security identity (the agent's pkg/labelsfilter defaults).

Cilium's policies select pods by these labels only, and Hubble's flows show these labels of each
end: both the Cilium kind and the flow mapper read them here.
"""

from __future__ import annotations

import functools
import re

NAMESPACE_KEY = "io.kubernetes.pod.namespace"
SERVICE_ACCOUNT_KEY = "io.cilium.k8s.policy.serviceaccount"
CLUSTER_KEY = "io.cilium.k8s.policy.cluster"

_INCLUDE = ("reserved:", NAMESPACE_KEY, "io.cilium.k8s.namespace.labels", "app.kubernetes.io", CLUSTER_KEY, SERVICE_ACCOUNT_KEY)
_IGNORE = (r"io\.kubernetes", r"kubernetes\.io", r".*beta\.kubernetes\.io", r"k8s\.io", r"topology\.kubernetes\.io",
           "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index", "batch.kubernetes.io/job-completion-index",
           "batch.kubernetes.io/controller-uid", "pod-template-generation", "pod-template-hash", "controller-revision-hash",
           "controller-uid", "annotation.*", "etcd_node")
_IGNORE_RE = tuple((len(p), re.compile(p)) for p in _IGNORE)


@functools.lru_cache(maxsize=4096)  # asked per pod and per capture end; a cluster has few label keys
def identity_label(key: str) -> bool:
    """Whether Cilium keeps a pod label in its identity (pkg/labelsfilter's default prefixes): kept
    when no ignore rule matches it, or when the longest matching include is longer than the
    shortest matching ignore."""
    ignored = [n for n, pattern in _IGNORE_RE if pattern.match(key)]
    if not ignored:
        return True
    included = [len(p) for p in _INCLUDE if key.startswith(p)]
    return bool(included) and max(included) > min(ignored)
