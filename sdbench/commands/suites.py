"""`sdbench suites`: the suites shipped with sdbench, runnable by name from any folder."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  sdbench suites                  every packaged suite, its cells on a CPU and on one GPU
  sdbench suites --format json    name, path, description and cell counts as JSON
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from sdbench.commands.output import add_format_option

    parser = subparsers.add_parser(
        "suites",
        help="the packaged suites (sdbench run NAME runs one)",
        description=__doc__,
    )
    add_format_option(parser)
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sdbench.commands.output import print_rows
    from sdbench.suite import expand, load_suite
    from sdbench.suite.packaged import packaged_suites

    records = []
    for name, path in packaged_suites().items():
        suite = load_suite(path)
        cells = {
            device: len(
                expand(replace(suite, matrix={**suite.matrix, "device": (device,)}), [device])
            )
            for device in ("cpu", "cuda:0")
        }
        records.append(
            {"name": name, "cells_cpu": cells["cpu"], "cells_gpu": cells["cuda:0"],
             "description": suite.description, "path": str(path)}
        )  # fmt: skip
    headers = ["suite", "cells cpu", "cells gpu", "description"]
    rows = [[r["name"], r["cells_cpu"], r["cells_gpu"], r["description"]] for r in records]
    print_rows(args.format, headers, rows, records if args.format in ("json", "csv") else None)
    if args.format == "table":
        print("\nRun one with `sdbench run NAME`; `--dry-run` lists its cells on this machine.")
    return 0
