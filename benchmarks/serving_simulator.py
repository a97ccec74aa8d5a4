"""Time the serving simulator: a million requests through dynamic batching on N GPUs.

    .venv/bin/python benchmarks/serving_simulator.py [--requests 1000000] [--target-s 5]

Three shapes, each best of --repeats: one GPU at batch 1 (the M/D/1 case), four GPUs with
batches up to 8 and a 50 ms wait, and a closed loop of 32 clients. The target: each shape
simulates the requests in under --target-s seconds on one core.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import verdict  # noqa: E402
from sdbench.serving.simulate import LatencyCurve, simulate  # noqa: E402

SHAPES = {
    "1 GPU, batch 1, 80% load": dict(rate_rps=0.8, max_batch=1),
    "4 GPUs, batch <= 8, 50 ms wait": dict(rate_rps=9.0, max_batch=8, max_wait_s=0.05, servers=4),
    "closed loop, 32 clients": dict(concurrency=32, max_batch=8, max_wait_s=0.05),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target-s", type=float, default=5.0)
    args = parser.parse_args()
    curve = LatencyCurve.from_points({1: 1.0, 8: 3.0}, 8)
    worst = 0.0
    for name, shape in SHAPES.items():
        times = []
        for _ in range(args.repeats):
            begin = time.perf_counter()
            result = simulate(curve, requests=args.requests, seed=1, **shape)
            times.append(time.perf_counter() - begin)
        best = min(times)
        worst = max(worst, best)
        print(
            f"{name}: {args.requests:,} requests in {best:.2f} s, p99 {result.percentile_s(99):.2f} s"
        )
    return verdict(
        "serving simulator", worst < args.target_s,
        f"slowest shape {worst:.2f} s for {args.requests:,} requests (target < {args.target_s:g} s)",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
