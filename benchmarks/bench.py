"""Benchmark the pipeline on a generated cluster, stage by stage.

    python benchmarks/bench.py --namespaces 10000 --pods-per-namespace 15

Prints wall time per stage and the peak RSS. The cluster is generated in memory as API-style
pod dicts (one per pod, with owner references, as a live list returns them), 3 policies per
namespace (default-deny, DNS allow, one workload allow) and a Calico DaemonSet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.analysis import Analysis  # noqa: E402
from audit.checks.registry import Context, all_checks  # noqa: E402
from audit.cni import detect_cni  # noqa: E402
from audit.config import Config  # noqa: E402
from audit.findings import run_checks  # noqa: E402
from audit.inventory import Collection, SourceRef  # noqa: E402
from audit.render.html import render_html  # noqa: E402
from audit.render.json_report import render_json  # noqa: E402
from audit.render.pdf import render_pdf  # noqa: E402
from audit.render.terminal import render_terminal  # noqa: E402
from audit.report import build_report  # noqa: E402
from audit.sources.objects import InventoryBuilder  # noqa: E402

APPS = ("web", "api", "worker", "cache", "db")
PORTS = {"web": 8080, "api": 8080, "worker": 9000, "cache": 6379, "db": 5432}


def generate(namespaces: int, pods_per_ns: int):
    """Yield API-style objects for a synthetic cluster."""
    yield {"kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": {"name": "calico-node", "namespace": "kube-system"},
           "spec": {"template": {"metadata": {"labels": {"k8s-app": "calico-node"}},
                                 "spec": {"hostNetwork": True, "containers": [{"name": "calico-node", "image": "calico/node:v3.29.1"}]}}}}
    for i in range(namespaces):
        ns = f"team-{i:05d}"
        env = ("prod", "staging", "dev")[i % 3]
        yield {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": ns, "labels": {"env": env, "team": f"t{i % 97}"}}}
        for j in range(pods_per_ns):
            app = APPS[j % len(APPS)]
            yield {
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": f"{app}-abc12-{j}", "namespace": ns,
                             "labels": {"app": app, "pod-template-hash": "abc12", "env": env},
                             "ownerReferences": [{"kind": "ReplicaSet", "name": f"{app}-abc12", "controller": True}]},
                "spec": {"containers": [{"name": app, "image": f"registry.example/{app}:1",
                                         "ports": [{"containerPort": PORTS[app], "name": "main"}]}]},
                "status": {"phase": "Running", "podIP": f"10.{(i >> 8) & 255}.{i & 255}.{j}"},
            }
        if i % 10 == 9:
            continue  # one namespace in ten has no policy
        meta = lambda name: {"name": name, "namespace": ns}  # noqa: E731
        yield {"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1", "metadata": meta("default-deny"),
               "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
        yield {"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1", "metadata": meta("allow-dns"),
               "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{
                   "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                   "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                   "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}}
        yield {"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1", "metadata": meta("api-from-web"),
               "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [{
                   "from": [{"podSelector": {"matchLabels": {"app": "web"}}},
                            {"namespaceSelector": {"matchLabels": {"env": env}}, "podSelector": {"matchLabels": {"app": "web"}}}],
                   "ports": [{"port": "main"}]}]}}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--pods-per-namespace", type=int, default=15)
    args = parser.parse_args()

    stages: list[tuple[str, float, float]] = []

    def stage(name, fn):
        start = time.perf_counter()
        result = fn()
        stages.append((name, time.perf_counter() - start, rss_mb()))
        return result

    objects = stage("generate objects", lambda: list(generate(args.namespaces, args.pods_per_namespace)))

    def build():
        gc.disable()  # bulk reduction allocates many small objects that never form cycles
        try:
            builder = InventoryBuilder()
            for obj in objects:
                builder.add(obj, SourceRef(), "bench")
            return builder.build(Collection(source="cluster"))
        finally:
            gc.enable()

    inventory = stage("objects -> inventory", build)
    del objects[:]
    config = Config()
    analysis = stage("analysis", lambda: Analysis(inventory, config.dns))
    cni = detect_cni(inventory.daemonsets)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    findings = stage("checks", lambda: run_checks(Context(analysis, config, cni, now.date())))
    report = stage("report model", lambda: build_report(analysis, findings, all_checks(), cni, config, now))
    text = stage("JSON", lambda: render_json(report))
    stage("terminal", lambda: render_terminal(report))
    html = stage("HTML (5000 rows/table)", lambda: render_html(report))
    pdf = stage("PDF (500 rows/table)", lambda: render_pdf(report))

    pods = sum(w.pods for w in inventory.workloads)
    print(f"cluster: {args.namespaces} namespaces, {pods} pods, {len(inventory.policies)} policies, "
          f"{len(analysis.classes)} pod classes, {len(findings)} findings, JSON {len(text) / 1e6:.1f} MB, "
          f"HTML {len(html) / 1e6:.1f} MB, PDF {len(pdf) / 1e6:.1f} MB")
    print(f"{'stage':<26}{'seconds':>10}{'peak RSS MB':>14}")
    for name, seconds, rss in stages:
        print(f"{name:<26}{seconds:>10.2f}{rss:>14.0f}")
    print(f"{'total (without generate)':<26}{sum(s for n, s, _ in stages[1:]):>10.2f}")


if __name__ == "__main__":
    main()
