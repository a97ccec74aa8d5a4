"""`sdbench flops`: FLOPs of one timed call of a stage, counted on the meta device (runs nothing)."""

from __future__ import annotations

import argparse

from sdbench.commands.numbers import BATCH_SIZE, STEPS

STAGES = ("text_encoder", "unet", "denoiser", "vae_decode", "pipeline")


EXAMPLES = """examples:
  sdbench flops --model sd15 --stage unet --resolution 512
                        one denoiser step
  sdbench flops --model sdxl --stage pipeline --resolution 1024 --json
                        a whole 1024 px call as JSON
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "flops", help="FLOPs of one call of a stage, without running it", description=__doc__
    )
    parser.add_argument("--model", required=True, help="a registry name (sdbench models)")
    parser.add_argument("--stage", required=True, choices=STAGES, help="denoiser = unet")
    parser.add_argument("--resolution", required=True, help='512 or "WIDTHxHEIGHT"')
    parser.add_argument(
        "--batch-size", type=BATCH_SIZE, default=1, help="images per call (default 1)"
    )
    parser.add_argument(
        "--cfg",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with / without classifier-free guidance (default: the model's usual; FLUX and "
        "the few-step models run without)",
    )
    parser.add_argument("--steps", type=STEPS, help="pipeline steps (default: the model's usual)")
    parser.add_argument("--vae", default="default", help='"default" or "taesd"')
    from sdbench.commands.output import add_format_option

    add_format_option(parser)
    parser.set_defaults(func=handler)


def flops_answer(args: argparse.Namespace) -> dict:
    """The counted FLOPs and the call they describe; BadInput for an impossible request."""
    from sdbench.errors import BadInput
    from sdbench.models.flops import count_flops
    from sdbench.models.registry import get_model, vae_component
    from sdbench.suite.load import parse_resolution

    spec = get_model(args.model)
    resolution = parse_resolution(args.resolution, "--resolution")
    if not 1 <= args.batch_size <= 4096:
        raise BadInput(f"--batch-size must be from 1 to 4096, got {args.batch_size}.")
    steps = spec.default_steps if args.steps is None else args.steps
    if steps < 1:
        raise BadInput(f"--steps must be at least 1, got {steps}.")
    vae_component(spec, args.vae)  # names the allowed values when this model has no such VAE
    stage = "unet" if args.stage == "denoiser" else args.stage
    cfg = spec.default_cfg if args.cfg is None else args.cfg
    flops = count_flops(
        spec.name, stage, resolution.height, resolution.width, args.batch_size, cfg, steps, args.vae
    )
    return {
        "model": spec.name,
        "stage": stage,
        "height": resolution.height,
        "width": resolution.width,
        "batch_size": args.batch_size,
        "cfg": cfg,
        "steps": steps if stage == "pipeline" else None,
        "vae": args.vae,
        "flops": flops,
    }


def handler(args: argparse.Namespace) -> int:
    from diffusers.utils import logging as diffusers_logging

    from sdbench.commands.output import print_record

    diffusers_logging.set_verbosity_error()  # building on meta warns about dtype casts
    answer = flops_answer(args)
    if args.format != "table":
        print_record(args.format, answer)
        return 0
    call = "one denoiser step" if answer["stage"] == "unet" else f"one {answer['stage']} call"
    if answer["stage"] == "pipeline":
        call = f"one pipeline call ({answer['steps']} steps)"
    guidance = "with cfg" if answer["cfg"] else "without cfg"
    print(
        f"{answer['model']} {answer['width']}x{answer['height']} batch {answer['batch_size']} "
        f"{guidance}: {call} = {answer['flops']:.4g} FLOPs ({answer['flops'] / 1e12:.3f} TFLOP)"
    )
    return 0
