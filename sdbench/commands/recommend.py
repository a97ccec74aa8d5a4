"""`sdbench recommend`: which GPU to buy or rent for a workload, per budget tier."""

from __future__ import annotations

import argparse

HEADERS = [
    ("tier", "tier"), ("pick", "criterion"), ("gpu", "gpu"), ("price $", "price_usd"), ("s/img", "s_per_image"),
    ("±band s", "band"), ("img/min", "images_per_min"), ("peak GiB", "peak_gib"), ("VRAM GiB", "vram_gib"),
    ("headroom", "headroom"), ("J/img", "energy_per_image_j"), ("$/1000 img", "cost_per_1000_usd"),
    ("source", "source"), ("note", "note"),
]  # fmt: skip


EXAMPLES = """examples:
  sdbench recommend --model sdxl          which GPU to buy, per budget tier
  sdbench recommend --model sd15 --budget 500 1500 --format markdown
                                          your own tiers, as markdown
  sdbench recommend --model sdxl --cloud  which GPU to rent
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from sdbench.commands.numbers import bounded
    from sdbench.commands.predict import add_workload_arguments

    parser = subparsers.add_parser(
        "recommend", help="which GPU to buy or rent, per budget", description=__doc__
    )
    add_workload_arguments(parser)
    parser.add_argument(
        "--budget",
        type=bounded(0, 1e9, above=True),
        nargs="+",
        metavar="USD",
        help="tier ceilings (default 300 600 1000 2000 5000 and any; USD per hour with --cloud)",
    )
    parser.add_argument(
        "--cloud",
        action="store_true",
        help="rent instead of buy: cost from cloud $/h, budgets in $/h",
    )
    parser.add_argument(
        "--electricity",
        type=bounded(0, 10),
        default=0.15,
        metavar="USD_PER_KWH",
        help="electricity price (default 0.15 $/kWh)",
    )
    parser.add_argument(
        "--lifetime-years",
        type=bounded(0, 50, above=True),
        default=3.0,
        help="years to spread the purchase over (default 3)",
    )
    parser.add_argument(
        "--hours-per-day",
        type=bounded(0, 24, above=True),
        default=4.0,
        help="hours a day the GPU generates images (default 4)",
    )
    from sdbench.commands.output import add_format_option

    add_format_option(parser)
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    import sys

    from sdbench.analysis.predict import denoising_label, usual_workload
    from sdbench.analysis.recommend import recommend
    from sdbench.commands.output import format_markdown, format_table, print_json
    from sdbench.commands.predict import load_results, parse_resolution
    from sdbench.errors import BadInput
    from sdbench.models.registry import get_model

    get_model(args.model)
    if args.budget and any(b <= 0 for b in args.budget):
        raise BadInput(
            "Budgets must be positive amounts in USD (or USD per hour with --cloud), e.g. --budget 500 1500."
        )
    height, width = parse_resolution(args.resolution, args.model)
    table = recommend(
        args.model, height, width, args.batch_size, args.precision, args.steps, args.attention, args.compile,
        budgets=args.budget, results=load_results(args.results), cloud=args.cloud,
        electricity_usd_per_kwh=args.electricity, lifetime_years=args.lifetime_years, hours_per_day=args.hours_per_day,
        cfg=args.cfg,
    )  # fmt: skip
    workload = usual_workload(args.model, height, width, steps=args.steps, cfg=args.cfg)
    if args.format == "json":
        print_json(table.astype(object).where(table.notna(), None).to_dict("records"))
        return 0
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False)
        return 0
    shown = [
        ("$/h", "cloud_usd_per_h") if key == "price_usd" and args.cloud else (label, key)
        for label, key in HEADERS
    ]
    rows = [[_display(record, key) for _, key in shown] for record in table.to_dict("records")]
    headers = [label for label, _ in shown]
    print(
        format_markdown(headers, rows) if args.format == "markdown" else format_table(headers, rows)
    )
    denoising = denoising_label(workload.steps, workload.cfg)
    print(f"\n{args.model} {width}x{height}, batch {args.batch_size}, {args.precision}, {denoising}, "
          f"{args.attention}. Cost per 1000 images: " + (
              "cloud $/h." if args.cloud else
              f"purchase over {args.lifetime_years:g} years at {args.hours_per_day:g} h/day + electricity at ${args.electricity:g}/kWh."
          ) + " Predicted figures carry the model's median cross-validated error as the band.")  # fmt: skip
    return 0


def _display(record: dict, key: str):
    import math

    def number(value):
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    if key == "band":
        low, high = number(record.get("s_per_image_low")), number(record.get("s_per_image_high"))
        return None if low is None or high is None or low == high else f"{low:.2g}-{high:.2g}"
    if key in ("peak_gib", "vram_gib"):
        value = number(record.get("peak_vram_bytes" if key == "peak_gib" else "vram_bytes"))
        return None if value is None else round(value / 1024**3, 1)
    if key == "headroom":
        value = number(record.get("headroom_pct"))
        return None if value is None else f"{value:.0f}%"
    value = record.get(key)
    return number(value) if not isinstance(value, str) else (value or None)
