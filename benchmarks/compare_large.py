"""`sdbench compare` at scale: two synthetic runs of 10,000 cells x 500 samples each.

Times `sdbench.analysis.compare.compare_runs` on them, then the command's printing paths (the
default text table, `--all`, markdown and json). Issue 16 measured 43 ms per cell (7 minutes)
before the latency statistics were vectorised. Target: the comparison under 30 s.

    .venv/bin/python benchmarks/compare_large.py [--cells 10000] [--samples 500] [--repeats 1]
"""

from __future__ import annotations

import argparse
import io
import time
from contextlib import redirect_stdout

import numpy as np
import pandas as pd
from common import machine, median, print_machine, verdict

from sdbench.analysis.compare import compare_runs
from sdbench.cell import Cell
from sdbench.commands.compare import as_json, as_markdown, as_text

TARGET_S = 30.0
ENVIRONMENT = {
    "device_name": "AMD EPYC 7742 (64 cores)", "cpu_model": "AMD EPYC 7742", "gpu_count": 0,
    "host": "bench", "torch": "2.13.0+cpu", "diffusers": "0.36.0", "cuda": None,
    "driver": None, "python": "3.11.7", "allocator": "tuned", "status": "ok",
}  # fmt: skip


def cells(count: int) -> list[Cell]:
    """`count` distinct tiny-model cells: 100 resolutions x as many batch sizes as needed."""
    return [
        Cell("tiny", "unet", "cpu", 64 + 8 * (i % 100), 64, 1 + i // 100, "fp32", "sdpa", "none")
        for i in range(count)
    ]


def synthetic_run(
    run_id: str, run_cells: list[Cell], samples: int, seed: int, slow_every: int = 0
) -> pd.DataFrame:
    """One run: lognormal 2% jitter around each cell's time; every `slow_every`-th cell 10% slower."""
    rng = np.random.default_rng(seed)
    true_ms = np.array([0.5 * c.width * c.batch_size / 64 for c in run_cells])
    factor = np.ones(len(run_cells))
    if slow_every:
        factor[::slow_every] = 1.10
    timings = (
        true_ms[:, None] * factor[:, None] * rng.lognormal(0.0, 0.02, (len(run_cells), samples))
    )
    frame = pd.DataFrame([c.to_dict() for c in run_cells])
    frame = frame.assign(
        run_id=run_id,
        cell_id=[c.cell_id for c in run_cells],
        suite="compare-large",
        started_at=pd.Timestamp("2026-12-01", tz="UTC"),
        samples_ms=list(timings),
        n_samples=samples,
        median_ms=np.median(timings, axis=1),
        peak_rss_bytes=2**30,
        **ENVIRONMENT,
    )
    return frame


def timed(call) -> tuple[float, object]:
    begin = time.perf_counter()
    result = call()
    return time.perf_counter() - begin, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print_machine(machine("cpu"))
    run_cells = cells(args.cells)
    baseline = synthetic_run("base", run_cells, args.samples, seed=1)
    current = synthetic_run("current", run_cells, args.samples, seed=2, slow_every=100)
    seconds, result = [], None
    for _ in range(args.repeats):
        took, result = timed(lambda: compare_runs(baseline, current))
        seconds.append(took)
    counts = result.verdict_counts()
    print(
        f"compare_runs, {args.cells} cells x {args.samples} samples: median {median(seconds):.2f} s "
        f"[{' '.join(f'{s:.2f}' for s in seconds)}], {1000 * median(seconds) / args.cells:.2f} ms "
        f"per cell; {counts.get('slower', 0)} slower (planted {len(run_cells[::100])}), "
        f"{counts['regression']} regressions"
    )
    for name, render in (
        ("text", lambda: as_text(result)),
        ("text --all", lambda: as_text(result, show_all=True)),
        ("markdown", lambda: as_markdown(result, "base", "current")),
        ("json", lambda: as_json(result)),
    ):
        with redirect_stdout(io.StringIO()):
            took, _ = timed(render)
        print(f"printing {name}: {took:.2f} s")
    total = median(seconds)
    return verdict("compare_large", total < TARGET_S, f"{total:.2f} s (target < {TARGET_S} s)")


if __name__ == "__main__":
    raise SystemExit(main())
