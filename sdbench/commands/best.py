"""`sdbench best RESULTS...`: the fastest configuration per workload whose fidelity passes."""

from __future__ import annotations

import argparse

from sdbench.commands.output import add_format_option, add_results_option

COLUMNS = (
    ("device", "device_name"),
    ("model", "model"),
    ("stage", "stage"),
    ("workload", "workload"),
    ("fastest passing", "setting"),
    ("median", "median_ms"),
    ("speed-up (95% CI)", "speedup"),
    ("fidelity", "fidelity"),
    ("note", "reason"),
)
LEVER_COLUMNS = (
    ("device", "device"),
    ("model", "model"),
    ("stage", "stage"),
    ("workload", "workload"),
    ("steps", "steps"),
    ("fastest lever", "speed_setting"),
    ("x speed", "speed_speedup"),
    ("x mem", "speed_memory_ratio"),
    ("err", "speed_ref_rel_err"),
    ("leanest lever", "memory_setting"),
    ("x speed", "memory_speedup"),
    ("x mem", "memory_memory_ratio"),
    ("err", "memory_ref_rel_err"),
)
PRECISION_COLUMNS = (
    ("device", "device_name"),
    ("model", "model"),
    ("stage", "stage"),
    ("precision", "precision"),
    ("vs", "baseline"),
    ("pairs", "pairs"),
    ("speed-up (95% CI)", "speedup"),
    ("fidelity", "fidelity_verdict"),
    ("worth it?", "verdict"),
)
# What tells workloads apart beyond size and batch, when it varies: a lever table's workload is
# also its base precision (its steps have a column); a setting's precision is what it chose.
WORKLOAD_LABEL_PARTS = {"setting": ("steps", "cfg"), "lever": ("precision", "cfg")}

EXAMPLES = """examples:
  sdbench best  the fastest passing setting per workload in ./results
  sdbench best --by precision --results results/RUN.parquet
                is bf16/fp16 worth it, per stage
  sdbench best --by lever
                which memory mode, quant scheme or step cache wins on speed and on memory
"""


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
    add_results_option(parser, positional=True)
    add_format_option(parser)
    parser.add_argument(
        "--by",
        choices=("setting", "precision", "lever"),
        default="setting",
        help="setting: the fastest passing setting per workload (default); precision: per stage, "
        "is bf16/fp16 worth it against fp32 (speed-up, 95%% CI, fidelity verdict); lever: per "
        "model and stage, the memory/quant/cache setting that wins on speed and the one that wins "
        "on memory among those passing fidelity (x speed, x memory against every lever off, err)",
    )
    parser.add_argument(
        "--require-fidelity",
        action="store_true",
        help="accept only configurations whose fidelity was measured and passed",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from sdbench.analysis.best import fastest_settings
    from sdbench.commands.output import (
        footnotes,
        format_grouped,
        print_note,
        print_rows,
        results_paths,
    )
    from sdbench.machine import machines_share_a_device
    from sdbench.store import read_results

    frame = read_results(results_paths(args))
    if args.by == "precision":
        from sdbench.analysis.precision_gains import precision_gains

        table, columns = precision_gains(frame), PRECISION_COLUMNS
    elif args.by == "lever":
        from sdbench.analysis.levers import lever_summary

        table, columns = lever_summary(frame), LEVER_COLUMNS
    else:
        table = fastest_settings(frame, require_fidelity=args.require_fidelity)
        columns = COLUMNS
    if machines_share_a_device(table):  # each workload answered once per machine: say which
        columns = (("machine", "machine"), *columns)
    records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    headers = [label for label, _ in columns]
    if args.format in ("json", "csv"):  # the records, by their Parquet names: no text to format
        print_rows(args.format, headers, [], records)
        return 0
    varying = _varying_workload_parts(table, args.by)
    rows = [[_value(row, name, varying) for _, name in columns] for _, row in table.iterrows()]
    if args.format != "table":
        print_rows(args.format, headers, rows, records)
        return 0
    rows, notes = footnotes(rows, len(headers) - 1)
    print(format_grouped(headers, rows, 0))
    for note in notes:
        print_note(note)
    if args.by == "setting":
        print_note(
            "Speed-up against the default setting (sdpa, no compile, fp16 on a GPU, fp32 on a "
            "CPU); outlier cells are left out of every speed-up."
        )
    return 0


def _varying_workload_parts(table, by: str) -> tuple[str, ...]:
    """The parts of a workload without a column of their own that take more than one value in
    `table`: the workload label names them, so no two rows read the same, and only them, so the
    common table stays short."""
    parts = WORKLOAD_LABEL_PARTS.get(by, ())
    return tuple(p for p in parts if p in table and table[p].nunique(dropna=False) > 1)


def _workload_label(row, varying: tuple[str, ...]) -> str | None:
    """ "512x512 b2", plus what tells it apart from its neighbours: "512x512 b2 bf16, 50 steps"."""
    import pandas as pd

    if pd.isna(row["width"]) or pd.isna(row["height"]):
        return None
    # float when read beside null rows
    label = f"{int(row['width'])}x{int(row['height'])} b{int(row['batch_size'])}"
    if "precision" in varying and pd.notna(row["precision"]):
        label += f" {row['precision']}"
    denoising = []
    if "steps" in varying and pd.notna(row["steps"]):
        denoising.append(f"{int(row['steps'])} step{'' if int(row['steps']) == 1 else 's'}")
    if "cfg" in varying and pd.notna(row["cfg"]):
        denoising.append("with cfg" if row["cfg"] else "without cfg")
    return ", ".join([label, " ".join(denoising)]) if denoising else label


def _value(row, name: str, varying: tuple[str, ...] = ()):
    import pandas as pd

    from sdbench.levers import describe as describe_levers
    from sdbench.units import time_text

    if name == "workload":
        return _workload_label(row, varying)
    if name == "setting":
        if pd.isna(row["precision"]):
            return None
        compile_mode = "" if row["compile"] in (None, "none") else f"+{row['compile']}"
        levers = describe_levers(*(row.get(k) or "none" for k in ("memory", "quant", "cache")))
        return f"{row['precision']} {row['attention']}{compile_mode} {levers}".strip()
    if name == "median_ms":
        return time_text(row["median_ms"])
    if name == "fidelity":
        if pd.isna(row["median_ms"]):
            return None
        return "pass" if row["fidelity_checked"] else "unchecked"
    if name == "fidelity_verdict":
        if pd.isna(row["fidelity"]):
            return None
        error = row["max_ref_rel_err"]
        return row["fidelity"] + ("" if pd.isna(error) else f" (err {error:.1e})")
    value = row[name]
    if name.endswith(("_speedup", "_ratio", "_err")):
        return None if pd.isna(value) else float(f"{value:.3g}")
    if name == "speed_setting" and pd.isna(value):
        return "(none passes)"
    if name == "speedup" and pd.notna(value):
        return _speedup_text(value, row["speedup_ci95_low"], row["speedup_ci95_high"])
    return None if pd.isna(value) else value


def _speedup_text(speedup: float, low: float | None, high: float | None) -> str:
    import pandas as pd

    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return f"{speedup:.2f}x"
    return f"{speedup:.2f}x ({low:.2f}-{high:.2f})"
