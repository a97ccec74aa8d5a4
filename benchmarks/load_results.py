"""Time loading a fleet's results: N run files of M cells each, as `compare` and `report` read them.

    .venv/bin/python benchmarks/load_results.py [--runs 1000] [--cells 100] [--nested-hosts 10]

Writes the runs into a temporary folder (results/<host>/<run_id>.parquet, the fleet layout),
then times the reader (`sdbench.store.read.read_results`) on a warm page cache, best of --repeats.
Rows carry every core column with realistic values (20 timing samples, warnings, environment).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sdbench.store.files import write_run  # noqa: E402
from sdbench.store.read import read_results  # noqa: E402
from sdbench.store.schema import SCHEMA_VERSION  # noqa: E402

STAGES = ("text_encoder", "unet", "vae_decode", "pipeline")
PRECISIONS = ("fp32", "fp16", "bf16")


def run_rows(run_index: int, cells: int, host: str, rng: random.Random) -> list[dict]:
    """One run's rows: `cells` cells of one host, mostly ok, a few oom or error."""
    started = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=run_index)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-fleet-{run_index:06x}"
    rows = []
    for index in range(cells):
        median_ms = rng.uniform(5, 500)
        samples = [median_ms * rng.uniform(0.97, 1.03) for _ in range(20)]
        status = "ok" if index % 25 else rng.choice(("oom", "error"))
        rows.append(
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": run_id,
                "cell_id": f"{index:016x}",
                "suite": "fleet",
                "started_at": started.isoformat(),
                "model": "sd15",
                "stage": STAGES[index % 4],
                "device": "cuda:0",
                "device_name": f"GPU model {hash(host) % 7}",
                "height": 512,
                "width": 512,
                "batch_size": 1 + index % 8,
                "precision": PRECISIONS[index % 3],
                "attention": "sdpa",
                "compile": "none",
                "channels_last": False,
                "vae": "default",
                "cfg": True,
                "steps": 20,
                "weights": "random",
                "status": status,
                "error": None if status == "ok" else f"{status}: synthetic failure",
                "samples_ms": samples if status == "ok" else [],
                "n_samples": len(samples) if status == "ok" else None,
                "median_ms": median_ms if status == "ok" else None,
                "mean_ms": sum(samples) / len(samples) if status == "ok" else None,
                "peak_mem_allocated_bytes": rng.randrange(1 << 30, 20 << 30),
                "energy_j": rng.uniform(1, 100),
                "warnings": ["high spread"] if index % 10 == 0 else [],
                "host": host,
                "os": "Linux 6.8",
                "python": "3.11.9",
                "torch": "2.13.0",
                "diffusers": "0.35.0",
                "cuda": "12.8",
                "driver": "570.86",
                "cpu_model": "AMD EPYC",
                "gpu_count": 8,
                "sdbench_version": "0.1.0",
                "git_sha": "0123abc",
            }
        )
    return rows


def write_fleet(folder: Path, runs: int, cells: int, hosts: int) -> float:
    """Write the runs; returns the seconds it took."""
    rng = random.Random(0)
    begin = time.perf_counter()
    for run_index in range(runs):
        host = f"node{run_index % hosts:03d}"
        rows = run_rows(run_index, cells, host, rng)
        write_run(rows, folder / host / f"{rows[0]['run_id']}.parquet")
    return time.perf_counter() - begin


def best_time_s(load, repeats: int) -> tuple[float, object]:
    times, frame = [], None
    for _ in range(repeats):
        begin = time.perf_counter()
        frame = load()
        times.append(time.perf_counter() - begin)
    return min(times), frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--nested-hosts", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sdbench-fleet-"))
    try:
        write_s = write_fleet(folder, args.runs, args.cells, args.nested_hosts)
        print(f"wrote {args.runs} runs x {args.cells} cells in {write_s:.1f} s ({folder})")
        seconds, frame = best_time_s(lambda: read_results([folder]), args.repeats)
        assert len(frame) == args.runs * args.cells, len(frame)
        print(f"read_results: {len(frame):,} rows in {seconds:.2f} s (best of {args.repeats})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
