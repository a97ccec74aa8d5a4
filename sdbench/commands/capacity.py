"""`sdbench capacity`: how many GPUs a service needs for a request rate within a p99 latency SLO."""

from __future__ import annotations

import argparse

from sdbench.commands.numbers import BATCH_SIZE, bounded

SHOWN = 15  # GPUs in the table by default; json and csv list every GPU

EXAMPLES = """examples:
  sdbench capacity --model sdxl --rate 2000/h --p99 10   GPUs needed per catalogue GPU
  sdbench capacity --model sd15 --rate 1/s --p99 5 --gpu 4090 "h100 sxm" --cloud --json
                                                         two GPUs, rented, as JSON
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from sdbench.commands.output import add_format_option
    from sdbench.commands.predict import add_cost_arguments, add_workload_arguments

    parser = subparsers.add_parser(
        "capacity", help="GPUs needed for a request rate within a p99 SLO", description=__doc__
    )
    add_workload_arguments(parser, with_batch_size=False)
    parser.add_argument(
        "--rate", required=True, help="requests to serve: 2000/h, 30/min, 0.5/s or 10000/day"
    )
    parser.add_argument(
        "--p99",
        type=bounded(0, 86_400, above=True),
        required=True,
        metavar="SECONDS",
        help="p99 latency SLO, seconds",
    )
    parser.add_argument(
        "--max-batch", type=BATCH_SIZE, default=4, help="largest batch the server forms (default 4)"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=bounded(0, 3_600_000),
        default=100.0,
        help="longest a request waits for others to batch with (default 100)",
    )
    parser.add_argument(
        "--gpu",
        nargs="+",
        metavar="NAME",
        help="only these catalogue GPUs (loosely: 4090, h100-sxm); default: every GPU",
    )
    parser.add_argument(
        "--budget",
        type=bounded(0, 1e12, above=True),
        metavar="USD",
        help="ceiling for the whole fleet: purchase USD, or USD per hour with --cloud",
    )
    parser.add_argument("--cloud", action="store_true", help="rent: cost from cloud $/h")
    add_cost_arguments(parser, 24.0, "the service runs")
    parser.add_argument(
        "--top",
        type=bounded(0, 100_000, integer=True),
        default=SHOWN,
        help=f"GPUs in the table (default {SHOWN}; 0: all)",
    )
    add_format_option(parser)
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from sdbench.commands.predict import cost_assumptions, load_results, workload_of
    from sdbench.gpus import find_gpu
    from sdbench.models.registry import get_model
    from sdbench.serving.capacity import Costs, Policy, capacity, parse_rate

    get_model(args.model)
    rate_rps, unit = parse_rate(args.rate)
    # --budget (above zero) and the cost flags are bounded where they are parsed, as for recommend:
    # --electricity 0 is free power (solar, included in rent); zero years or hours are refused.
    policy = Policy(args.p99, args.max_batch, args.max_wait_ms / 1000.0)
    workload = workload_of(args, batch_size=1)
    costs = Costs(args.cloud, cost_assumptions(args), args.budget)
    gpus = [find_gpu(name) for name in args.gpu] if args.gpu else None
    table = capacity(workload, rate_rps, policy, costs, load_results(args.results), gpus)
    _print(table, args, rate_rps, unit, workload)
    return 0


def _print(table, args: argparse.Namespace, rate_rps: float, unit: str, workload) -> None:
    from sdbench.analysis.predict import denoising_label
    from sdbench.commands.output import print_rows
    from sdbench.serving.capacity import RATE_UNITS_S

    records = table.astype(object).where(table.notna(), None).to_dict("records")
    if args.format in ("json", "csv"):
        print_rows(args.format, [], [], records)
        return
    per_unit = RATE_UNITS_S[unit]
    serving = [r for r in records if r["gpus_needed"] is not None]
    shown = serving if args.top <= 0 else serving[: args.top]
    money = ("$/h", "usd_per_h") if args.cloud else ("fleet $", "purchase_usd")
    headers = ["gpu", "GPUs", f"max/GPU /{unit}", "p50 s", "p99 s", "util", money[0],
               "$/1k img", "kWh/1k", "source"]  # fmt: skip
    rows = [
        [r["gpu"], int(r["gpus_needed"]), r["max_rate_per_gpu"] * per_unit, r["p50_s"], r["p99_s"],
         f"{100 * r['utilisation']:.0f}%", r[money[1]], r["usd_per_1000_images"],
         None if r["energy_per_1000_images_j"] is None else r["energy_per_1000_images_j"] / 3.6e6,
         r["source"]]
        for r in shown
    ]  # fmt: skip
    print_rows(args.format, headers, rows)
    print()
    print(_footer(records, serving, shown, args, rate_rps, unit, workload, denoising_label))


def _footer(records, serving, shown, args, rate_rps, unit, workload, denoising_label) -> str:
    """What was asked, how it was costed, and the GPUs left out."""
    import textwrap

    lines = [
        f"{args.model} {workload.width}x{workload.height}, {workload.precision}, "
        f"{denoising_label(workload.steps, workload.cfg)}: {args.rate} "
        f"({rate_rps:.4g} requests/s), p99 <= {args.p99:g} s, batches of up to {args.max_batch} "
        f"formed within {args.max_wait_ms:g} ms. max/GPU is what one GPU alone sustains within the "
        "SLO; a fleet behind one queue does more per GPU."
    ]
    lines.append(
        "Cost: cloud $/h of the fleet."
        if args.cloud
        else f"Cost: the fleet's purchase over {args.lifetime_years:g} years at "
        f"{args.hours_per_day:g} h/day, plus electricity at ${args.electricity:g}/kWh "
        "(energy while generating; idle power not counted)."
    )
    if len(shown) < len(serving):
        more = len(serving) - len(shown)
        lines.append(f"{more} more GPU{'s' if more > 1 else ''} meet the SLO: --top 0 lists all.")
    missing = [r for r in records if r["gpus_needed"] is None]
    if missing:
        lines.append(
            f"{len(missing)} GPU{'s' if len(missing) > 1 else ''} cannot meet the SLO: one "
            "image alone takes longer (--format json says how long)."
        )
    return "\n".join(textwrap.fill(line, 100) for line in lines)
