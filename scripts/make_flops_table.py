#!/usr/bin/env python
"""Regenerate sdbench/data/flops.csv: FLOPs and operator traffic per model, stage and resolution.

Usage: .venv/bin/python scripts/make_flops_table.py [--out sdbench/data/flops.csv]
Counts on the meta device (no weights, a minute or two on a laptop). Batch 1 and 2 are counted so
readers can separate per-call traffic (weights) from per-image traffic: both grow linearly in batch.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdbench.models.cost_count import count_cost  # noqa: E402

# Models sharing an architecture with one here (lcm-sd15, sdxl-turbo, lcm-sdxl) are read
# through it (registry.same_architecture); the rest are counted live when asked.
RESOLUTIONS = {
    "sd15": [256, 384, 512, 640, 768, 1024],
    "sd21": [512, 768, 1024],
    "sdxl": [512, 768, 1024, 1280, 1536],
    "tiny": [64, 128],
    "bk-sdm-base": [256, 384, 512, 768],
    "bk-sdm-small": [256, 384, 512, 768],
    "bk-sdm-tiny": [256, 384, 512, 768],
    "ssd-1b": [512, 768, 1024, 1280],
    "vega": [512, 768, 1024, 1280],
    "sd35-medium": [512, 768, 1024, 1280],
    "sd35-medium-no-t5": [512, 768, 1024, 1280],
    "sd35-large": [512, 768, 1024, 1280],
}
STAGES = ("text_encoder", "unet", "vae_decode")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "sdbench/data/flops.csv")
    )
    args = parser.parse_args()
    header = [
        "model",
        "stage",
        "height",
        "width",
        "batch_size",
        "cfg",
        "attention",
        "flops",
        "matmul_elements",
        "other_elements",
    ]
    rows = []
    for model, resolutions in RESOLUTIONS.items():
        for stage in STAGES:
            for resolution in resolutions if stage != "text_encoder" else resolutions[:1]:
                for batch_size in (1, 2):
                    for attention in ("sdpa", "classic"):
                        cost = count_cost(
                            model, stage, resolution, resolution, batch_size, attention
                        )
                        rows.append(
                            [
                                model,
                                stage,
                                resolution,
                                resolution,
                                batch_size,
                                True,
                                attention,
                                cost["flops"],
                                cost["matmul_elements"],
                                cost["other_elements"],
                            ]
                        )
                        print(*rows[-1], file=sys.stderr)
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
