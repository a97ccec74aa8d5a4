"""The `sdbench` command line: parse arguments and call library functions, nothing more.

Each verb lives in `sdbench/commands/<verb>.py` with a `register(subparsers)` function that adds
its parser and sets `func`. Handlers import what they need lazily so `sdbench --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sdbench import __version__
from sdbench.errors import SdbenchError

COMMANDS = (
    "devices",
    "models",
    "run",
    "flops",
    "report",
    "compare",
    "history",
    "gpus",
    "predict",
    "recommend",
    "capacity",
    "validate_model",
    "probe",
    "best",
    "ingest",
    "suites",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdbench",
        description="Benchmark Stable Diffusion on real hardware and decide which GPU to buy or rent.",
    )
    parser.add_argument("--version", action="version", version=f"sdbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"sdbench.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sdbench.commands.{name}":
                continue  # a verb not built yet in this checkout
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SdbenchError as error:
        print(f"sdbench {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("sdbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
