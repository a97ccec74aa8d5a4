"""`sdbench validate-model`: leave-one-GPU-out error of the performance model on the reference data,
and with `--results` its error on your own measured cells, with and without per-GPU correction."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  sdbench validate-model         leave-one-GPU-out error per model family
  sdbench validate-model --rows  every held-out prediction too
  sdbench validate-model --results results/
                                 also the error on your measured cells, each left out in turn,
                                 with and without the per-GPU correction fitted on the others
"""

CELL_HEADERS = ["gpu", "model", "stage", "size", "batch", "ms", "model ms", "corrected ms",
                "|err| %", "corrected %"]  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate-model",
        help="leave-one-GPU-out error of the performance model",
        description=__doc__,
    )
    parser.add_argument("--rows", action="store_true", help="also print every held-out prediction")
    parser.add_argument(
        "--results",
        nargs="+",
        metavar="PATH",
        default=None,
        help="result files or folders: also the error on their cells measured on catalogue GPUs, "
        "with and without the per-GPU correction (not read unless given)",
    )
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
    from sdbench.commands.output import print_json, print_rows

    # The user's cells first: a bad folder fails at once, not after the cross-validation.
    loo = measured_leave_one_out(args.results) if args.results else None
    cv = cross_validate()
    families = summarise(cv)
    if args.save:
        pd.DataFrame([asdict(f) for f in families]).to_csv(
            args.save, index=False, float_format="%.4g"
        )
    if loo is None and args.format in ("json", "csv"):
        print_rows(args.format, [], [], [asdict(f) for f in families])
        return 0
    if loo is not None and args.format == "json":
        print_json(
            {
                "cross_validation": [asdict(f) for f in families],
                "measured": [asdict(e) for e in measured_errors(loo)],
                "cells": loo.astype(object).where(loo.notna(), None).to_dict("records"),
            }
        )
        return 0
    if loo is not None and args.format == "csv":
        print_rows("csv", [], [], [asdict(e) for e in measured_errors(loo)])
        return 0
    print_cross_validation(args, cv, families)
    if loo is not None:
        print()
        print_measured(args, loo)
    return 0


def measured_leave_one_out(paths: list[str]):
    """The leave-one-out rows of the measured cells in `paths`; BadInput when there are none."""
    from sdbench.analysis.correction import leave_one_out
    from sdbench.errors import BadInput
    from sdbench.store import read_results

    loo = leave_one_out(read_results(paths))
    if loo.empty:
        raise BadInput(
            f"No cell in {', '.join(paths)} was measured on a catalogue GPU (ok unet or pipeline "
            "rows without levers; CPU rows do not count), so there is nothing to check the model "
            "against. Give results from a GPU run, or drop --results for the reference "
            "cross-validation alone."
        )
    return loo


def measured_errors(loo):
    from sdbench.analysis.correction import summarise_leave_one_out

    return summarise_leave_one_out(loo)


def print_cross_validation(args: argparse.Namespace, cv, families) -> None:
    from sdbench.commands.output import format_table, print_note, print_rows

    if args.rows:
        columns = ["gpu", "model", "batch_size", "precision", "attention", "compile", "metric",
                   "measured", "predicted", "abs_pct_error"]  # fmt: skip
        print(format_table(columns, cv[columns].sort_values(["model", "gpu"]).values.tolist()))
        print()
    headers = ["model family", "rows", "GPUs", "median |err| %", "p90 |err| %", "Spearman"]
    rows = [
        [f.model_family, f.rows, f.gpus, f.median_abs_pct_error, f.p90_abs_pct_error, f.spearman]
        for f in families
    ]
    if args.format == "markdown" and args.results:
        print("Leave-one-GPU-out cross-validation on the published results\n")
    print_rows(args.format, headers, rows)
    if args.format != "table":
        return
    print_note(
        "\nEach GPU's rows were predicted by a model calibrated without that GPU. Spearman ranks seconds "
        "per image per step. Target: median |err| <= 20% and Spearman >= 0.85 for sd15 and sdxl."
    )


def print_measured(args: argparse.Namespace, loo) -> None:
    from sdbench.commands.output import print_note, print_rows

    if args.format == "markdown":
        print("Your measured cells, each predicted with it left out\n")
    if args.rows:
        print_rows(args.format, CELL_HEADERS, [_cell_row(r) for r in loo.to_dict("records")])
        print()
    headers = ["gpu", "cells", "median |err| % model", "with correction", "measured/model"]
    rows = [
        [e.gpu, e.cells, e.median_abs_pct_error, e.corrected_median_abs_pct_error,
         e.measured_over_predicted]
        for e in measured_errors(loo)
    ]  # fmt: skip
    print_rows(args.format, headers, rows)
    if args.format != "table":
        return
    print_note(
        "\nEach measured cell (a unet step or a pipeline call on a catalogue GPU) was predicted as "
        "predict would had it not been measured: the model alone, and times the correction fitted "
        "on the same GPU's other cells, shrunk towards 1 when they are few. measured/model > 1: the "
        "GPU runs slower than the model says. --rows times are of one UNet step or one call."
    )


def _cell_row(cell: dict) -> list:
    """One held-out cell for --rows: seconds of a step or call shown in milliseconds."""
    return [
        cell["gpu"], cell["model"], cell["stage"], f"{cell['width']}x{cell['height']}",
        cell["batch_size"], 1000 * cell["measured_s"], 1000 * cell["predicted_s"],
        1000 * cell["corrected_s"], cell["abs_pct_error"], cell["corrected_abs_pct_error"],
    ]  # fmt: skip
