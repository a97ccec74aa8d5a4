"""`sdbench run SUITE`: measure a suite's matrix on this machine's devices.

Each cell (model, stage, resolution, batch, precision, attention, ...) is warmed up and timed
until its confidence interval is tight; the run is written to results/<run_id>.parquet, with a
journal beside it while it goes so an interrupted run can be resumed."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  sdbench run quick                         the packaged quick suite (sdbench suites lists them)
  sdbench run my-suite.toml --device cuda:1  a suite file of your own, on one device
  sdbench run --resume RUN_ID               finish a run that was interrupted
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a benchmark suite and write results/<run_id>.parquet",
        description=__doc__,
    )
    parser.add_argument(
        "suite",
        nargs="?",
        help="a packaged suite's name (quick) or a suite .toml file (not needed with --resume)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="results folder (default: results; with --resume PATH, the folder PATH is in)",
    )
    parser.add_argument(
        "--device", help="run on this device instead of the suite's (cpu, cuda:0, mps, ...)"
    )
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a run that was killed or interrupted, from its journal (run id or path)",
    )
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument(
        "--ray-address", default=None, help="Ray cluster address (auto, or HOST:PORT)"
    )
    parser.add_argument(
        "--gpu-type", default=None, help="with ray: only use nodes with this accelerator type label"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the expanded cells and exit")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from sdbench.errors import BadInput
    from sdbench.runner.interrupt import signals_end_the_run
    from sdbench.runner.run import plan, print_summary, run_suite

    if not args.suite and not args.resume:
        raise BadInput(
            "Give a suite: a packaged name (sdbench run quick; sdbench suites lists them), "
            "a .toml file, or --resume RUN."
        )
    if args.dry_run:
        _print_plan(*plan(args.suite, args.device))
        return 0
    options = {}
    if args.executor == "ray":
        options = {"address": args.ray_address, "gpu_type": args.gpu_type}
    out = args.out or _resume_folder(args.resume) or "results"
    with signals_end_the_run():
        outcome = run_suite(args.suite, out, args.device, args.resume, args.executor, options)
    print_summary(outcome)
    return 130 if outcome.interrupted else 0


def _print_plan(suite, cells, devices) -> None:
    """The cells with their expected seconds, then the expected duration per device; cells the
    capability check says cannot run there are listed with the reason and cost nothing."""
    from sdbench.commands.output import print_note
    from sdbench.runner.capability_check import unsupported_reasons
    from sdbench.runner.estimate import device_peaks, estimate_cells
    from sdbench.units import duration_text

    used = [d for d in devices if any(c.device == d["id"] for c in cells)]
    peaks = device_peaks(used)
    unsupported = unsupported_reasons(cells)
    runnable = [c for c in cells if c.cell_id not in unsupported]
    expected = estimate_cells(runnable, suite.measure, peaks)
    notes: dict[str, int] = {}  # each reason once, below the list
    for cell in cells:
        reason = unsupported.get(cell.cell_id)
        if reason:
            cost = f"unsupported [{notes.setdefault(reason, len(notes) + 1)}]"
        else:
            cost = f"~{duration_text(expected[cell.cell_id])}"
        print(f"{cell.cell_id}  {cell.label():<60}  {cost}")
    for reason, number in notes.items():
        print_note(f"[{number}] {reason}")
    print(f"{len(cells)} cells on {', '.join(d['id'] for d in used)}")
    for device in used:
        peak = peaks[device["id"]]
        here = [c for c in runnable if c.device == device["id"]]
        skipped = sum(c.device == device["id"] for c in cells) - len(here)
        seconds = sum(expected[c.cell_id] for c in here)
        print_note(
            f"estimated duration on {device['id']} ({peak.name}): about {duration_text(seconds)} "
            f"for {len(here)} cells ({_peak_source(peak)})"
            + (f"; {skipped} cells unsupported there, not estimated (see above)" if skipped else "")
        )
    if len(used) > 1:
        print("devices run side by side: the run takes about as long as the slowest")


def _peak_source(peak) -> str:
    if peak.source == "probe":
        return "from its cached probe"
    if peak.source == "datasheet":
        return "from its datasheet peak; `sdbench probe` refines it"
    return "from an assumed peak; run `sdbench probe` first for a better estimate"


def _resume_folder(resume: str | None) -> str | None:
    """`--resume results/RUN.journal` or `--resume gpu-runs/RUN`: the folder that path names."""
    if not resume or Path(resume).parent == Path("."):
        return None
    return str(Path(resume).parent)
