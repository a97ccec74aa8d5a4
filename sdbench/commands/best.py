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
    ("speedup (95% CI)", "speedup"),
    ("fidelity", "fidelity"),
    ("note", "reason"),
)
PRECISION_COLUMNS = (
    ("device", "device_name"),
    ("model", "model"),
    ("stage", "stage"),
    ("precision", "precision"),
    ("vs", "baseline"),
    ("pairs", "pairs"),
    ("speedup (95% CI)", "speedup"),
    ("fidelity", "fidelity_verdict"),
    ("worth it?", "verdict"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "best",
        help="fastest configuration per workload whose fidelity passes",
        description="Per device, model, stage, resolution and batch: the fastest configuration that "
        "finished ok with passing fidelity (or fidelity not measured), and its speed-up over the "
        "plain default (sdpa, no compile, fp16 on GPU or bf16 when fp16 did not run, fp32 on CPU), "
        "with its 95%% CI. Cells flagged as outliers (too noisy, or slower than a neighbour doing "
        "more work) are left out of every speed-up claim. --by precision answers per stage "
        "whether bf16/fp16 is worth it against fp32.",
    )
    parser.add_argument("results", nargs="+", help="result files (.parquet) or folders of them")
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    parser.add_argument(
        "--by",
        choices=("setting", "precision"),
        default="setting",
        help="setting: the fastest passing setting per workload (default); precision: per stage, "
        "is bf16/fp16 worth it against fp32 (speed-up, 95%% CI, fidelity verdict)",
    )
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

    frame = read_results(args.results)
    if args.by == "precision":
        from sdbench.analysis.precision_gains import precision_gains

        table, columns = precision_gains(frame), PRECISION_COLUMNS
    else:
        table = fastest_settings(frame, require_fidelity=args.require_fidelity)
        columns = COLUMNS
    if args.format == "json":
        print_json(table.astype(object).where(table.notna(), None).to_dict(orient="records"))
        return 0
    rows = [[_value(row, name) for _, name in columns] for _, row in table.iterrows()]
    if args.format == "markdown":
        print(_markdown([label for label, _ in columns], rows))
    else:
        print(format_table([label for label, _ in columns], rows))
    return 0


def _value(row, name: str):
    import pandas as pd

    if name == "resolution":
        if pd.isna(row["width"]) or pd.isna(row["height"]):
            return None
        return f"{int(row['width'])}x{int(row['height'])}"  # float when read beside null rows
    if name == "fidelity":
        if pd.isna(row["median_ms"]):
            return None
        return "pass" if row["fidelity_checked"] else "not measured"
    if name == "fidelity_verdict":
        if pd.isna(row["fidelity"]):
            return None
        error = row["max_ref_rel_err"]
        return row["fidelity"] + ("" if pd.isna(error) else f" (err {error:.1e})")
    value = row[name]
    if name == "speedup" and pd.notna(value):
        return _speedup_text(value, row["speedup_ci95_low"], row["speedup_ci95_high"])
    return None if pd.isna(value) else value


def _speedup_text(speedup: float, low: float | None, high: float | None) -> str:
    import pandas as pd

    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return f"{speedup:.2f}x"
    return f"{speedup:.2f}x ({low:.2f}-{high:.2f})"


def _markdown(headers: list[str], rows: list[list]) -> str:
    from sdbench.commands.output import format_cell

    def line(values) -> str:
        return "| " + " | ".join(format_cell(v).replace("|", "\\|") for v in values) + " |"

    return "\n".join([line(headers), "|" + "---|" * len(headers), *(line(r) for r in rows)])
