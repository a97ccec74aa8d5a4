"""`sdbench validate-model`: leave-one-GPU-out error of the performance model on the reference data."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  sdbench validate-model         leave-one-GPU-out error per model family
  sdbench validate-model --rows  every held-out prediction too
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate-model",
        help="leave-one-GPU-out error of the performance model",
        description=__doc__,
    )
    parser.add_argument("--rows", action="store_true", help="also print every held-out prediction")
    from sdbench.commands.output import add_format_option

    add_format_option(parser)
    parser.add_argument(
        "--save",
        metavar="CSV",
        help="write the per-family errors here (sdbench/data/model_error.csv is the shipped copy)",
    )
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    import pandas as pd

    from sdbench.analysis.validate import cross_validate, summarise
    from sdbench.commands.output import format_table, print_note, print_rows

    cv = cross_validate()
    families = summarise(cv)
    if args.save:
        pd.DataFrame([asdict(f) for f in families]).to_csv(
            args.save, index=False, float_format="%.4g"
        )
    if args.format in ("json", "csv"):
        print_rows(args.format, [], [], [asdict(f) for f in families])
        return 0
    if args.rows:
        columns = [
            "gpu",
            "model",
            "batch_size",
            "precision",
            "attention",
            "compile",
            "metric",
            "measured",
            "predicted",
            "abs_pct_error",
        ]
        print(format_table(columns, cv[columns].sort_values(["model", "gpu"]).values.tolist()))
        print()
    headers = ["model family", "rows", "GPUs", "median |err| %", "p90 |err| %", "Spearman"]
    rows = [
        [f.model_family, f.rows, f.gpus, f.median_abs_pct_error, f.p90_abs_pct_error, f.spearman]
        for f in families
    ]
    print_rows(args.format, headers, rows)
    if args.format != "table":
        return 0
    print_note(
        "\nEach GPU's rows were predicted by a model calibrated without that GPU. Spearman ranks seconds "
        "per image per step. Target: median |err| <= 20% and Spearman >= 0.85 for sd15 and sdxl."
    )
    return 0
