"""Step caching pays: a cached pipeline call takes less time per image than the uncached one.

Both arms are sdbench cells of the same model, measured by `run_cell` in this process on the
same modules (the worker's model cache), alternating which goes first each round; the headline
is the median over rounds of each round's uncached / cached ratio, so drift cancels. Each cached
row's fidelity (against the uncached pipeline, same seed) must pass its tolerance too.
Target: speed-up > 1 with fidelity_ok. Default: the tiny UNet's pipeline with deepcache:2 on
the CPU; on a GPU try `--model sd15 --resolution 512 --precision fp16 --cache deepcache:3`, or
`--model flux-dev --resolution 1024 --precision bf16 --cache fbcache:0.12 --steps 28`.

    .venv/bin/python benchmarks/step_cache.py [--model tiny --cache deepcache:2] [--rounds 10]
"""

from __future__ import annotations

import argparse
import random
import sys

from common import machine, median, print_machine, verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--cache", default="deepcache:2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=5, help="timed calls per arm per round")
    args = parser.parse_args()
    print_machine(machine(args.device))

    from sdbench.cell import Cell, Measure
    from sdbench.models.registry import get_model
    from sdbench.runner.measure import new_state, run_cell
    from sdbench.runner.worker import configure_torch

    threads = configure_torch()
    cfg = get_model(args.model).default_cfg
    cells = {
        cache: Cell(args.model, "pipeline", args.device, args.resolution, args.resolution, 1,
                    args.precision, "sdpa", "none", cfg=cfg, steps=args.steps, cache=cache)
        for cache in ("none", args.cache)
    }  # fmt: skip
    measure = Measure(
        warmup=1, min_repeats=args.calls, max_repeats=args.calls, max_time_s=1e9, target_rel_ci=0.0
    )
    state = new_state(args.device)
    first = {cache: run_cell(cell, measure, state) for cache, cell in cells.items()}
    cached_row = first[args.cache]
    assert cached_row["status"] == "ok", cached_row
    ratios, order = [], random.Random(0)
    for _ in range(args.rounds):
        arms = list(cells)
        order.shuffle(arms)
        measured = {cache: run_cell(cells[cache], measure, state)["median_ms"] for cache in arms}
        ratios.append(measured["none"] / measured[args.cache])
    speedup = median(ratios)
    print(
        f"{cells[args.cache].label()} ({threads} threads), {args.rounds} rounds x {args.calls} "
        f"calls per arm: uncached / cached per image, median of rounds {speedup:.3f} (rounds from "
        f"{min(ratios):.3f} to {max(ratios):.3f}); fidelity ref_rel_err "
        f"{cached_row['ref_rel_err']:.4f} (tolerance {cached_row['fidelity_tolerance']})"
    )
    passed = speedup > 1.0 and bool(cached_row["fidelity_ok"])
    return verdict(
        "step_cache",
        passed,
        f"speed-up {speedup:.3f} (target > 1) with fidelity_ok={cached_row['fidelity_ok']}",
    )


if __name__ == "__main__":
    sys.exit(main())
