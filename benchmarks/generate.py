"""Synthetic clusters of realistic shape, for benchmarks.

    python benchmarks/generate.py --size M --out /tmp/cluster-M

Sizes: S (1k pods), M (20k pods), L (150k pods, 10k namespaces, 30k policies). The cluster
is written as `kubectl get -o json` style List files (valid manifest input, one per kind) that
also serve as the API-server double's fixtures. Deterministic for a given size and seed.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SIZES = {
    "S": {"namespaces": 60, "pods": 1_000, "policies": 180},
    "M": {"namespaces": 1_300, "pods": 20_000, "policies": 4_000},
    "L": {"namespaces": 10_000, "pods": 150_000, "policies": 30_000},
}

APPS = [
    ("web", "frontend", [("http", 8080, "TCP")]),
    ("api", "backend", [("http", 8080, "TCP"), ("grpc", 9090, "TCP")]),
    ("worker", "backend", [("metrics", 9100, "TCP")]),
    ("postgres", "data", [("pg", 5432, "TCP")]),
    ("redis", "data", [("redis", 6379, "TCP")]),
    ("kafka", "data", [("kafka", 9092, "TCP")]),
    ("gateway", "edge", [("https", 8443, "TCP")]),
    ("batch", "backend", []),
]
ENVS = ("prod", "staging", "dev")


def _meta(name: str, namespace: str | None = None, labels: dict | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    meta.update(extra)
    return meta


def _np(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(name, namespace), "spec": spec}


def _dns_rule() -> dict[str, Any]:
    return {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}


def generate(size: str | dict[str, int], seed: int = 1, fat: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Objects by kind: Namespace, Pod, NetworkPolicy, DaemonSet, for a size of SIZES or a shape
    ({"namespaces", "pods", "policies"}). ``fat``: pods as `kubectl get -o
    json` really returns them (managedFields, the last-applied annotation, sidecars with env,
    volumes and probes, status conditions and container statuses: about 5 KB a pod)."""
    shape = SIZES[size] if isinstance(size, str) else size
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {"Namespace": [], "Pod": [], "NetworkPolicy": [], "DaemonSet": []}
    out["Namespace"].append({"apiVersion": "v1", "kind": "Namespace", "metadata": _meta("kube-system")})
    out["DaemonSet"].append({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta("calico-node", "kube-system", {"k8s-app": "calico-node"}),
        "spec": {"template": {"metadata": {"labels": {"k8s-app": "calico-node"}}, "spec": {"hostNetwork": True, "containers": [
            {"name": "calico-node", "image": "docker.io/calico/node:v3.29.1"}]}}}})
    for i in range(2):
        out["Pod"].append(_pod("coredns-5d78c9869d", f"coredns-5d78c9869d-{i}", "kube-system", {"k8s-app": "kube-dns"},
                               [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")], f"10.0.0.{i + 2}"))
    out["Namespace"].append({"apiVersion": "v1", "kind": "Namespace", "metadata": _meta("monitoring")})
    out["Pod"].append(_pod("prometheus", "prometheus-0", "monitoring", {"app": "prometheus"}, [("web", 9090, "TCP")], "10.0.0.9"))
    namespaces = shape["namespaces"]
    pods_per_ns = shape["pods"] // namespaces
    extra_pods = shape["pods"] - pods_per_ns * namespaces - 3
    policies_left = shape["policies"]
    for n in range(namespaces):
        env = ENVS[n % len(ENVS)]
        ns = f"{env}-team{n // len(ENVS):05d}"
        out["Namespace"].append({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": _meta(ns, labels={"env": env, "team": f"team{n % 250}"})})
        count = pods_per_ns + (1 if n < extra_pods else 0)
        apps = rng.sample(APPS, k=min(len(APPS), max(2, count // 3)))
        made = 0
        while made < count:
            for app, tier, ports in apps:
                if made >= count:
                    break
                replicas = min(count - made, rng.choice((1, 2, 3, 3, 5)))
                template_hash = f"{rng.randrange(16**8):08x}"[:9]
                for r in range(replicas):
                    labels = {"app": app, "tier": tier, "env": env, "version": f"v{rng.randrange(1, 4)}",
                              "pod-template-hash": template_hash}
                    ip = f"10.{(n >> 8) & 255}.{n & 255}.{made + 10}"
                    pod = _pod(f"{app}-{template_hash}", f"{app}-{template_hash}-{r}", ns, labels, ports, ip)
                    out["Pod"].append(_fatten(pod, rng) if fat else pod)
                    made += 1
        # Policies: most namespaces are locked down, some are open, a few have mistakes.
        budget = -(-policies_left // (namespaces - n))  # spread what is left evenly
        chosen = _policies(ns, env, apps, rng, n)[:budget]
        out["NetworkPolicy"].extend(chosen)
        policies_left -= len(chosen)
    return out


def _pod(owner: str, name: str, ns: str, labels: dict[str, str], ports: list[tuple[str, int, str]], ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": _meta(name, ns, labels, ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                                               "uid": "00000000", "controller": True}]),
        "spec": {"containers": [{"name": "main", "image": f"registry.example/{labels.get('app', 'x')}:1.0",
                                 "ports": [{"name": p, "containerPort": n, "protocol": proto} for p, n, proto in ports]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def _fatten(pod: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """What the API server adds to a pod and what real manifests carry, none of which the audit reads."""
    meta, spec, status = pod["metadata"], pod["spec"], pod["status"]
    name, ns = meta["name"], meta["namespace"]
    main = spec["containers"][0]
    env = [{"name": f"SETTING_{i}", "value": f"value-{rng.randrange(10**6)}"} for i in range(10)]
    env.append({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}})
    probe = {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 5, "periodSeconds": 10,
             "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    main.update({"env": env, "imagePullPolicy": "IfNotPresent", "livenessProbe": probe, "readinessProbe": dict(probe),
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                 "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "kube-api-access", "mountPath":
                                  "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}],
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                 "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                     "capabilities": {"drop": ["ALL"]}}})
    spec["containers"].append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0", "args": ["proxy", "sidecar"],
                               "ports": [{"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}],
                               "env": [{"name": f"ISTIO_META_{i}", "value": f"v{i}"} for i in range(8)],
                               "resources": {"requests": {"cpu": "10m", "memory": "40Mi"}}})
    spec["initContainers"] = [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.24.0",
                               "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337"]}]
    spec.update({"volumes": [{"name": "config", "configMap": {"name": f"{name}-config", "defaultMode": 420}},
                             {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                                 {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                                 {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
                 "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                 "serviceAccountName": "default", "nodeName": f"node-{rng.randrange(500)}", "schedulerName": "default-scheduler",
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                                  "tolerationSeconds": 300}], "priority": 0, "enableServiceLinks": True})
    meta.update({"uid": f"{rng.randrange(16**32):032x}", "resourceVersion": str(rng.randrange(10**8)),
                 "creationTimestamp": "2026-11-30T10:00:00Z", "generateName": name.rsplit("-", 1)[0] + "-",
                 "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                     {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": {"containers": [
                         {"name": "main", "image": main["image"], "env": env[:6]}]}}), "prometheus.io/scrape": "true"},
                 "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                                    "time": "2026-11-30T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {
                                        "f:metadata": {"f:labels": {f"f:{k}": {} for k in meta["labels"]}},
                                        "f:spec": {"f:containers": {'k:{"name":"main"}': {f"f:{k}": {} for k in main}}}}},
                                   {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-11-30T10:00:05Z",
                                    "fieldsType": "FieldsV1", "subresource": "status", "fieldsV1": {"f:status": {
                                        "f:conditions": {}, "f:containerStatuses": {}, "f:podIP": {}, "f:podIPs": {}}}}]})
    status.update({"hostIP": f"192.168.{rng.randrange(256)}.{rng.randrange(256)}", "startTime": "2026-11-30T10:00:00Z",
                   "qosClass": "Burstable",
                   "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2026-11-30T10:00:05Z", "lastProbeTime": None}
                                  for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")],
                   "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": f"{c['image']}@sha256:{rng.randrange(16**64):064x}",
                                          "containerID": f"containerd://{rng.randrange(16**64):064x}", "ready": True, "restartCount": 0,
                                          "started": True, "state": {"running": {"startedAt": "2026-11-30T10:00:04Z"}}}
                                         for c in spec["containers"]]})
    return pod


def _policies(ns: str, env: str, apps, rng: random.Random, n: int) -> list[dict[str, Any]]:
    kind = n % 20
    if kind == 0:
        return []  # one namespace in twenty has no policy
    policies = [
        _np("default-deny-all", ns, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _np("allow-dns", ns, {"podSelector": {}, "policyTypes": ["Egress"], "egress": [_dns_rule()]}),
    ]
    app, _tier, _ports = apps[0]
    target, _t2, target_ports = apps[-1]
    if kind == 1:  # the war story
        policies.append(_np("allow-from-web", ns, {"podSelector": {"matchLabels": {}}, "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}))
    elif kind == 2:  # the OR/AND trap
        policies.append(_np(f"{target}-from-{env}", ns, {"podSelector": {"matchLabels": {"app": target}}, "ingress": [
            {"from": [{"namespaceSelector": {"matchLabels": {"env": env}}}, {"podSelector": {"matchLabels": {"app": app}}}],
             "ports": [{"port": p[1]} for p in target_ports] or None}]}))
    elif kind == 3:  # egress to the internet, metadata included
        policies.append(_np(f"{app}-egress-internet", ns, {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Egress"],
                                                           "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
                                                               "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                                                               "ports": [{"port": 443}, {"port": 80}]}]}))
    elif kind == 4:  # broken: endPort below port
        policies.append(_np(f"{target}-range", ns, {"podSelector": {"matchLabels": {"app": target}}, "ingress": [
            {"ports": [{"port": 9000, "endPort": 8000}]}]}))
    elif n % 1000 == 5:  # one namespace in a thousand: a shared platform service, its data port open to every namespace
        port = target_ports[0][1] if target_ports else 5432
        policies.append(_np(f"{target}-from-all-namespaces", ns, {"podSelector": {"matchLabels": {"app": target}}, "ingress": [
            {"from": [{"namespaceSelector": {}}], "ports": [{"port": port}]}]}))
    elif kind in (7, 8):  # a non-production namespace allowed out to production's data ports
        policies.append(_np(f"{app}-to-prod-data", ns, {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}, "podSelector": {"matchLabels": {"tier": "data"}}}],
             "ports": [{"port": 5432}, {"port": 6379}, {"port": 9092}]}]}))
    elif kind in (9, 10):  # ingress locked, egress left open (the most common half-done state)
        policies[:2] = [_np("default-deny-ingress", ns, {"podSelector": {}, "policyTypes": ["Ingress"]})]
        policies.append(_np(f"{target}-from-{app}", ns, {"podSelector": {"matchLabels": {"app": target}}, "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": app}}}]}]}))
    else:  # a careful cross-namespace allow
        rule: dict[str, Any] = {"from": [{"namespaceSelector": {"matchLabels": {"env": env}},
                                          "podSelector": {"matchLabels": {"app": app}}}]}
        if target_ports:
            rule["ports"] = [{"port": target_ports[0][0]}]
        policies.append(_np(f"{target}-from-{app}", ns, {"podSelector": {"matchLabels": {"app": target}}, "ingress": [rule]}))
        policies.append(_np("allow-metrics-scrape", ns, {"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["backend", "data"]}]},
                                                         "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                                                                      "ports": [{"port": "metrics"}]}]}))
    return policies


def write(objects: dict[str, list[dict[str, Any]]], out: Path) -> list[Path]:
    """One List file per kind; valid `netpol-audit scan` input and API-double fixtures."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    files = {"Namespace": "namespaces", "Pod": "pods", "NetworkPolicy": "networkpolicies", "DaemonSet": "daemonsets"}
    for kind, items in objects.items():
        path = out / f"{files[kind]}.json"
        with path.open("w", encoding="utf-8") as fh:
            json.dump({"apiVersion": "v1", "kind": "List", "items": items}, fh, separators=(",", ":"))
        paths.append(path)
    return paths


def write_hubble_flows(objects: dict[str, list[dict[str, Any]]], n: int, out: Path, seed: int = 7, random_pairs: bool = False) -> Path:
    """``n`` flows as `hubble observe -o json` writes them, between the cluster's pods (most to a
    declared port of a pod in the same namespace, some across namespaces, a few from outside
    addresses, DNS lookups, replies and DROPPED ones mixed in), one JSON object a line.

    Realistic (the default): each pod talks to the same few peers, as services do. ``random_pairs``:
    every flow between a random source and a random destination (the worst case for grouping)."""
    rng = random.Random(seed)
    peers: dict[str, list[tuple[dict[str, Any], int, str]]] = {}
    pods = [p for p in objects["Pod"] if p["metadata"]["namespace"] != "kube-system"]
    dns = [p for p in objects["Pod"] if p["metadata"].get("labels", {}).get("k8s-app") == "kube-dns"]
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        by_ns.setdefault(pod["metadata"]["namespace"], []).append(pod)

    def end(pod: dict[str, Any]) -> dict[str, Any]:
        meta = pod["metadata"]
        return {"ID": 1000, "identity": 20000, "namespace": meta["namespace"], "pod_name": meta["name"],
                "labels": [f"k8s:{k}={v}" for k, v in meta.get("labels", {}).items()] + [f"k8s:io.kubernetes.pod.namespace={meta['namespace']}"]}

    path = out / "flows.jsonl"
    def pick(src: dict[str, Any], roll: float) -> tuple[dict[str, Any], int, str]:
        if roll < 0.15:
            return rng.choice(dns), 53, "UDP"
        same = by_ns[src["metadata"]["namespace"]] if roll < 0.75 else by_ns[rng.choice(list(by_ns))]
        dst = rng.choice(same)
        declared = [p["containerPort"] for c in dst["spec"]["containers"] for p in c.get("ports", [])]
        return dst, (rng.choice(declared) if declared else 8080), "TCP"

    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            src = rng.choice(pods)
            roll = rng.random()
            if random_pairs:
                dst, port, proto = pick(src, roll)
            else:
                mine = peers.get(src["metadata"]["name"])
                if mine is None:
                    mine = peers[src["metadata"]["name"]] = [(rng.choice(dns), 53, "UDP")] + [pick(src, 0.2 + 0.8 * rng.random()) for _ in range(3)]
                dst, port, proto = rng.choice(mine)
            src_end, src_ip = end(src), src["status"]["podIP"]
            if roll > 0.98:
                src_end, src_ip = {"identity": 2, "labels": ["reserved:world"]}, f"203.0.113.{rng.randrange(1, 255)}"
            flow = {"time": f"2026-11-30T{10 + i // 3_600_000 % 10:02d}:{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}000000Z",
                    "verdict": "DROPPED" if rng.random() < 0.01 else "FORWARDED",
                    "IP": {"source": src_ip, "destination": dst["status"]["podIP"], "ipVersion": "IPv4"},
                    "l4": {proto: {"source_port": 30000 + i % 30000, "destination_port": port}},
                    "source": src_end, "destination": end(dst), "Type": "L3_L4", "node_name": f"node-{i % 500}",
                    "traffic_direction": "EGRESS", "is_reply": rng.random() < 0.1, "Summary": proto}
            fh.write(json.dumps({"flow": flow, "node_name": flow["node_name"], "time": flow["time"]}, separators=(",", ":")) + "\n")
    return path


def iter_objects(objects: dict[str, list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for items in objects.values():
        yield from items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="S")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fat", action="store_true", help="pods as kubectl get -o json returns them (about 5 KB each)")
    args = parser.parse_args()
    objects = generate(args.size, args.seed, args.fat)
    for path in write(objects, args.out):
        print(path)
    print({k: len(v) for k, v in objects.items()})


if __name__ == "__main__":
    main()
