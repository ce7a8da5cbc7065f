"""The benchmark: every stage, for each size, with wall time and peak RSS.

    python benchmarks/run.py                 # S, M and L (L takes a few minutes)
    python benchmarks/run.py --sizes S,M     # quicker
    python benchmarks/run.py --fat           # the same clusters with pods as kubectl returns them
    python benchmarks/run.py --flows 1000000 # and a million observed flows over each

For each size it generates the cluster once (benchmarks/generate.py, cached under --work),
then runs each measurement in a fresh process so peak RSS belongs to that measurement alone:

- floor: merely parsing the input JSON with orjson;
- scan: load (manifest JSON -> inventory), analysis, checks, report model, JSON, HTML (the
  full scan: what `scan` does, its peak RSS the process's high-water mark until then), then a
  reachability sample (two allowed() verdicts per pod class) and the PDF;
- live: the same objects served by the API-server double in its own process: fetching the raw
  pages only, then `collect` (the real kubernetes client, paging, parsing, reduction);
- connectivity: every allowed connection of the whole cluster, streamed to a file as
  `netpol-audit connectivity -o FILE` writes it;
- flows (with ``--flows N``): N Hubble lines between the cluster's pods read, placed and
  aggregated, then the three answers (would break, rule use, unsegmented); against DuckDB alone
  reading and grouping the file as the issue defines it (per pod name), and by every field the
  audit needs of an end (namespace, pod, address, workload, labels), for scale.

It prints one table per size, the ratios the targets are stated in, and the fitted exponent
of full-scan time against pod count (1.0 is linear).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import resource
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

GENERATOR_DIGEST = hashlib.sha256((ROOT / "benchmarks" / "generate.py").read_bytes()).hexdigest()[:8]
FULL_SCAN = ("load", "analysis", "checks", "report model", "JSON and HTML")


def rss_mb() -> float:
    """Peak resident memory of this process, MB. VmHWM, not ru_maxrss: Linux keeps ru_maxrss across
    execve, so a child spawned by a parent that generated a cluster in memory would report the
    parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def files_of(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


# -- measurements, each run in its own process ---------------------------------------------

def measure_floor(directory: Path) -> dict[str, Any]:
    import orjson

    from audit.gcpause import gc_paused

    start = time.perf_counter()
    total = 0
    with gc_paused():  # the fastest parse there is: the same treatment the scanner gets
        for path in files_of(directory):
            total += len(orjson.loads(path.read_bytes())["items"])
    return {"stages": [["orjson parse", time.perf_counter() - start, rss_mb()]], "objects": total}


def private_mb(pid: int | str = "self") -> float:
    """Memory only process ``pid`` holds (not shared with its parent after a fork), MB; 0 when it is gone."""
    try:
        fields = dict(line.split(":") for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    except OSError:
        return 0.0
    return (int(fields["Private_Clean"].split()[0]) + int(fields["Private_Dirty"].split()[0])) / 1024


class WorkerMemory:
    """While open, samples what this process and its forked workers hold at once (this one's
    resident memory plus each worker's private memory: the physical pages of both, each counted
    once), every 0.2 s; ``peak_mb`` the most, ``worker_mb`` the workers' most."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = self.worker_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.2):
            pids = [c for task in Path(f"/proc/{me}/task").iterdir() for c in (task / "children").read_text().split()]
            if not pids:
                continue
            workers = sum(private_mb(pid) for pid in pids)
            rss = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS:")) / 1024
            self.worker_mb = max(self.worker_mb, workers)
            self.peak_mb = max(self.peak_mb, rss + workers)


JOBS = 1
"""Processes sharing the checks and the files (`--jobs`, as `scan --jobs`; by default as `scan` chooses)."""


def measure_scan(directory: Path) -> dict[str, Any]:
    import datetime as dt

    from audit.checks.catalogue import all_checks
    from audit.checks.registry import Context
    from audit.checks.runner import run_checks
    from audit.config import Config
    from audit.engine.analysis import Analysis
    from audit.engine.cni import detect_cni
    from audit.ops.run import Outputs, write_files
    from audit.render.pdf import render_pdf
    from audit.report.build import build_report, report_connectivity
    from audit.sources.manifests import load_manifests

    stages: list[list[Any]] = []

    worker_mb = [0.0]

    def stage(name, fn):
        # With --jobs, what this process and its workers hold at once (sampled), if above this one's own peak.
        with WorkerMemory() as workers:
            start = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - start
        stages.append([name, seconds, max(rss_mb(), workers.peak_mb)])
        worker_mb[0] = max(worker_mb[0], workers.worker_mb)
        return result

    config = Config()
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    inventory = stage("load", lambda: load_manifests([str(p) for p in files_of(directory)]))
    analysis = stage("analysis", lambda: Analysis(inventory, config.dns))
    cni = detect_cni(inventory)
    timings: dict[str, float] = {}
    findings = stage("checks", lambda: run_checks(Context(analysis, config, cni, now.date()), timings, JOBS))
    # As `scan` builds it (audit.pipeline): the connectivity section included.
    report = stage("report model", lambda: build_report(analysis, findings, all_checks(), cni, config, now,
                                                        report_connectivity(analysis, config.sensitive_ports)))
    with tempfile.TemporaryDirectory() as tmp:  # as `scan --json FILE --html FILE` writes them (with --jobs, side by side)
        result, page = Path(tmp) / "result.json", Path(tmp) / "report.html"
        stage("JSON and HTML", lambda: write_files(report, Outputs(files=(("json", result), ("html", page)), jobs=JOBS)))
        json_mb, html_mb = result.stat().st_size / 1e6, page.stat().st_size / 1e6
    # Not part of `scan`: after the full scan, so its memos do not count in the scan's peak.
    stage("reachability sample", lambda: reachability_sample(analysis))
    pdf = stage("PDF", lambda: render_pdf(report))
    return {"stages": stages, "check_times": sorted(timings.items(), key=lambda kv: -kv[1]),
            "pods": sum(w.pods for w in inventory.workloads), "classes": len(analysis.classes),
            "findings": len(findings), "jobs": JOBS, "worker_mb": worker_mb[0], "json_mb": json_mb, "html_mb": html_mb, "pdf_mb": len(pdf) / 1e6}


def reachability_sample(analysis) -> int:
    """Two verdicts per pod class: can it resolve names, and can a pod of another namespace reach it."""
    allowed = 0
    classes = [c for c in analysis.real_classes() if c.governed]
    dns = analysis.dns_classes[0]
    for i, cls in enumerate(classes):
        allowed += analysis.allowed(cls.id, dns, 53, "UDP").allowed
        other = classes[(i * 7919 + 13) % len(classes)]
        port = cls.ports[0].port if cls.ports else 8080
        allowed += analysis.allowed(other.id, cls.id, port).allowed
    return allowed


def _serve(directory: str, ready, stop) -> None:
    import orjson

    from tests.apiserver import ApiDouble

    objects = []
    for path in files_of(Path(directory)):
        objects += orjson.loads(path.read_bytes())["items"]
    with ApiDouble(objects) as api:
        ready.put(api.url)
        stop.wait()


def measure_live(directory: Path, page_size: int = 500) -> dict[str, Any]:
    import urllib3

    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(str(directory), ready, stop), daemon=True)
    server.start()
    url = ready.get(timeout=900)
    try:
        from audit.sources.cluster import ConnectOptions, collect

        paths = ["/api/v1/namespaces", "/api/v1/pods", "/apis/networking.k8s.io/v1/networkpolicies",
                 "/apis/apps/v1/daemonsets", "/api/v1/nodes"]
        http = urllib3.PoolManager()
        start = time.perf_counter()
        pages = 0
        for path in paths:
            token = None
            while True:
                query = f"?limit={page_size}" + (f"&continue={quote(token)}" if token else "")
                body = http.request("GET", url + path + query).data
                pages += 1
                marker = body.rfind(b'"continue": "')  # the token, without parsing the page
                token = body[marker + 13: body.index(b'"', marker + 13)].decode() if marker >= 0 else None
                if not token:
                    break
        raw = time.perf_counter() - start
        rss_raw = rss_mb()
        with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", delete=False) as fh:
            fh.write(json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "bench",
                "clusters": [{"name": "c", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "bench", "context": {"cluster": "c", "user": "u"}}],
            }))
        import kubernetes.client  # noqa: F401

        from audit.sources import cluster  # noqa: F401 - import time is not listing time

        start = time.perf_counter()
        inventory = collect(ConnectOptions(kubeconfig=fh.name, page_size=page_size))
        listing = time.perf_counter() - start
        return {"stages": [["fetch raw pages", raw, rss_raw], ["collect", listing, rss_mb()]], "pages": pages,
                "requests": inventory.collection.api_requests}
    finally:
        stop.set()
        server.join(timeout=30)


def measure_connectivity(directory: Path) -> dict[str, Any]:
    """`netpol-audit connectivity` on the whole cluster: every line, streamed to a file."""
    from audit.engine.analysis import Analysis
    from audit.engine.connectivity import connections
    from audit.ops.atomic import write_atomic_chunks
    from audit.render.connectivity import render
    from audit.sources.manifests import load_manifests

    analysis = Analysis(load_manifests([str(p) for p in files_of(directory)]))
    lines = 0

    def counted(conns):
        nonlocal lines
        for c in conns:
            lines += 1
            yield c

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "connectivity.txt"
        start = time.perf_counter()
        write_atomic_chunks(out, render(counted(connections(analysis)), "txt"))
        seconds = time.perf_counter() - start
        size = out.stat().st_size
    return {"stages": [["connectivity (all lines)", seconds, rss_mb()]], "lines": lines, "mb": size / 2**20}


def measure_flows(directory: Path) -> dict[str, Any]:
    """`netpol-audit flows` on ``flows.jsonl`` beside the cluster: read, place, aggregate, then
    the three answers; load and analysis of the cluster are measured apart, before it."""
    from audit.engine.analysis import Analysis
    from audit.engine.flows import rule_use, unsegmented, would_break
    from audit.pipeline import observe
    from audit.sources.flows import flow_input
    from audit.sources.manifests import load_manifests

    analysis = Analysis(load_manifests([str(p) for p in files_of(directory)]))
    rss_before = rss_mb()
    start = time.perf_counter()
    observed, stats = observe(analysis, flow_input([str(directory / "flows.jsonl")]))
    read = time.perf_counter() - start
    read_rss = rss_mb()  # the peak so far: reading, placing, aggregating (the answers come after)
    start = time.perf_counter()
    denied = would_break(analysis, observed.mapper, observed.traffic).total
    rules = rule_use(analysis, observed.mapper, observed.traffic)
    open_ = unsegmented(analysis, observed.mapper, observed.traffic)
    answers = time.perf_counter() - start
    return {"stages": [["flows: read, place, aggregate", read, read_rss], ["flows: the three answers", answers, rss_mb()]],
            "flows": observed.traffic.flows, "lines": stats.lines, "pairs": len(observed.traffic.pairs), "rss_before": rss_before,
            "denied": denied, "rules": len(rules), "unsegmented": len(open_)}


def _duckdb_groups(directory: Path, stage: str, paths: list[str], columns: str) -> dict[str, Any]:
    """DuckDB alone: each line of ``flows.jsonl`` parsed once for ``paths`` (``e[1]``, ``e[2]``, ...)
    and the lines grouped by ``columns`` of them, timed as one stage with the number of groups."""
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    path = str((directory / "flows.jsonl").resolve())
    groups = con.execute(f"""
        SELECT count(*) FROM (
          SELECT {columns}, count(*) AS n
          FROM (SELECT json_extract_string(json, {paths!r}) AS e FROM read_json_objects('{path}', format='newline_delimited'))
          GROUP BY ALL)""").fetchone()[0]
    return {"stages": [[stage, time.perf_counter() - start, rss_mb()]], "groups": groups}


def measure_flows_floor(directory: Path) -> dict[str, Any]:
    """DuckDB alone: read the flow file and group it per (source pod, destination pod or address,
    destination port, protocol, verdict): the floor `flows` is measured against (the issue's
    definition; the port is the destination's, not the whole l4 object with the source port, which
    made every line its own group and the floor slower)."""
    paths = ["$.flow.source.pod_name", "$.flow.destination.pod_name", "$.flow.IP.destination", "$.flow.l4.TCP.destination_port",
             "$.flow.l4.UDP.destination_port", "$.flow.l4.SCTP.destination_port", "$.flow.l4", "$.flow.verdict"]
    return _duckdb_groups(directory, "flows floor (DuckDB)", paths, "e[1] AS source, coalesce(e[2], e[3]) AS destination, "
                          "coalesce(e[4], e[5], e[6]) AS port, (json_keys(e[7]))[1] AS protocol, e[8] AS verdict")


def measure_flows_end_floor(directory: Path) -> dict[str, Any]:
    """DuckDB alone grouping the flow file by the fields the audit needs of each end (namespace, pod,
    address, workload, labels) with the port, protocol and verdict: what the floor leaves out of
    an end, for scale (the issue's floor groups by pod name alone)."""
    ends = [f"$.flow.{side}.{field}" for side in ("source", "destination") for field in ("namespace", "pod_name", "workloads[0].name", "labels")]
    paths = ends + ["$.flow.IP.source", "$.flow.IP.destination", "$.flow.l4.TCP.destination_port", "$.flow.l4.UDP.destination_port",
                    "$.flow.l4.SCTP.destination_port", "$.flow.l4", "$.flow.verdict"]
    return _duckdb_groups(directory, "flows end-fields floor", paths, "e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9], e[10], "
                          "coalesce(e[11], e[12], e[13]) AS port, (json_keys(e[14]))[1] AS protocol, e[15] AS verdict")


MEASUREMENTS = {"floor": measure_floor, "scan": measure_scan, "live": measure_live, "connectivity": measure_connectivity, "flows": measure_flows,
                "flows_floor": measure_flows_floor, "flows_end_floor": measure_flows_end_floor}


def child(kind: str, directory: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--dir", str(directory), "--jobs", str(JOBS)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="S,M,L")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "netpol-audit-bench")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--fat", action="store_true", help="fat pods (managedFields, sidecars, status: about 5 KB a pod) instead of lean ones")
    parser.add_argument("--skip-connectivity", action="store_true", help="leave out the whole-cluster connectivity listing")
    parser.add_argument("--flows", type=int, default=0, metavar="N", help="also measure `flows` on N Hubble flows between the cluster's pods (files/flows.jsonl)")
    parser.add_argument("--random-pairs", action="store_true", help="flows between random pods (the worst case for grouping) instead of each pod's few peers")
    parser.add_argument("--child", choices=sorted(MEASUREMENTS))
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--jobs", type=int, default=0, help="processes sharing the checks and files, as `scan --jobs` (default 0: as scan chooses)")
    args = parser.parse_args()
    global JOBS
    from audit.forkshare import jobs_for

    JOBS = jobs_for(args.jobs)
    if args.child:
        print(json.dumps(MEASUREMENTS[args.child](args.dir)))
        return

    from generate import generate, write, write_hubble_flows

    points = []
    # The interpreter's build weighs on every Python stage (not on the floor): say which ran.
    flags = [f for f in ("--enable-optimizations", "--with-lto") if f in (sysconfig.get_config_var("CONFIG_ARGS") or "")]
    print(f"python {sys.version.split()[0]} at {sys.executable} (configured {' '.join(flags) or 'without --enable-optimizations'})")
    for size in args.sizes.split(","):
        # The generator's digest in the folder name: a changed generator never reuses stale files.
        directory = args.work / f"{size}{'-fat' if args.fat else ''}-{GENERATOR_DIGEST}"
        objects = None
        if not (directory / "pods.json").exists():
            objects = generate(size, fat=args.fat)
            write(objects, directory)
        flows_file = directory / f"flows-{args.flows}{'-random' if args.random_pairs else ''}.jsonl"
        if args.flows and not flows_file.exists():
            write_hubble_flows(objects or generate(size, fat=args.fat), args.flows, directory, random_pairs=args.random_pairs).rename(flows_file)
        if args.flows:
            (directory / "flows.jsonl").unlink(missing_ok=True)
            (directory / "flows.jsonl").symlink_to(flows_file.name)
        floor = child("floor", directory)
        scan = child("scan", directory)
        live = None if args.skip_live else child("live", directory)
        conn = None if args.skip_connectivity else child("connectivity", directory)
        flows = child("flows", directory) if args.flows else None
        flows_floor = child("flows_floor", directory) if args.flows else None
        end_floor = child("flows_end_floor", directory) if args.flows else None
        print(f"\n== {size}: {scan['pods']} pods, {floor['objects']} objects, {scan['classes']} pod classes, "
              f"{scan['findings']} findings; JSON {scan['json_mb']:.1f} MB, HTML {scan['html_mb']:.1f} MB, PDF {scan['pdf_mb']:.1f} MB")
        print(f"{'stage':<26}{'seconds':>10}{'peak RSS MB':>14}")
        for name, seconds, rss in (floor["stages"] + scan["stages"] + (live["stages"] if live else []) + (conn["stages"] if conn else [])
                                   + (flows["stages"] if flows else [])):
            print(f"{name:<26}{seconds:>10.2f}{rss:>14.0f}")
        full = sum(s for n, s, _ in scan["stages"] if n in FULL_SCAN)
        floor_s = floor["stages"][0][1]
        print(f"{'full scan (load..HTML)':<26}{full:>10.2f}{max(r for n, _, r in scan['stages'] if n in FULL_SCAN):>14.0f}")
        print(f"ratio full scan / orjson floor: {full / floor_s:.1f}x")
        if scan["jobs"] > 1:
            print(f"checks and files shared by {scan['jobs']} processes; the worker's own memory at most {scan['worker_mb']:.0f} MB, "
                  "counted in the peaks (sampled every 0.2 s)")
        print("slowest checks: " + ", ".join(f"{cid} {sec:.2f}s" for cid, sec in scan["check_times"][:8]))
        if live:
            raw, listing = live["stages"][0][1], live["stages"][1][1]
            print(f"ratio collect / raw fetch:      {listing / raw:.2f}x ({live['pages']} pages)")
        if conn:
            print(f"connectivity: {conn['lines']} lines, {conn['mb']:.0f} MB (after load and analysis; RSS includes them)")
        if flows and flows_floor:
            print(f"flows: {flows['flows']:,} flows ({flows['lines']:,} lines) -> {flows['pairs']:,} pairs; {flows['denied']} denied rows, "
                  f"{flows['rules']} rules, {flows['unsegmented']} unsegmented; RSS {flows['rss_before']:.0f} MB before reading")
            floor_s, floor_rss = flows_floor["stages"][0][1], flows_floor["stages"][0][2]
            print(f"flows floor (DuckDB alone reads and groups the file): {floor_s:.2f}s, {floor_rss:.0f} MB, {flows_floor['groups']:,} groups; "
                  f"ratio read, place, aggregate / floor: {flows['stages'][0][1] / floor_s:.1f}x")
        if flows and end_floor:
            end_s = end_floor["stages"][0][1]
            print(f"flows end-fields floor (DuckDB alone groups by each end's namespace, pod, address, workload, labels): {end_s:.2f}s, "
                  f"{end_floor['groups']:,} groups; ratio read, place, aggregate / it: {flows['stages'][0][1] / end_s:.1f}x")
        points.append((scan["pods"], full))
    if len(points) >= 2:
        xs = [math.log(p) for p, _ in points]
        ys = [math.log(t) for _, t in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        print(f"\nfitted exponent of full-scan time vs pods: {slope:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
