"""The `sdbench` command line: parse arguments and call library functions, nothing more.

Each verb lives in `sdbench/commands/<verb>.py` with a `register(subparsers)` function that adds
its parser and sets `func`. Handlers import what they need lazily so `sdbench --help` is fast.
"""

from __future__ import annotations

import argparse
import gc
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
    "show",
)


EPILOG = """conventions (every verb):
  --format table|markdown|json|csv   where a verb prints data; --json = --format json
  --results PATH...                  where a verb reads results; default ./results
  --wide                             tables wider than 100 columns (default: fit 100)

exit codes:
  0    success
  1    compare found a regression
  2    bad input (unknown suite key, malformed file, unknown GPU, ...): one paragraph, no traceback
  130  a run interrupted by Ctrl-C or SIGTERM (its finished cells are in the journal)

examples:
  sdbench run quick                   measure the quick suite on this machine
  sdbench report --out reports/quick  an HTML report of ./results
  sdbench recommend --model sdxl      which GPU to buy or rent for SDXL
"""


class HelpFormatter(argparse.HelpFormatter):
    """Wraps each paragraph of a description; keeps indented lines (example blocks) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.strip().split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith("  ") for line in lines[1:]):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(super()._fill_text(" ".join(lines), width, indent))
        return "\n\n".join(paragraphs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdbench",
        description="Benchmark Stable Diffusion on real hardware and decide which GPU to buy or rent.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sdbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"sdbench.commands.{name}")
        before = set(subparsers.choices)
        module.register(subparsers)
        for verb in set(subparsers.choices) - before:
            _document(subparsers.choices[verb], module)
    return parser


def _document(parser: argparse.ArgumentParser, module: object) -> None:
    """Every verb's help: its description (the module docstring by default) and its EXAMPLES."""
    parser.formatter_class = HelpFormatter
    parser.description = parser.description or module.__doc__
    examples = getattr(module, "EXAMPLES", "")
    if examples and not parser.epilog:
        parser.epilog = examples


def main(argv: list[str] | None = None) -> int:
    # A verb allocates millions of short-lived objects (frames, rows, figure artists) and makes
    # few reference cycles: the default first-generation threshold (700) ran collections worth
    # ~1 s of a fleet report's 10 s; 100,000 costs a few MB more at peak. Put back on return,
    # for callers in the same process (tests, the pytest plugin).
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 20, 100)
    try:
        return _run(argv)
    finally:
        gc.set_threshold(*thresholds)


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from sdbench.commands.output import set_wide

    set_wide(getattr(args, "wide", False))
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
