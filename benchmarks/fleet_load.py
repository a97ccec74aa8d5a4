"""Time a fleet's folder end to end: 1,000 runs from 100 machines, loaded, reported and `best`-ed.

    .venv/bin/python benchmarks/fleet_load.py [--machines 100] [--runs-per-machine 10]
        [--precisions fp16[,fp32,bf16]] [--target-s 10] [--keep DIR] [--profile]

Issue 15's target: "a folder mixing a thousand runs from a hundred machines loads and reports in
seconds". Writes the runs with the store's own writer (`write_run`) into a temporary folder,
one subfolder per host (the fleet layout), rows built the way `sdbench run` builds them
(`make_row` over real `Cell`s, timing from `stats.summarize` of 20 samples), a few cells each
on a catalogue GPU, a few OOM rows where the card is small. Then times, on a warm page cache:
reading the folder (`read_results`) the first time and again from the read cache
(`sdbench.store.read_cache`, kept under the fleet's folder here), `sdbench report FOLDER --out SITE`
(the HTML site with every plot, the Machines section and the history of every machine) on a
first read and on a cached one, and `sdbench best FOLDER`, each command in a fresh process as
a user runs it (its imports count). Prints one line per phase and PASS/FAIL against --target-s
for the report with the read cache warm: every report of the folder after its first (the first
read of 1,000 files costs seconds more, printed beside it).
`--profile` prints the top of a cProfile of the report, to find what grows with the fleet.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import itertools
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import verdict  # noqa: E402
from sdbench.cell import Cell  # noqa: E402
from sdbench.cli import main as sdbench_main  # noqa: E402
from sdbench.runner.run import make_row  # noqa: E402
from sdbench.stats import summarize  # noqa: E402
from sdbench.store import read_cache  # noqa: E402
from sdbench.store.files import write_run  # noqa: E402
from sdbench.store.read import read_results  # noqa: E402

# (device name as NVML reports it, memory GiB, made-up speed relative to the first): a mix of
# catalogue GPUs, so the Machines section matches each to its catalogue entry and prediction.
GPUS = (
    ("NVIDIA GeForce RTX 4090", 24, 1.0),
    ("NVIDIA A100-SXM4-80GB", 80, 1.15),
    ("NVIDIA H100 80GB HBM3", 80, 1.9),
    ("NVIDIA L4", 24, 0.3),
    ("NVIDIA GeForce RTX 3090", 24, 0.6),
)
# (model, stage, resolution, batch, made-up median ms on the first GPU, peak GiB): a few cells.
CELLS = (
    ("sd15", "unet", 512, 1, 28.0, 3.1),
    ("sd15", "unet", 512, 4, 95.0, 5.0),
    ("sd15", "vae_decode", 512, 1, 40.0, 3.6),
    ("sd15", "pipeline", 512, 1, 650.0, 3.9),
    ("sdxl", "unet", 1024, 1, 110.0, 9.5),
    ("sdxl", "unet", 1024, 4, 420.0, 26.0),
)
FLOPS = {("sd15", "unet", 512): 1.607e12, ("sdxl", "unet", 1024): 6.8e12}
PRECISION_SPEED = {"fp16": 1.0, "bf16": 0.95, "fp32": 0.4}  # made up: fp32 2.5x slower


def machine_environment(index: int) -> dict:
    """Machine `index`: a host, one of the GPUs, and a software stack (two torch versions)."""
    device_name = GPUS[index % len(GPUS)][0]
    return {
        "device_name": device_name,
        "host": f"node{index:03d}.fleet.example",
        "os": "Linux-6.8.0-x86_64",
        "python": "3.12.3",
        "torch": "2.13.0" if index % 3 else "2.12.1",
        "diffusers": "0.36.0",
        "cuda": "12.8",
        "driver": "580.65",
        "cpu_model": "AMD EPYC 9454",
        "gpu_count": 8,
        "sdbench_version": "0.2.0",
        "git_sha": f"{index % 7:07x}",
    }


def cell_result(cell: Cell, base_ms: float, peak_gib: float, gpu: tuple, rng) -> dict:
    """What the worker returns for one cell: an OOM where the card is too small, else timings."""
    _, memory_gib, speed = gpu
    if peak_gib > memory_gib:
        return {"status": "oom", "error": f"CUDA out of memory. Tried to allocate {peak_gib:.1f} GiB",
                "samples_ms": [], "warnings": []}  # fmt: skip
    median_ms = base_ms / speed * rng.uniform(0.97, 1.03)
    summary = summarize([median_ms * rng.gauss(1.0, 0.01) for _ in range(20)])
    flops = FLOPS.get((cell.model, cell.stage, cell.height))
    seconds = summary.median_ms / 1000
    return {
        "status": "ok",
        "error": None,
        **summary.as_columns(),
        "warmup": 2,
        "it_per_s": 1 / seconds if cell.stage == "unet" else None,
        "images_per_s": cell.batch_size / seconds,
        "flops": flops * (2 * cell.batch_size) if flops else None,
        "peak_mem_reserved_bytes": int(peak_gib * 2**30),
        "energy_j": 300.0 * seconds,
        "avg_power_w": 300.0,
        "warnings": ["high spread"] if rng.random() < 0.05 else [],
    }


def run_rows(
    machine: int, run: int, rng: random.Random, precisions: tuple[str, ...] = ("fp16",)
) -> list[dict]:
    """One run of machine `machine`: every cell of CELLS at each precision, `run` days after the
    first (more precisions: pairs for the precision table, configurations for `best`)."""
    environment = machine_environment(machine)
    gpu = GPUS[machine % len(GPUS)]
    started = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=run, minutes=machine)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-fleet-{machine:03d}{run:03d}"
    rows = []
    for (model, stage, resolution, batch, base_ms, peak_gib), precision in itertools.product(
        CELLS, precisions
    ):
        cell = Cell(model=model, stage=stage, device="cuda:0", height=resolution, width=resolution,
                    batch_size=batch, precision=precision, attention="sdpa", compile="none")  # fmt: skip
        speed = PRECISION_SPEED[precision]
        # fp32 is slower and holds more memory (so more of it runs out on small cards)
        result = cell_result(cell, base_ms / speed, peak_gib * (2 - speed), gpu, rng)
        rows.append(make_row(run_id, "fleet", started.isoformat(), cell, result, environment, {}))
    return rows


def write_fleet(
    folder: Path, machines: int, runs_per_machine: int, precisions: tuple[str, ...] = ("fp16",)
) -> int:
    """Write every run, one subfolder per host; returns how many rows were written."""
    rng, written = random.Random(15), 0
    for machine in range(machines):
        for run in range(runs_per_machine):
            rows = run_rows(machine, run, rng, precisions)
            host = rows[0]["host"].split(".")[0]
            write_run(rows, folder / host / f"{rows[0]['run_id']}.parquet")
            written += len(rows)
    return written


def sdbench(arguments: list[str]) -> int:
    """The command as a user runs it: a fresh process, so its imports are timed too."""
    command = [sys.executable, "-m", "sdbench", *arguments]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    return subprocess.run(command, cwd=REPO, **quiet).returncode


def timed(label: str, action) -> float:
    """Run `action` with its console output swallowed; print and return its seconds."""
    begin = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = action()
    seconds = time.perf_counter() - begin
    if code not in (None, 0):
        raise SystemExit(f"{label} exited {code}")
    print(f"{label}: {seconds:.2f} s")
    return seconds


def profile_report(folder: Path, site: Path) -> None:
    profiler = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()):
        profiler.runcall(sdbench_main, ["report", str(folder), "--out", str(site)])
    stats = io.StringIO()
    pstats.Stats(profiler, stream=stats).sort_stats("cumulative").print_stats(30)
    print(stats.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--runs-per-machine", type=int, default=10)
    parser.add_argument("--target-s", type=float, default=10.0, help="load + report, seconds")
    parser.add_argument(
        "--precisions",
        default="fp16",
        help="comma-separated precisions each cell runs at (fp16, bf16, fp32; default fp16): "
        "fp16,fp32 gives the precision table fp32 pairs to bootstrap",
    )
    parser.add_argument("--keep", type=Path, help="write the fleet here and keep it")
    parser.add_argument("--profile", action="store_true", help="cProfile the report")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="sdbench-fleet-"))
    os.environ["XDG_CACHE_HOME"] = str(folder / "cache")  # the read cache starts cold, and here
    site = Path(tempfile.mkdtemp(prefix="sdbench-fleet-site-"))
    try:
        precisions = tuple(args.precisions.split(","))
        rows = write_fleet(folder / "results", args.machines, args.runs_per_machine, precisions)
        runs = args.machines * args.runs_per_machine
        print(f"wrote {runs} runs from {args.machines} machines ({rows} rows) in {folder}")
        results = folder / "results"
        for file in results.rglob("*.parquet"):  # runs written earlier, as a fleet's are: the
            os.utime(file, (time.time() - 3600,) * 2)  # cache leaves out files seconds old
        read_results([results])  # warm the page cache: the timings are sdbench's, not the disk's
        cache = read_cache.cache_file([results])
        cache.unlink(missing_ok=True)
        load_s = timed("read_results, first read (fills the read cache)", lambda: len(read_results([results])) and 0)  # fmt: skip
        timed("read_results, cached", lambda: len(read_results([results])) and 0)
        cache.unlink(missing_ok=True)
        report = ["report", str(results), "--out", str(site)]
        first_s = timed("sdbench report, first read", lambda: sdbench(report))
        report_s = timed("sdbench report, cached", lambda: sdbench(report))
        timed("sdbench best", lambda: sdbench(["best", str(results), "--format", "json"]))
        timed("sdbench best --by precision",
              lambda: sdbench(["best", str(results), "--by", "precision", "--format", "json"]))  # fmt: skip
        if args.profile:
            profile_report(results, site)
        detail = (
            f"report {report_s:.1f} s with the read cache warm, {first_s:.1f} s on a first read "
            f"(read {load_s:.1f} s); target {args.target_s:g} s"
        )
        return verdict(f"fleet of {runs} runs / {args.machines} machines", report_s <= args.target_s, detail)  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(site, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
