"""Run efficiency: the share of a run's wall time spent inside timed regions, and where the rest goes.

Runs a suite (default: the 40-cell quick-matrix; `--set AXIS=V1,V2` narrows an axis) through the real
manager and workers, then divides the summed `timed_s` of its rows by the run's wall time.
Worker start-up (spawn to hello: importing torch and diffusers) is timed apart. `--breakdown`
repeats the cells in this process with timers around each step of `run_cell` (model build,
FLOP count, warm-up, timed repeats, fidelity reference, memory resets). Aim: >= 60% on the CPU.

    .venv/bin/python benchmarks/run_efficiency.py [--set resolution=256] [--breakdown]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
import tomllib
from collections import defaultdict
from pathlib import Path

from common import machine, median, print_machine, verdict

TARGET = 0.60


def derived_suite(path: str | Path, overrides: list[str], device: str) -> str:
    from sdbench.gpucheck.suite import suite_toml
    from sdbench.suite.packaged import resolve_suite

    data = tomllib.loads(resolve_suite(path).read_text(encoding="utf-8"))
    for override in overrides:
        axis, _, values = override.partition("=")
        data["matrix"][axis] = [int(v) if v.isdigit() else v for v in values.split(",")]
    data["matrix"]["device"] = [device]
    return suite_toml(data)


def worker_startup_s(device: str, count: int) -> list[float]:
    from sdbench.runner.process import WorkerProcess

    seconds = []
    for _ in range(count):
        begin = time.perf_counter()
        worker = WorkerProcess(device)
        seconds.append(time.perf_counter() - begin)
        worker.stop()
    return seconds


def run_once(suite_path: Path, out_dir: Path, device: str) -> tuple[list[dict], float]:
    from rich.console import Console

    from sdbench.runner.run import run_suite

    begin = time.perf_counter()
    outcome = run_suite(str(suite_path), out_dir, device, console=Console(stderr=True))
    return outcome.rows, time.perf_counter() - begin


def breakdown(suite_path: Path, device: str) -> dict[str, float]:
    """Seconds per step of run_cell, summed over the suite's cells, measured in this process."""
    from sdbench.cell import Measure
    from sdbench.runner import measure as measure_module
    from sdbench.runner import memory
    from sdbench.runner.executor import group_cells
    from sdbench.runner.timing import time_calls
    from sdbench.suite import expand, load_suite

    totals: dict[str, float] = defaultdict(float)

    def timed(name, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            begin = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[name] += time.perf_counter() - begin

        return wrapper

    def split_timing(*args, **kwargs):
        timing = time_calls(*args, **kwargs)
        totals["warm-up calls"] += sum(timing.warmup_ms) / 1000.0
        totals["timed repeats"] += timing.timed_s
        return timing

    patches = {
        (measure_module, "build_workload"): "model build + inputs",
        (measure_module, "cell_flops"): "FLOP count",
        (measure_module, "fidelity"): "fidelity reference + compare",
        (memory, "reset_peaks"): "memory resets (gc)",
        (memory, "release"): "memory resets (gc)",
    }
    originals = {key: getattr(*key) for key in patches}
    for (module, name), label in patches.items():
        setattr(module, name, timed(label, originals[(module, name)]))
    originals[(measure_module, "time_calls")] = measure_module.time_calls
    measure_module.time_calls = timed("timing loop total", split_timing)
    try:
        suite = load_suite(suite_path)
        cells = expand(suite, [device])
        for group in group_cells(cells):
            state = measure_module.new_state(device)
            for cell in group:
                timed("run_cell total", measure_module.run_cell)(
                    cell, Measure(**suite.measure.__dict__), state
                )
    finally:
        for (module, name), original in originals.items():
            setattr(module, name, original)
    return dict(totals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--suite", default="quick-matrix", help="a packaged suite name or a .toml path"
    )
    parser.add_argument("--set", action="append", default=[], metavar="AXIS=V1,V2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--startups", type=int, default=3, help="worker start-ups to time")
    parser.add_argument("--breakdown", action="store_true", help="also time each step in-process")
    args = parser.parse_args()
    print_machine(machine(args.device))
    startups = worker_startup_s(args.device, args.startups)
    with tempfile.TemporaryDirectory() as scratch:
        suite_path = Path(scratch) / "suite.toml"
        suite_path.write_text(derived_suite(args.suite, args.set, args.device))
        rows, wall_s = run_once(suite_path, Path(scratch) / "results", args.device)
        steps = breakdown(suite_path, args.device) if args.breakdown else {}
    report(args, rows, wall_s, startups, steps)
    efficiency = sum(r.get("timed_s") or 0.0 for r in rows) / wall_s
    return verdict(
        "run_efficiency", efficiency >= TARGET, f"{efficiency:.1%} (aim >= {TARGET:.0%})"
    )


def report(args, rows: list[dict], wall_s: float, startups: list[float], steps: dict) -> None:
    timed_s = sum(r.get("timed_s") or 0.0 for r in rows)
    cells_s = sum(r.get("cell_wall_s") or 0.0 for r in rows)
    groups = len({(r["device"], r["model"], r["precision"]) for r in rows if r.get("cell_wall_s")})
    startup_s = median(startups)
    statuses = defaultdict(int)
    for row in rows:
        statuses[row["status"]] += 1
    print(
        f"suite {args.suite.name} {' '.join(args.set)} on {args.device}: {len(rows)} cells "
        f"({dict(statuses)}), {groups} worker groups, wall {wall_s:.1f} s"
    )
    print(
        f"  inside timed regions {timed_s:.1f} s ({timed_s / wall_s:.1%}); inside cells "
        f"{cells_s:.1f} s ({cells_s / wall_s:.1%}); worker start-up median {startup_s:.2f} s "
        f"[{' '.join(f'{s:.2f}' for s in startups)}] x {groups} = {startup_s * groups:.1f} s "
        f"({startup_s * groups / wall_s:.1%}); rest (manager, device detection, Parquet) "
        f"{wall_s - cells_s - startup_s * groups:.1f} s"
    )
    if steps:
        total = steps.get("run_cell total", 0.0)
        print(f"  in-process breakdown of {total:.1f} s of run_cell:")
        for name, seconds in sorted(steps.items(), key=lambda item: -item[1]):
            if name != "run_cell total":
                print(f"    {name:32s} {seconds:8.1f} s  {seconds / total:6.1%}")


if __name__ == "__main__":
    sys.exit(main())
