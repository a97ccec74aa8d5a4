#!/usr/bin/env python
"""Regenerate sdbench/data/flops.csv: FLOPs and operator traffic per model, stage and resolution.

Usage: .venv/bin/python scripts/make_flops_table.py [--out sdbench/data/flops.csv] [--models M ...]
Counts on the meta device (no weights, a few minutes on a laptop); `--models` recounts only those
models and keeps the other rows of the existing table. Batch 1 and 2 are counted so
readers can separate per-call traffic (weights) from per-image traffic: both grow linearly in batch.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdbench.models.cost_count import count_cost  # noqa: E402
from sdbench.store.schema import SHAPE_COLUMNS  # noqa: E402

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
    "flux-schnell": [512, 768, 1024, 1280],
    "flux-dev": [512, 768, 1024, 1280],
}
STAGES = ("text_encoder", "unet", "vae_decode")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "sdbench/data/flops.csv")
    )
    parser.add_argument(
        "--models", nargs="+", choices=sorted(RESOLUTIONS), help="recount only these models"
    )
    args = parser.parse_args()
    header = [
        *SHAPE_COLUMNS,
        "cfg",
        "attention",
        "flops",
        "matmul_elements",
        "other_elements",
    ]
    rows = _kept_rows(args.out, args.models) if args.models else []
    for model, resolutions in RESOLUTIONS.items():
        if args.models and model not in args.models:
            continue
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
    order = {model: index for index, model in enumerate(RESOLUTIONS)}
    rows.sort(key=lambda row: order.get(row[0], len(order)))  # stable: each model's rows in order
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def _kept_rows(path: str, recounted: list[str]) -> list[list]:
    """The existing table's rows of every model not being recounted, as written."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [row for row in reader if row[0] not in recounted]


if __name__ == "__main__":
    sys.exit(main())
