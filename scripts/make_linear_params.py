#!/usr/bin/env python
"""Regenerate sdbench/data/linear_params.csv: per model component, the parameters in linear layers.

Usage: .venv/bin/python scripts/make_linear_params.py [--out sdbench/data/linear_params.csv]
The `quant` axis quantises only linear layers (runner/quantise.py); convolutions, norms and
embeddings keep the model's dtype, so the memory model needs each component's linear share.
Counted on the meta device from the registry's configs (no weights, seconds).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch import nn  # noqa: E402

from sdbench.models.build import construct_on_meta  # noqa: E402
from sdbench.models.registry import MODELS, same_architecture  # noqa: E402

QUANTISED = ("unet", "transformer", "text_encoder", "text_encoder_2", "text_encoder_3")


def rows() -> list[dict]:
    counted = []
    for name, spec in MODELS.items():
        if same_architecture(name) != name:
            continue  # read through the model it shares an architecture with
        for component_name, component in spec.components.items():
            if component_name not in QUANTISED:
                continue
            module = construct_on_meta(component)
            state = module.state_dict(keep_vars=True)
            total = sum(t.numel() for t in {id(t): t for t in state.values()}.values())
            linear = sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))
            counted.append(
                {
                    "model": name,
                    "component": component_name,
                    "params": total,
                    "linear_params": linear,
                }
            )
    return counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sdbench/data/linear_params.csv")
    args = parser.parse_args()
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["model", "component", "params", "linear_params"])
        writer.writeheader()
        writer.writerows(rows())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
