"""Memory per pod and per policy, for sizing the CronJob's memory request.

    python benchmarks/memory.py            # about five minutes

Generates clusters of the benchmark's shape that differ in one dimension (pods at fixed policies,
or policies at fixed pods),
scans each in a fresh process (benchmarks/run.py's scan: load, analysis, checks, report model,
JSON and HTML; the peak of those stages), and takes the difference per pod and per policy. Lean and fat pods are both measured: the
slim decoding (audit.sources.slim) keeps a fat pod's skipped fields out of memory.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

SHAPES = {
    "pods 75k, policies 30k": {"namespaces": 10_000, "pods": 75_000, "policies": 30_000},
    "pods 150k, policies 30k": {"namespaces": 10_000, "pods": 150_000, "policies": 30_000},
    "pods 150k, policies 15k": {"namespaces": 10_000, "pods": 150_000, "policies": 15_000},
}


def main() -> None:
    from generate import generate, write
    from run import FULL_SCAN, child

    results: dict[tuple[str, bool], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fat in (False, True):
            for name, shape in SHAPES.items():
                out = Path(tmp) / f"{name}-{fat}".replace(" ", "_").replace(",", "")
                write(generate(shape, fat=fat), out)
                scan = child("scan", out)  # the benchmark's own scan, in a fresh process
                results[(name, fat)] = max(rss for stage, _, rss in scan["stages"] if stage in FULL_SCAN)
                print(f"{'fat' if fat else 'lean'} {name}: peak RSS {results[(name, fat)]:.0f} MB", flush=True)
                for path in out.iterdir():
                    path.unlink()
    for fat in (False, True):
        label = "fat" if fat else "lean"
        per_pod = (results[("pods 150k, policies 30k", fat)] - results[("pods 75k, policies 30k", fat)]) * 1024 / 75_000
        # Policies vary at fixed pods (a cluster with none would differ in findings, not only in policies).
        per_policy = (results[("pods 150k, policies 30k", fat)] - results[("pods 150k, policies 15k", fat)]) * 1024 / 15_000
        print(f"{label}: {per_pod:.1f} KB per pod, {per_policy:.1f} KB per policy")


if __name__ == "__main__":
    main()
