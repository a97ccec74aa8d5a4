"""`sdbench gpus`: list the GPU catalogue (datasheet figures, prices, sources)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  sdbench gpus                            the catalogue with specs and prices
  sdbench gpus --vendor amd --format csv  AMD cards as CSV
"""


NARROW_LEAVES_OUT = ("family", "FP32 TF", "launch $")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gpus", help="the GPU catalogue", description=__doc__)
    parser.add_argument("--vendor", help="only this vendor (NVIDIA, AMD, Apple, Intel)")
    from sdbench.commands.output import add_format_option

    add_format_option(parser)
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from sdbench.commands.output import print_note, print_rows
    from sdbench.errors import BadInput
    from sdbench.gpus.catalogue import catalogue_frame

    frame = catalogue_frame()
    if args.vendor:
        frame = frame[frame["vendor"].str.lower() == args.vendor.lower()]
        if frame.empty:
            raise BadInput(
                f'No GPUs from vendor "{args.vendor}". Vendors: NVIDIA, AMD, Apple, Intel.'
            )
    headers = [
        "gpu",
        "family",
        "year",
        "VRAM GB",
        "GB/s",
        "FP16 TF",
        "FP32 TF",
        "FP8 TF",
        "TDP W",
        "launch $",
        "street $",
        "cloud $/h",
    ]
    columns = [
        "name",
        "family",
        "release_year",
        "vram_gb",
        "mem_bandwidth_gbs",
        "fp16_tensor_tflops",
        "fp32_tflops",
        "fp8_tensor_tflops",
        "tdp_w",
        "launch_price_usd",
        "street_price_usd",
        "cloud_usd_per_h",
    ]
    if args.format == "table" and not args.wide:  # what a buyer compares first; --wide: all
        shown = [i for i, h in enumerate(headers) if h not in NARROW_LEAVES_OUT]
        headers, columns = [headers[i] for i in shown], [columns[i] for i in shown]
    rows = [
        [None if _missing(v) else v for v in record]
        for record in frame[columns].itertuples(index=False)
    ]
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    print_rows(args.format, headers, rows, records)
    if args.format != "table":
        return 0
    print_note(
        f"\n{len(frame)} GPUs (--wide adds family, FP32 and launch price). FP16 TF = dense FP16 tensor TFLOPS with FP32 accumulate (no sparsity). "
        "Sources and price dates: `sdbench gpus --json` or sdbench/data/gpus.csv."
    )
    return 0


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)
