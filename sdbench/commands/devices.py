"""`sdbench devices`: what can be benchmarked here, with name, memory and capability."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("devices", help="list the devices this machine can benchmark")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from sdbench.commands.output import format_table, human_bytes, print_json
    from sdbench.devices import present_devices

    devices = present_devices()
    if args.json:
        print_json(devices)
        return 0
    rows = [
        [
            d["id"],
            d["backend"],
            d["name"],
            human_bytes(d.get("memory_bytes")),
            d.get("compute_capability") or "-",
        ]
        for d in devices
    ]
    print(format_table(["device", "backend", "name", "memory", "capability"], rows))
    accelerators = [d["id"] for d in devices if d["kind"] != "cpu"]
    print(
        f'\ndevice = ["auto"] runs on: {", ".join(accelerators) if accelerators else "cpu (no accelerator found)"}'
    )
    return 0
