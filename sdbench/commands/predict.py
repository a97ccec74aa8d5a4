"""`sdbench predict`: speed, memory and energy of a workload on one catalogue GPU (measured or modelled)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sdbench.analysis.predict import Prediction


def add_workload_arguments(
    parser: argparse.ArgumentParser,
    default_precision: str | None = "fp16",
    with_batch_size: bool = True,
) -> None:
    """The workload flags `predict`, `recommend` and `capacity` share (`capacity` batches itself)."""
    from sdbench.commands.numbers import BATCH_SIZE, STEPS
    from sdbench.suite.axes import ATTENTIONS, COMPILE_MODES, PRECISIONS

    parser.add_argument(
        "--model",
        default="sd15",
        help="registry name (sdbench models): sd15, sdxl, lcm-sd15, sd35-medium, ... (default sd15)",
    )
    parser.add_argument(
        "--resolution",
        default=None,
        help="pixels: 512 (square) or WIDTHxHEIGHT; default: the model's native size",
    )
    if with_batch_size:
        parser.add_argument(
            "--batch-size", type=BATCH_SIZE, default=1, help="images per call (default 1)"
        )
    parser.add_argument(
        "--precision", default=default_precision, choices=PRECISIONS, help="default fp16"
    )
    parser.add_argument(
        "--steps",
        type=STEPS,
        default=None,
        help="denoising steps per image (default: the model's usual: SD1.5 50, LCM 4, SDXL-Turbo 1)",
    )
    parser.add_argument(
        "--cfg",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="classifier-free guidance, the UNet on 2 x batch (default: the model's usual; "
        "LCM and Turbo run without)",
    )
    parser.add_argument("--attention", default="sdpa", choices=ATTENTIONS, help="default sdpa")
    parser.add_argument("--compile", default="none", choices=COMPILE_MODES, help="default none")
    parser.add_argument(
        "--results",
        nargs="*",
        default=None,
        help="result files or folders whose measurements win over the model (default: ./results if present)",
    )


def add_cost_arguments(parser: argparse.ArgumentParser, hours_per_day: float, use: str) -> None:
    """How a purchase is costed, shared by `recommend` and `capacity`: `use` says what the GPU
    does during its `hours_per_day` (the default)."""
    from sdbench.commands.numbers import bounded

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
        default=hours_per_day,
        help=f"hours a day {use} (default {hours_per_day:g})",
    )


def cost_assumptions(args: argparse.Namespace):
    """The CostAssumptions the cost flags (add_cost_arguments) give."""
    from sdbench.analysis.workload import CostAssumptions

    return CostAssumptions(args.electricity, args.lifetime_years, args.hours_per_day)


def workload_of(args: argparse.Namespace, batch_size: int | None = None):
    """The ImageWorkload the workload flags (add_workload_arguments) give; the model's usual
    steps and guidance where not given."""
    from sdbench.analysis.workload import ImageWorkload
    from sdbench.models.registry import get_model

    get_model(args.model)  # an unknown model is the first thing to say
    height, width = parse_resolution(args.resolution, args.model)
    return ImageWorkload.usual(
        args.model, height, width, batch_size or args.batch_size, args.precision, args.steps,
        args.attention, args.compile, args.cfg,
    )  # fmt: skip


def parse_resolution(text: str | None, model: str) -> tuple[int, int]:
    """(height, width) from "512" or "768x512" (width x height); the model's native size when absent."""
    from sdbench.errors import BadInput
    from sdbench.models.registry import get_model

    if text is None:
        size = get_model(model).native_resolution
        return size, size
    parts = str(text).lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(not 64 <= v <= 8192 or v % 8 for v in values):
        raise BadInput(
            f'Resolution "{text}" is not valid: give 512 or WIDTHxHEIGHT like 768x512, multiples '
            "of 8 from 64 to 8192."
        )
    width, height = (values[0], values[0]) if len(values) == 1 else (values[0], values[1])
    return height, width


def load_results(paths: list[str] | None):
    """The user's measured results, or None when there are none to use."""
    from sdbench.store import read_results

    if paths is None:
        paths = (
            ["results"]
            if Path("results").is_dir() and any(Path("results").rglob("*.parquet"))
            else []
        )
    return read_results(paths) if paths else None


EXAMPLES = """examples:
  sdbench predict --gpu "rtx 4090" --model sdxl  speed, memory and energy of SDXL on a 4090
  sdbench predict --gpu "4060 ti 16gb" --resolution 768 --batch-size 4 --json
                                                 one object with Parquet column names
"""


UNCALIBRATED = (
    "no GPU of this family is in the calibration data, so the figure rests on datasheet "
    "peaks alone and its interval is doubled"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="speed, memory and energy on one GPU", description=__doc__
    )
    parser.add_argument(
        "--gpu",
        required=True,
        help='catalogue GPU, loosely: "4090", "rtx4090", "NVIDIA GeForce RTX 4090"',
    )
    add_workload_arguments(parser)
    from sdbench.commands.output import add_format_option

    add_format_option(parser)
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from sdbench.analysis.predict import predict
    from sdbench.commands.output import print_record

    prediction = predict(args.gpu, workload_of(args), results=load_results(args.results))
    if args.format != "table":
        print_record(args.format, prediction.to_dict())
        return 0
    _print_prediction(prediction)
    return 0


def _print_prediction(answer: Prediction) -> None:
    """The terminal text of a Prediction: the workload, then speed, memory and energy."""
    from sdbench.analysis.predict import denoising_label
    from sdbench.commands.output import print_note
    from sdbench.units import band_text, bytes_text, number_text

    w = answer.workload
    band = (
        ""
        if answer.source == "measured"
        else f" (80% interval {band_text(answer.interval80_low_pct, answer.interval80_high_pct)})"
    )
    print(
        f"{answer.gpu}: {w.model} {w.width}x{w.height}, batch {w.batch_size}, "
        f"{w.precision}, {denoising_label(w.steps, w.cfg)}, {w.attention}"
    )
    corrected = answer.correction_factor is not None
    print(
        f"  speed     {answer.it_per_s:.2f} it/s, {answer.image_s:.2f} s per call, "
        f"{answer.s_per_image:.2f} s per image{band}"
        + ("" if corrected else f"  [{answer.source}]")
    )
    if corrected:
        print(
            f"            [{answer.source} of this GPU: the model's time "
            f"x {answer.correction_factor:.2f}]"
        )
    if answer.source == "predicted" and not answer.calibrated:
        print_note(f"  uncalibrated: {UNCALIBRATED}")
    fits = "fits" if answer.fits else "does NOT fit"
    print(
        f"  memory    peak {bytes_text(answer.peak_vram_bytes)} of {bytes_text(answer.vram_bytes)}: "
        f"{fits} [{answer.memory_source}]"
    )
    for way in answer.ways_to_fit:
        print(f"            would fit with {way}")
    print(
        f"  energy    ~{number_text(answer.energy_per_image_j)} J per image at "
        f"~{number_text(answer.avg_power_w)} W"
    )
