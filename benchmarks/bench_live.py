"""Benchmark live listing against the API-server double (run in its own process).

    python benchmarks/bench_live.py --namespaces 10000 --pods-per-namespace 15

Measures (1) merely fetching every raw page of every list the scanner reads, with urllib3
and the same page size, and (2) `collect()`: the real kubernetes client, paging, parsing and
reduction to the compact inventory. Prints wall times, the ratio (2)/(1) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from urllib.parse import quote
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def serve(namespaces: int, pods: int, ready, stop) -> None:
    from bench import generate

    from tests.apiserver import ApiDouble

    objects = list(generate(namespaces, pods))
    with ApiDouble(objects) as api:
        ready.put(api.url)
        stop.wait()


def fetch_raw(url: str, paths: list[str], page_size: int) -> tuple[int, int]:
    import urllib3

    http = urllib3.PoolManager()
    pages = total = 0
    for path in paths:
        token = None
        while True:
            query = f"?limit={page_size}" + (f"&continue={quote(token)}" if token else "")
            resp = http.request("GET", url + path + query)
            body = resp.data
            pages += 1
            total += len(body)
            # Only the continue token is needed to go on; find it without parsing the page.
            marker = body.rfind(b'"continue": "')
            token = body[marker + 13: body.index(b'"', marker + 13)].decode() if marker >= 0 else None
            if not token:
                break
    return pages, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--pods-per-namespace", type=int, default=15)
    parser.add_argument("--page-size", type=int, default=500)
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=serve, args=(args.namespaces, args.pods_per_namespace, ready, stop), daemon=True)
    server.start()
    url = ready.get(timeout=600)
    try:
        from audit.sources.cluster import ConnectOptions, collect

        paths = ["/api/v1/namespaces", "/api/v1/pods", "/apis/networking.k8s.io/v1/networkpolicies", "/apis/apps/v1/daemonsets", "/api/v1/nodes"]
        start = time.perf_counter()
        pages, size = fetch_raw(url, paths, args.page_size)
        raw_seconds = time.perf_counter() - start

        with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", delete=False) as fh:
            fh.write(json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "bench",
                "clusters": [{"name": "c", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "bench", "context": {"cluster": "c", "user": "u"}}],
            }))
        start = time.perf_counter()
        inventory = collect(ConnectOptions(kubeconfig=fh.name, page_size=args.page_size))
        collect_seconds = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        stop.set()
        server.join(timeout=10)

    pods = sum(w.pods for w in inventory.workloads)
    print(f"cluster: {args.namespaces} namespaces, {pods} pods, {len(inventory.policies)} policies; "
          f"{pages} raw pages, {size / 1e6:.0f} MB of JSON")
    print(f"fetch raw pages only:       {raw_seconds:8.2f} s")
    print(f"collect (client + parse + reduce): {collect_seconds:8.2f} s  ({inventory.collection.api_requests} requests)")
    print(f"ratio collect / raw fetch:  {collect_seconds / raw_seconds:8.2f}")
    print(f"peak RSS of the scanner:    {rss:8.0f} MB")


if __name__ == "__main__":
    main()
