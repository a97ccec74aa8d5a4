"""`sdbench recommend`: which GPU to buy or rent for a workload, per budget tier."""

from __future__ import annotations

import argparse
import math

BADGES = {"fastest": "fast", "best_value": "value", "lowest_energy": "energy"}
HEADERS = [
    ("gpu", "gpu"), ("picked for", "picks"), ("price", "price"), ("s/img", "s_per_image"),
    ("80% band", "band"), ("GiB used", "memory"), ("J/img", "energy_per_image_j"),
    ("$/1k", "cost_per_1000_usd"),
]  # fmt: skip


EXAMPLES = """examples:
  sdbench recommend --model sdxl          which GPU to buy, per budget tier
  sdbench recommend --model sd15 --budget 500 1500 --format markdown
                                          your own tiers, as markdown
  sdbench recommend --model sdxl --cloud  which GPU to rent
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from sdbench.commands.numbers import bounded
    from sdbench.commands.predict import add_cost_arguments, add_workload_arguments

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
        "--datacenter",
        action="store_true",
        help="also consider cards without a street price (datacenter parts) in the open tier",
    )
    parser.add_argument(
        "--cloud",
        action="store_true",
        help="rent instead of buy: cost from cloud $/h, budgets in $/h",
    )
    add_cost_arguments(parser, 4.0, "the GPU generates images")
    from sdbench.commands.output import add_format_option

    add_format_option(parser)
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    import sys

    from sdbench.analysis.predict import denoising_label
    from sdbench.analysis.recommend import recommend
    from sdbench.commands.output import (
        format_grouped,
        format_markdown,
        print_json,
        print_note,
    )
    from sdbench.commands.predict import cost_assumptions, load_results, workload_of
    from sdbench.models.registry import get_model

    get_model(args.model)
    workload = workload_of(args)
    answer = recommend(
        workload, load_results(args.results), args.budget, args.cloud, cost_assumptions(args),
        args.datacenter,
    )  # fmt: skip
    table = answer.table
    if args.format == "json":
        print_json(answer.records())
        return 0
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False)
        return 0
    rows = card_rows(table, args.cloud)
    headers = ["tier", *(label for label, _ in HEADERS)]
    notes = [f"[{n}] {note}" for n, note in enumerate(dict.fromkeys(tier_notes(table)), start=1)]
    notes += [note for note in [corrected_note(table)] if note]
    if args.format == "markdown":
        from sdbench.export.escape import markdown

        print(format_markdown(headers, rows))
        for note in notes:  # the [1] and * the table points to
            print(f"\n{markdown(note)}")
        return 0
    print(format_grouped(headers, rows, 0))
    print()
    for note in notes:
        print_note(note)
    denoising = denoising_label(workload.steps, workload.cfg)
    costs = answer.costs
    cost = "cloud $/h" if args.cloud else (
        f"purchase over {costs.lifetime_years:g} years at {costs.hours_per_day:g} h/day + "
        f"electricity at ${costs.electricity_usd_per_kwh:g}/kWh"
    )  # fmt: skip
    print_note(
        f"{workload.model} {workload.width}x{workload.height}, batch {workload.batch_size}, "
        f"{workload.precision}, {denoising}, {workload.attention}. $/1k: per 1000 images, {cost}. The 80% band comes from the "
        "performance model's cross-validated errors; GPUs whose family has no calibration data "
        "are never picked (the notes name them)."
        + ("" if args.cloud or args.datacenter else
           " Cards without a street price are left out (--datacenter adds them).")
    )  # fmt: skip
    return 0


def is_corrected(record: dict) -> bool:
    """Whether the record's figure is the model's scaled by its GPU's own measured cells."""
    source = record.get("source")
    return isinstance(source, str) and source.startswith("calibrated on")


def corrected_note(table) -> str | None:
    """ "* GeForce RTX 4090: calibrated on 9 measured cells ..." naming each corrected GPU shown."""
    corrected = {r["gpu"]: r["source"] for r in table.to_dict("records") if is_corrected(r)}
    if not corrected:
        return None
    named = "; ".join(f"{gpu}: {source}" for gpu, source in corrected.items())
    return (
        f"* {named} of that GPU, which scale the model's figure (sdbench validate-model --results)."
    )


def tier_notes(table) -> list[str]:
    """Each tier's note (what does not fit, what is not picked and why), in tier order."""
    notes = table.drop_duplicates("tier")["note"]
    return [note for note in notes if isinstance(note, str) and note]


def card_rows(table, cloud: bool) -> list[list]:
    """One row per card and tier with the criteria it won as badges (one empty row for a tier
    with no pick); a tier with a note points to it ([1]), each note printed once below the table."""
    numbers = {note: n for n, note in enumerate(dict.fromkeys(tier_notes(table)), start=1)}
    rows: dict[tuple[str, str | None], list] = {}
    for record in table.to_dict("records"):
        gpu = record.get("gpu") if isinstance(record.get("gpu"), str) else None
        note = record.get("note") if isinstance(record.get("note"), str) else ""
        tier = record["tier"] + (f" [{numbers[note]}]" if note in numbers else "")
        key = (tier, gpu)  # a tier where nothing fits is one empty row, not one per criterion
        badge = BADGES.get(record["criterion"]) if gpu else None
        if key not in rows:
            rows[key] = [tier, *(_display(record, k, cloud) for _, k in HEADERS)]
            rows[key][2] = badge
        elif badge:
            rows[key][2] = f"{rows[key][2]}, {badge}" if rows[key][2] else badge
    return list(rows.values())


def _display(record: dict, key: str, cloud: bool):
    from sdbench.units import GIB, band_text, format_number

    def number(value):
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    if key == "gpu":
        name = record.get("gpu") if isinstance(record.get("gpu"), str) else None
        return f"{name} *" if name and is_corrected(record) else name
    if key == "price":
        value = number(record.get("cloud_usd_per_h" if cloud else "price_usd"))
        return None if value is None else f"${format_number(value)}" + ("/h" if cloud else "")
    if key == "band":
        low, high = number(record.get("s_per_image_low")), number(record.get("s_per_image_high"))
        value = number(record.get("s_per_image"))
        if low is None or high is None or value is None:
            return None
        if low == high:
            return "measured" if record.get("source") == "measured" else None
        return band_text(100 * (low / value - 1), 100 * (high / value - 1), compact=True)
    if key == "memory":
        peak, total = number(record.get("peak_vram_bytes")), number(record.get("vram_bytes"))
        if peak is None:
            return None
        return format_number(peak / GIB) + ("" if total is None else f"/{total / GIB:.0f}")
    value = record.get(key)
    return number(value) if not isinstance(value, str) else (value or None)
