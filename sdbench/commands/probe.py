"""`sdbench probe`: the device's achievable dense-matmul TFLOP/s per precision and its copy bandwidth."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  sdbench probe                    this machine's achievable TFLOP/s and bandwidth (cached)
  sdbench probe --device cuda:0 --refresh --json
                                   measure again, as JSON
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="measure the device's achievable matmul TFLOP/s and memory bandwidth (cached)",
        description=__doc__
        + " Figures are cached per device and torch version; every run records them and "
        "computes MFU against them.",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda:0, mps, ... (default: the first accelerator, else cpu)",
    )
    parser.add_argument(
        "--refresh", action="store_true", help="measure again instead of reading the cache"
    )
    from sdbench.commands.output import add_format_option

    add_format_option(parser)
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from sdbench.commands.output import print_record
    from sdbench.devices.probe import probe_in_subprocess

    probe = probe_in_subprocess(args.device, refresh=args.refresh)
    if args.format != "table":
        print_record(args.format, probe)
        return 0
    print(render(probe))
    return 0


def render(probe: dict) -> str:
    """The probe as a short table and notes (pure: no torch, no measuring)."""
    from sdbench.commands.output import format_table

    datasheet = probe.get("datasheet_tflops") or {}
    rows = []
    conv = probe.get("conv_tflops") or {}
    for precision, tflops in probe["matmul_tflops"].items():
        sheet = datasheet.get(precision)
        dense = max(tflops, conv.get(precision, 0.0))
        rows.append(
            [
                precision,
                _tflops(tflops),
                _tflops(conv[precision]) if precision in conv else None,
                _tflops(sheet) if sheet else None,
                f"{100 * dense / sheet:.0f}%" if sheet else None,
            ]
        )
    threads = f", {probe['threads']} threads" if probe.get("threads") else ""
    lines = [
        f"{probe['device']}: {probe['device_name']} (torch {probe['torch']}{threads})",
        format_table(
            ["precision", "matmul TFLOP/s", "3x3 conv TFLOP/s", "datasheet", "of datasheet"], rows
        ),
        "MFU divides by the faster of matmul and convolution in the cell's precision.",
    ]
    if probe.get("bandwidth_gbs") is not None:
        lines.append(f"copy bandwidth: {probe['bandwidth_gbs']:.1f} GB/s (read + write)")
    for precision, reason in (probe.get("skipped") or {}).items():
        lines.append(f"{precision}: not probed: {reason}")
    load, cpus = probe.get("load_1m"), probe.get("logical_cpus")
    if load is not None and cpus and load > 0.5 * cpus:
        lines.append(
            f"note: the machine was busy while probing (load {load:.1f} on {cpus} CPUs), so these "
            "peaks are low; run `sdbench probe --refresh` on a quiet machine"
        )
    origin = "cached" if probe.get("cached") else "measured now"
    lines.append(f"{origin} {probe.get('probed_at', '')}: {probe.get('cache_path', '')}")
    return "\n".join(lines)


def _tflops(value: float) -> str:
    return f"{value:.3g}"
