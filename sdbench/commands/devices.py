"""`sdbench devices`: what can be benchmarked here, with name, memory and capability."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  sdbench devices                what this machine can benchmark
  sdbench devices --format json  ids, names and memory as JSON
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("devices", help="list the devices this machine can benchmark")
    from sdbench.commands.output import add_format_option

    add_format_option(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from sdbench.commands.output import print_rows
    from sdbench.devices import present_devices
    from sdbench.units import bytes_text

    devices = present_devices()
    rows = [
        [
            d["id"],
            d["backend"],
            d["name"],
            bytes_text(d.get("memory_bytes")),
            d.get("compute_capability") or "-",
        ]
        for d in devices
    ]
    print_rows(args.format, ["device", "backend", "name", "memory", "capability"], rows, devices)
    if args.format != "table":
        return 0
    accelerators = [d["id"] for d in devices if d["kind"] != "cpu"]
    print(
        f'\ndevice = ["auto"] runs on: {", ".join(accelerators) if accelerators else "cpu (no accelerator found)"}'
    )
    return 0
