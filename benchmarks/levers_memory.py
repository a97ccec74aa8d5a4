"""Peak host memory of the VAE memory modes: tiling and slicing against a plain decode, batch 2.

Each setting is one cell measured by sdbench's own worker code (`run_cell`, peak RSS reset per
cell), in a fresh process per setting so no allocator state carries over. Defaults: the tiny
model's VAE at 1024 px (two tiles a side; the SD1.5 VAE tiles only above 512 px, so
`--model sd15 --resolution 768` is the full-size check). Target (issue 20): vae_tiling's peak
below the plain decode's, within its fidelity tolerance; vae_slicing's ratio is reported (on a
CPU, glibc keeping freed blocks can leave its peak RSS at or above the plain one).

    .venv/bin/python benchmarks/levers_memory.py [--model tiny] [--resolution 1024] [--batch 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import child_env, machine, print_machine, verdict

SETTINGS = ("none", "vae_tiling", "vae_slicing")


def child(model: str, resolution: int, batch: int, memory: str) -> dict:
    from sdbench.cell import Cell, Measure
    from sdbench.runner.measure import new_state, run_cell
    from sdbench.runner.worker import configure_torch

    configure_torch()
    cell = Cell(model, "vae_decode", "cpu", resolution, resolution, batch, "fp32", "sdpa",
                "none", memory=memory)  # fmt: skip
    row = run_cell(cell, Measure(warmup=0, min_repeats=1, max_repeats=1, max_time_s=0.0),
                   new_state("cpu"))  # fmt: skip
    keys = ("status", "error", "peak_rss_bytes", "ref_rel_err", "fidelity_ok", "warnings")
    return {key: row.get(key) for key in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.model, args.resolution, args.batch, args.child)))
        return 0
    print_machine(machine())
    rows = {}
    for memory in SETTINGS:
        command = [sys.executable, __file__, "--model", args.model, "--resolution",
                   str(args.resolution), "--batch", str(args.batch), "--child", memory]  # fmt: skip
        result = subprocess.run(
            command, capture_output=True, text=True, env=child_env(), check=True
        )
        rows[memory] = json.loads(result.stdout.strip().splitlines()[-1])
        row = rows[memory]
        print(f"{memory:12s} {row['status']:4s} peak RSS {row['peak_rss_bytes'] / 2**20:8.0f} MiB, "
              f"error {row['ref_rel_err']:.2g}, fidelity {'pass' if row['fidelity_ok'] else 'FAIL'}"
              f"{' | ' + '; '.join(row['warnings'][-1:]) if row['warnings'] else ''}")  # fmt: skip
    plain = rows["none"]["peak_rss_bytes"]
    tiling = rows["vae_tiling"]
    lower = tiling["peak_rss_bytes"] < plain and bool(tiling["fidelity_ok"])
    detail = ", ".join(f"{m} {rows[m]['peak_rss_bytes'] / plain:.2f}x" for m in SETTINGS[1:])
    return verdict("vae_tiling lowers the peak", lower, f"{detail} of the plain peak")


if __name__ == "__main__":
    raise SystemExit(main())
