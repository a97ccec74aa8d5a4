#!/usr/bin/env python
"""Measure the activation memory of real-size SD stages on this CPU, for the memory model's fit.

Usage: .venv/bin/python scripts/measure_activation_memory.py [--out sdbench/data/activation_memory.csv]
Each configuration runs in a fresh subprocess: build the component (fp32 weights set to zero, which
touches every page as real weights would, and is quick), note the
resident set size, run one timed call of the stage under no_grad, and take the process's peak RSS
(getrusage ru_maxrss) minus the RSS before the call. That difference is the stage's activation
peak on CPU in the row's precision. Takes 10-30 minutes on 2 cores and about 10 GB of RAM (SDXL).
Regenerate everything, or add one model's rows: `--only sdxl/unet --append`.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdbench.store.schema import SHAPE_COLUMNS  # noqa: E402

CONFIGS = [  # model, stage, resolution, batch_size, attention, precision
    *[("sd15", "unet", r, 1, "sdpa", "fp32") for r in (256, 384, 512)],
    *[("sd15", "unet", r, 1, "classic", "fp32") for r in (256, 512)],
    ("sd15", "unet", 384, 2, "sdpa", "fp32"),
    *[("sd15", "vae_decode", r, 1, "sdpa", "fp32") for r in (256, 512)],
    ("sd15", "text_encoder", 512, 1, "sdpa", "fp32"),
    ("sdxl", "text_encoder", 1024, 1, "sdpa", "fp32"),
    # bf16: the fp32 SDXL UNet (10 GB of weights) plus activations did not fit beside other work in 24 GiB
    *[("sdxl", "unet", r, 1, "sdpa", "bf16") for r in (512, 768)],
]

CHILD = """
import json, resource, sys, psutil, torch
sys.path.insert(0, {root!r})
from sdbench.cell import Cell
from sdbench.models import build
from sdbench.models.workload import build_workload
torch.set_num_threads(2)

def zero_weights(spec, name, device, precision, *args, **kwargs):
    module = build.construct_on_meta(spec.components[name]).to(build.DTYPES[precision]).to_empty(device=device)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.zero_()
        build._fill_buffers_(module)
    return module

import sdbench.models.workload as workload_module
workload_module.materialise = zero_weights
model, stage, resolution, batch, attention, precision = json.loads(sys.argv[1])
cell = Cell(model=model, stage=stage, device="cpu", height=resolution, width=resolution, batch_size=batch,
            precision=precision, attention="classic" if attention == "classic" else "flash", compile="none")
workload = build_workload(cell)
before = psutil.Process().memory_info().rss
workload.call()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"rss_before_bytes": before, "peak_rss_bytes": peak}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "sdbench/data/activation_memory.csv"))
    parser.add_argument(
        "--only", help="only this model or MODEL/STAGE (with --append: add its rows to --out)"
    )
    parser.add_argument(
        "--append", action="store_true", help="append rows to --out instead of rewriting it"
    )
    args = parser.parse_args()
    header = [
        *SHAPE_COLUMNS,
        "cfg",
        "attention",
        "precision",
        "rss_before_bytes",
        "peak_rss_bytes",
        "activation_bytes",
        "device",
        "torch",
    ]
    rows = []
    for model, stage, resolution, batch, attention, precision in CONFIGS:
        if args.only and args.only not in (model, f"{model}/{stage}"):
            continue
        script = CHILD.format(root=str(ROOT))
        config = [model, stage, resolution, batch, attention, precision]
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(config)], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(
                f"{config} failed (exit {done.returncode}):\n{done.stderr[-2000:]}", file=sys.stderr
            )
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        activation = result["peak_rss_bytes"] - result["rss_before_bytes"]
        rows.append(
            [
                model,
                stage,
                resolution,
                resolution,
                batch,
                True,
                attention,
                precision,
                result["rss_before_bytes"],
                result["peak_rss_bytes"],
                activation,
                f"cpu ({platform.processor() or platform.machine()})",
                _torch_version(),
            ]
        )
        print(*rows[-1], file=sys.stderr, flush=True)
    with open(args.out, "a" if args.append else "w", newline="") as handle:
        writer = csv.writer(handle)
        if not args.append:
            writer.writerow(header)
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def _torch_version() -> str:
    import torch

    return torch.__version__


if __name__ == "__main__":
    sys.exit(main())
