"""`sdbench best RESULTS...`: the fastest configuration per workload whose fidelity passes."""

from __future__ import annotations

import argparse

COLUMNS = (
    ("device", "device_name"),
    ("model", "model"),
    ("stage", "stage"),
    ("res", "resolution"),
    ("batch", "batch_size"),
    ("precision", "precision"),
    ("attention", "attention"),
    ("compile", "compile"),
    ("median_ms", "median_ms"),
    ("default", "default_precision"),
    ("default_ms", "default_median_ms"),
    ("speedup", "speedup"),
    ("fidelity", "fidelity"),
    ("note", "reason"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "best",
        help="fastest configuration per workload whose fidelity passes",
        description="Per device, model, stage, resolution and batch: the fastest configuration that "
        "finished ok with passing fidelity (or fidelity not measured), and its speed-up over the "
        "plain default (sdpa, no compile, fp16 on GPU or bf16 when fp16 did not run, fp32 on CPU).",
    )
    parser.add_argument("results", nargs="+", help="result files (.parquet) or folders of them")
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    parser.add_argument(
        "--require-fidelity",
        action="store_true",
        help="accept only configurations whose fidelity was measured and passed",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from sdbench.analysis.best import fastest_settings
    from sdbench.commands.output import format_table, print_json
    from sdbench.store import read_results

    best = fastest_settings(read_results(args.results), require_fidelity=args.require_fidelity)
    if args.format == "json":
        print_json(best.astype(object).where(best.notna(), None).to_dict(orient="records"))
        return 0
    rows = [[_value(row, name) for _, name in COLUMNS] for _, row in best.iterrows()]
    if args.format == "markdown":
        print(_markdown([label for label, _ in COLUMNS], rows))
    else:
        print(format_table([label for label, _ in COLUMNS], rows))
    return 0


def _value(row, name: str):
    import pandas as pd

    if name == "resolution":
        return f"{row['width']}x{row['height']}"
    if name == "fidelity":
        if pd.isna(row["median_ms"]):
            return None
        return "pass" if row["fidelity_checked"] else "not measured"
    value = row[name]
    if name == "speedup" and pd.notna(value):
        return f"{value:.2f}x"
    return None if pd.isna(value) else value


def _markdown(headers: list[str], rows: list[list]) -> str:
    from sdbench.commands.output import _cell

    def line(values) -> str:
        return "| " + " | ".join(_cell(v).replace("|", "\\|") for v in values) + " |"

    return "\n".join([line(headers), "|" + "---|" * len(headers), *(line(r) for r in rows)])
