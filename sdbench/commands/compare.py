"""Match cells by configuration and judge every metric: latency by a Mann-Whitney U test on the raw
samples AND a practical threshold, memory by a byte threshold. Exit 0 when nothing regressed, 1 when
something did, 2 on bad input."""

from __future__ import annotations

import argparse
import math
import sys

from sdbench.commands.numbers import add_threshold_option, bounded
from sdbench.commands.output import (
    add_format_option,
    format_table,
    print_json,
    print_rows,
)
from sdbench.export.escape import markdown as _md_escape
from sdbench.export.escape import printable
from sdbench.export.markdown import markdown_table
from sdbench.units import bytes_text

EXAMPLES = """examples:
  sdbench compare results/base.parquet results/new.parquet
                        exit 1 if the new run regressed
  sdbench compare base/ current/ --threshold 3 --format markdown
                        a pull-request comment
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two runs cell by cell; exit 1 on a significant regression"
    )
    parser.add_argument(
        "baseline", metavar="BASELINE", help="results file or folder of the reference run(s)"
    )
    parser.add_argument(
        "current", metavar="CURRENT", help="results file or folder of the run(s) to judge"
    )
    add_threshold_option(parser, "latency change")
    parser.add_argument(
        "--alpha",
        type=bounded(0, 1, above=True),
        default=0.01,
        help="significance level of the Mann-Whitney U test (default 0.01)",
    )
    parser.add_argument(
        "--memory-threshold-mib",
        type=bounded(0, 1e9),
        default=64.0,
        metavar="MIB",
        help="smallest peak-memory change that counts, in MiB (default 64)",
    )
    parser.add_argument(
        "--across-machines",
        action="store_true",
        help="runs of different machines: a hardware comparison per shared cell (ratio of "
        "medians with a 95%% CI, memory, energy per image), no regression verdict, exit 0",
    )
    add_format_option(parser)
    parser.add_argument("--all", action="store_true", help="table format: list unchanged rows too")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from sdbench.analysis.compare import MIB, compare_runs
    from sdbench.store import read_results

    baseline = read_results([args.baseline])
    current = read_results([args.current])
    if args.across_machines:
        from sdbench.commands.compare_machines import print_hardware_comparison

        return print_hardware_comparison(baseline, current, args)
    result = compare_runs(
        baseline,
        current,
        threshold_pct=args.threshold,
        alpha=args.alpha,
        memory_threshold_bytes=int(args.memory_threshold_mib * MIB),
    )
    if args.format == "json":
        print_json(as_json(result))
    elif args.format == "csv":
        print_rows("csv", [], [], as_json(result)["rows"])
    elif args.format == "markdown":
        sys.stdout.write(as_markdown(result, args.baseline, args.current))
    else:
        sys.stdout.write(as_text(result, show_all=args.all))
    if args.format != "table":
        for warning in result.environment_warnings:
            print(f"WARNING: {warning}", file=sys.stderr)
    return 1 if result.has_regression else 0


def as_json(result) -> dict:
    return {
        "has_regression": result.has_regression,
        "threshold_pct": result.settings.threshold_pct,
        "alpha": result.settings.alpha,
        "memory_threshold_bytes": result.settings.memory_threshold_bytes,
        "environment_warnings": result.environment_warnings,
        "notes": result.notes,
        "counts": result.verdict_counts(),
        "rows": result.table.astype(object).where(result.table.notna(), None).to_dict("records"),
    }


def format_value(metric: str, value: object) -> str:
    """A figure in the unit its metric name carries."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    number = float(value)  # type: ignore[arg-type]
    if metric.endswith("_bytes"):
        return bytes_text(number)
    if metric.endswith("_ms"):
        return f"{number:.4g} ms"
    if metric.endswith("_j"):
        return f"{number:.4g} J"
    return f"{number:.3g}"


def _change(row) -> str:
    value = row["change_pct"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "+inf%" if math.isinf(value) else f"{value:+.1f}%"


def _interval(row) -> str:
    low, high = row["ratio_ci_low"], row["ratio_ci_high"]
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "-"
    return f"{low:.3f}-{high:.3f}"


def _p(row) -> str:
    value = row["p_value"]
    return "-" if value is None or math.isnan(value) else f"{value:.2g}"


def _cells(row) -> list[str]:
    if row["metric"] == "status":
        base, cur = row["baseline_status"] or "-", row["current_status"] or "-"
    else:
        base, cur = (
            format_value(row["metric"], row["baseline"]),
            format_value(row["metric"], row["current"]),
        )
    return [
        row["label"],
        row["metric"],
        base,
        cur,
        _change(row),
        _interval(row),
        _p(row),
        row["verdict"],
    ]


HEADERS = ["cell", "metric", "baseline", "current", "change", "95% CI of ratio", "p", "verdict"]


def _summary(result) -> str:
    counts = result.verdict_counts()
    parts = [
        f"{counts.get(v, 0)} {v}"
        for v in ("slower", "faster", "worse", "better", "status changed", "new", "missing")
    ]
    parts = [p for p in parts if not p.startswith("0 ")]
    regressions = counts["regression"]
    head = f"{regressions} regression{'s' * (regressions != 1)}" if regressions else "no regression"
    return head + (" (" + ", ".join(parts) + ")" if parts else "")


def as_text(result, show_all: bool = False) -> str:
    lines = [f"WARNING: {printable(w)}" for w in result.environment_warnings]
    lines += [f"note: {printable(n)}" for n in result.notes]
    table = result.table if show_all else result.table[result.table["verdict"] != "unchanged"]
    if len(table):
        rows = [_cells(r) + [r["note"] or ""] for r in table.to_dict("records")]
        lines += ["", format_table(HEADERS + ["note"], rows)]
    hidden = len(result.table) - len(table)
    lines += [
        "",
        f"sdbench compare: {_summary(result)}; threshold {result.settings.threshold_pct:g}%",
    ]
    if hidden:
        lines[-1] += f"; {hidden} unchanged row{'s' * (hidden != 1)} hidden (--all shows them)"
    return "\n".join(lines).lstrip("\n") + "\n"


def _md_table(table) -> list[str]:
    rows = []
    for row in table.to_dict("records"):  # plain dicts: 20,000 rows in seconds
        cells = _cells(row)
        if row["regression"]:
            cells[-1] = f"**{cells[-1]}**"  # the exporter escapes the text, not the asterisks
        rows.append(cells)
    return markdown_table(HEADERS, rows).split("\n")


def as_markdown(result, baseline: str, current: str) -> str:
    """A PR comment: headline, loud environment warnings, the changes, unchanged rows folded away."""
    mark = ":x:" if result.has_regression else ":white_check_mark:"
    lines = [
        f"### {mark} sdbench compare: {_summary(result)}",
        "",
        f"Baseline `{_md_escape(baseline)}` vs current `{_md_escape(current)}`; latency threshold "
        f"{result.settings.threshold_pct:g}% (Mann-Whitney p < {result.settings.alpha:g}), memory threshold "
        f"{bytes_text(result.settings.memory_threshold_bytes)}.",
    ]
    for warning in result.environment_warnings:
        lines += ["", "> [!WARNING]", f"> **{_md_escape(warning)}**"]
    changed = result.table[result.table["verdict"] != "unchanged"]
    unchanged = result.table[result.table["verdict"] == "unchanged"]
    if len(changed):
        lines += [""] + _md_table(changed)
    if len(unchanged):
        lines += ["", f"<details><summary>{len(unchanged)} unchanged</summary>", ""]
        lines += _md_table(unchanged) + ["", "</details>"]
    return "\n".join(lines) + "\n"
