"""Harness overhead: the median sdbench reports for a workload vs a bare timing loop over it.

Both arms run in this process on the very same callable (`build_workload` from the worker's model
cache): sdbench through `run_cell` (warm-up, synchronised timer, telemetry sampler thread, memory
peaks, stopping rule) and the bare arm as `perf_counter(); call(); synchronize()` in a loop.
Rounds alternate which arm goes first, and the headline is the median over rounds of each
round's ratio, so drift in the machine's speed cancels. Target: 1.00 +- 0.02.

    .venv/bin/python benchmarks/overhead.py [--model tiny --resolution 64] [--rounds 20 --calls 10]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from common import machine, median, print_machine, verdict

TOLERANCE = 0.02


def bare_median_ms(call, synchronize, calls: int) -> float:
    call()  # one warm-up, like sdbench's
    synchronize()
    samples = []
    for _ in range(calls):
        synchronize()
        begin = time.perf_counter()
        call()
        synchronize()
        samples.append((time.perf_counter() - begin) * 1000.0)
    return median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--stage", default="unet")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10, help="timed calls per arm per round")
    args = parser.parse_args()
    print_machine(machine(args.device))

    from sdbench.cell import Cell, Measure
    from sdbench.models.workload import build_workload
    from sdbench.runner.measure import new_state, run_cell
    from sdbench.runner.worker import configure_torch

    threads = configure_torch()  # the worker's own thread settings
    cell = Cell(
        args.model, args.stage, args.device, args.resolution, args.resolution,
        args.batch_size, args.precision, "sdpa", "none",
    )  # fmt: skip
    measure = Measure(
        warmup=1, min_repeats=args.calls, max_repeats=args.calls, max_time_s=1e9, target_rel_ci=0.0
    )
    state = new_state(args.device)
    workload = build_workload(cell, state.models)  # the modules sdbench's cells use
    first = run_cell(cell, measure, state)  # builds the fidelity reference and FLOP count once
    assert first["status"] == "ok", first
    ratios, sdbench_ms, bare_ms = [], [], []
    order = random.Random(0)
    for _ in range(args.rounds):
        arms = ["sdbench", "bare"]
        order.shuffle(arms)
        measured = {}
        for arm in arms:
            if arm == "sdbench":
                measured[arm] = run_cell(cell, measure, state)["median_ms"]
            else:
                measured[arm] = bare_median_ms(workload.call, workload.synchronize, args.calls)
        sdbench_ms.append(measured["sdbench"])
        bare_ms.append(measured["bare"])
        ratios.append(measured["sdbench"] / measured["bare"])
    ratio = median(ratios)
    print(
        f"{cell.label()} ({threads} threads), {args.rounds} rounds x {args.calls} calls per arm: "
        f"sdbench median {median(sdbench_ms):.2f} ms, bare loop median {median(bare_ms):.2f} ms; "
        f"median per-round ratio {ratio:.4f} (rounds' ratios from {min(ratios):.3f} to "
        f"{max(ratios):.3f}), ratio of medians {median(sdbench_ms) / median(bare_ms):.4f}"
    )
    return verdict(
        "overhead", abs(ratio - 1.0) <= TOLERANCE, f"ratio {ratio:.4f} (target 1.00 +- {TOLERANCE})"
    )


if __name__ == "__main__":
    sys.exit(main())
