"""`scripts/gpu-check`: run every GPU path once, prove nothing fell back to the CPU, keep it all.

One command for a freshly lent GPU machine with no internet: probe the device, run
sdbench/suites/gpu-check.toml, check the attention kernels really differ, and write the Parquet results,
the HTML report, summary.txt and checks.json into one folder (at most 8 files). Exit 0 when every
check passed, 1 when one failed (summary.txt and the last lines printed say which and why), 2 when
the machine cannot run the check at all (a missing package, no GPU, a folder already used).

`--cpu-dry-run` runs the same code on the CPU with a suite derived from gpu-check.toml (tiny
models, resolutions / 8, no compile cell, the planned OOM injected): the CI test of this script.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from sdbench.devices.device import device_kind
from sdbench.errors import BadInput, SdbenchError
from sdbench.gpucheck.suite import GPU_SUITE, OOM_BATCH, dry_run_suite_text
from sdbench.gpucheck.verify import Check, judge_kernels, summary_text, verify_rows

REPO = Path(__file__).resolve().parents[2]
# import name -> pip distribution; torch must already be there (a CUDA build for the GPU)
REQUIRED_MODULES = {
    "torch": "torch",
    "diffusers": "diffusers",
    "transformers": "transformers",
    "safetensors": "safetensors",
    "pynvml": "nvidia-ml-py",
    "psutil": "psutil",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "matplotlib": "matplotlib",
    "jinja2": "jinja2",
    "scipy": "scipy",
    "threadpoolctl": "threadpoolctl",
    "rich": "rich",
}
WHEELS_HELP = (
    "On a machine with internet and the GPU machine's Python version, run "
    "`scripts/gpu-check --download-wheels wheels` (or `pip download -d wheels PACKAGES`), copy "
    "wheels/ (or shared/wheels/) next to scripts/ on the GPU machine and run scripts/gpu-check "
    "again: it installs them with `pip install --no-index --find-links wheels`."
)
MAX_FILES = 8
GPU_KERNEL_BACKENDS = ("math", "flash", "efficient", "cudnn")
CPU_KERNEL_BACKENDS = ("math", "flash")  # the only SDPA kernels a CPU has
REPORT_RESERVE_S = 75.0  # kept back from the run for the kernel check, report and summary
PROBE_TIMEOUT_S = 120.0
KERNEL_CHECK_TIMEOUT_S = 180.0


def missing_packages(deep: bool = False) -> list[str]:
    """pip names of the required packages that cannot be imported here.

    `deep` imports each one (and diffusers' UNet class), so a package whose own dependency is
    missing is caught too, under the name of the module that failed: seconds, not milliseconds.
    """
    missing: list[str] = []
    for module, pip in REQUIRED_MODULES.items():
        if importlib.util.find_spec(module) is None:
            missing.append(pip)
        elif deep:
            try:
                importlib.import_module(module)
                if module == "diffusers":
                    importlib.import_module("diffusers").UNet2DConditionModel  # noqa: B018
            except ImportError as error:
                name = (error.name or module).split(".")[0]
                missing.append(REQUIRED_MODULES.get(name, name).replace("_", "-"))
    return list(dict.fromkeys(missing))


def pick_device(devices: list[dict], cpu_dry_run: bool) -> dict:
    """The device to check: the CPU in a dry run, else the first CUDA GPU torch sees."""
    if cpu_dry_run:
        return next(d for d in devices if d["id"] == "cpu")
    gpus = [d for d in devices if device_kind(d["id"]) == "cuda"]
    if not gpus:
        raise SdbenchError(
            "torch sees no CUDA GPU here (devices: "
            + ", ".join(f"{d['id']} {d['name']}" for d in devices)
            + "). Check nvidia-smi, that this torch is a CUDA build (torch.version.cuda) and "
            "CUDA_VISIBLE_DEVICES; use --cpu-dry-run to test the script without a GPU."
        )
    return gpus[0]


def prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BadInput(
            f'"{out_dir}" is not empty. gpu-check writes at most {MAX_FILES} files into a folder of '
            "its own: give a new or empty folder."
        )
    out_dir.mkdir(parents=True, exist_ok=True)


def _child_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


def run_probe(device_id: str) -> tuple[dict | None, Check]:
    """`sdbench probe --json` on the device, in a process of its own."""
    command = [sys.executable, "-m", "sdbench", "probe", "--device", device_id, "--json"]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=_child_env()
        )
    except subprocess.TimeoutExpired:
        return None, Check("probe", False, f"sdbench probe ran past {PROBE_TIMEOUT_S:.0f} s")
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        return None, Check("probe", False, f"sdbench probe exited {result.returncode}: {tail}")
    try:
        probe = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None, Check(
            "probe", False, f"sdbench probe printed no JSON: {result.stdout[:200]!r}"
        )
    if isinstance(probe, list):  # one object per device
        probe = next((p for p in probe if p.get("device") == device_id), probe[0] if probe else {})
    peaks = probe.get("matmul_tflops") or {}
    shown = ", ".join(f"{k} {v:.3g}" for k, v in peaks.items() if isinstance(v, int | float))
    return probe, Check("probe", True, f"matmul TFLOP/s: {shown or 'none reported'}")


def kernel_report(
    device: str, model: str, resolution: int, precision: str, backends: tuple
) -> dict:
    """Per forced SDPA backend: the attention kernels one UNet call really ran (imports torch)."""
    from sdbench.cell import Cell
    from sdbench.models.workload import ModelCache, build_workload
    from sdbench.runner.capability import unsupported_reason
    from sdbench.runner.kernels import attention_kernels_used, backends_of, kernel_mismatch

    cache = ModelCache()
    report: dict[str, dict] = {}
    for attention in backends:
        cell = Cell(model, "unet", device, resolution, resolution, 1, precision, attention, "none")
        reason = unsupported_reason(cell)
        if reason:
            report[attention] = {"unsupported": reason}
            continue
        workload = build_workload(cell, cache)
        workload.call()  # first call: lazy kernel loading and autotuning stay out of the profile
        workload.synchronize()
        kernels = attention_kernels_used(workload)
        report[attention] = {
            "kernels": sorted(kernels),
            "backends": sorted(backends_of(kernels)),
            "mismatch": kernel_mismatch(workload, kernels),
        }
    return report


def kernel_checks(device_id: str, cpu_dry_run: bool) -> tuple[list[Check], dict]:
    """Profile one UNet call per forced backend in a fresh process; each must run its own kernel."""
    args = ("tiny", "64", "fp32") if cpu_dry_run else ("sd15", "512", "fp16")
    command = [sys.executable, "-m", "sdbench.gpucheck", "--kernel-check", device_id, *args]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=KERNEL_CHECK_TIMEOUT_S,
            env=_child_env(),
        )
    except subprocess.TimeoutExpired:
        return [Check("attention kernels", False, "the kernel check ran past its time limit")], {}
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        return [Check("attention kernels", False, f"the kernel check failed: {tail}")], {}
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return judge_kernels(report), report


class _Tee:
    """A text stream that writes to stderr and to the log file."""

    def __init__(self, log):
        self.log = log

    def write(self, text: str) -> int:
        sys.stderr.write(text)
        self.log.write(text)
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[dict]:
    """Ctrl-C the run after `seconds` (it ends like an interrupted run: journal kept)."""
    state = {"expired": False}

    def expire(signum, frame) -> None:
        state["expired"] = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(1.0, seconds))
    try:
        yield state
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _injected(faults: dict | None) -> Iterator[None]:
    if not faults:
        yield
        return
    previous = os.environ.get("SDBENCH_INJECT")
    os.environ["SDBENCH_INJECT"] = json.dumps(faults)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SDBENCH_INJECT", None)
        else:
            os.environ["SDBENCH_INJECT"] = previous


def run_suite_once(
    suite_path: Path,
    device: dict,
    devices: list[dict],
    out_dir: Path,
    budget_s: float,
    cpu_dry_run: bool,
    stream,
) -> tuple[list[dict], list[Check]]:
    """Run the suite on the device within `budget_s`; its rows and whether it finished in time."""
    from dataclasses import replace

    from rich.console import Console

    from sdbench.runner.run import run_suite
    from sdbench.store import read_results
    from sdbench.suite import expand, load_suite

    suite = load_suite(suite_path)
    suite = replace(suite, matrix={**suite.matrix, "device": (device["id"],)})
    expected = len(expand(suite, [d["id"] for d in devices]))
    console = Console(file=stream, width=160, force_terminal=False)
    # The dry run cannot run a CPU out of memory safely: the planned OOM is injected there.
    faults = {f"bs{OOM_BATCH} ": "oom"} if cpu_dry_run else None
    with _injected(faults), _deadline(budget_s) as deadline:
        try:
            outcome = run_suite(str(suite_path), out_dir, device["id"], console=console)
        except KeyboardInterrupt:
            outcome = None
    if outcome is None or outcome.interrupted:
        rows = _as_stored(outcome.rows) if outcome else []
        why = (
            f"the run passed its {budget_s:.0f} s budget" if deadline["expired"] else "interrupted"
        )
        return rows, [Check("finished in time", False, f"{why}; {len(rows)} cells done")]
    rows = read_results([outcome.path]).to_dict("records")
    return rows, [Check("finished in time", True, f"{expected} cells within {budget_s:.0f} s")] + [
        c for c in verify_rows(rows, device, cpu_dry_run, expected)
    ]


def _as_stored(rows: list[dict]) -> list[dict]:
    """Journal rows as the store reads them back (every schema column), for an unfinished run."""
    from sdbench.store import read_results, write_run

    if not rows:
        return []
    with tempfile.TemporaryDirectory() as scratch:
        return read_results([write_run(rows, Path(scratch) / "partial.parquet")]).to_dict("records")


def run_check(out_dir: Path, cpu_dry_run: bool = False, time_limit_s: float = 480.0) -> int:
    """The whole check; returns the exit code (0 every check passed, 1 one failed)."""
    began = time.monotonic()
    if cpu_dry_run:
        # A functional check, not a measurement: on a busy 2-core CI machine, OpenMP threads that
        # spin at every barrier made each tiny-model call 20-45x slower (sleeping threads do not).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    missing = missing_packages()
    if missing:
        raise SdbenchError(
            f"gpu-check needs these Python packages, missing here: {' '.join(missing)}. {WHEELS_HELP}"
        )
    from sdbench.devices import present_devices

    devices = present_devices()
    device = pick_device(devices, cpu_dry_run)
    prepare_out_dir(out_dir)
    with open(out_dir / "gpu-check.log", "w", encoding="utf-8") as log:
        stream = _Tee(log)
        stream.write(f"gpu-check: {device['id']} ({device['name']}), results in {out_dir}\n")
        probe, probe_check = run_probe(device["id"])
        stream.write(f"probe: {probe_check.detail}\n")
        if probe is not None:
            (out_dir / "probe.json").write_text(json.dumps(probe, indent=2, default=str) + "\n")
        budget_s = time_limit_s - (time.monotonic() - began) - REPORT_RESERVE_S
        with tempfile.TemporaryDirectory() as scratch:
            suite_path = GPU_SUITE
            if cpu_dry_run:
                suite_path = Path(scratch) / "gpu-check-cpu-dry-run.toml"
                suite_path.write_text(dry_run_suite_text(GPU_SUITE.read_text(encoding="utf-8")))
            rows, run_checks = run_suite_once(
                suite_path, device, devices, out_dir, budget_s, cpu_dry_run, stream
            )
        kernels, kernel_report_json = kernel_checks(device["id"], cpu_dry_run)
        checks = [probe_check, *run_checks, *kernels]
        _write_outputs(
            out_dir, rows, checks, device, probe, kernel_report_json, time.monotonic() - began
        )
        summary = (out_dir / "summary.txt").read_text(encoding="utf-8")
        stream.write(summary)
    return 0 if all(c.ok for c in checks) else 1


def _write_outputs(out_dir, rows, checks, device, probe, kernels, wall_s) -> None:
    import pandas as pd

    from sdbench.report.site import write_site

    if rows:
        try:
            write_site(pd.DataFrame(rows), out_dir, title=f"gpu-check: {device['name']}")
        except Exception as error:  # the report is checked like any other path: a failed check
            checks.append(Check("HTML report", False, f"{type(error).__name__}: {error}"))
    (out_dir / "summary.txt").write_text(
        summary_text(rows, checks, device, probe, wall_s), encoding="utf-8"
    )
    verdicts = {
        "passed": all(c.ok for c in checks),
        "device": device,
        "wall_s": wall_s,
        "checks": [asdict(c) for c in checks],
        "attention_kernels": kernels,
    }
    (out_dir / "checks.json").write_text(
        json.dumps(verdicts, indent=2, default=str) + "\n", encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/gpu-check",
        description="Run every GPU path once (the packaged gpu-check suite), verify nothing fell back "
        "to the CPU, and write results, report and summary into OUTDIR.",
    )
    parser.add_argument("out_dir", nargs="?", type=Path, help="a new or empty folder")
    parser.add_argument(
        "--cpu-dry-run", action="store_true", help="same code on the CPU with tiny models"
    )
    parser.add_argument(
        "--time-limit-s", type=float, default=480.0, help="whole check (default 480)"
    )
    parser.add_argument(
        "--kernel-check",
        nargs=4,
        metavar=("DEVICE", "MODEL", "RESOLUTION", "PRECISION"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.kernel_check:
        device, model, resolution, precision = args.kernel_check
        backends = CPU_KERNEL_BACKENDS if device == "cpu" else GPU_KERNEL_BACKENDS
        print(json.dumps(kernel_report(device, model, int(resolution), precision, backends)))
        return 0
    if args.out_dir is None:
        parser.error("give OUTDIR, a new or empty folder for the results")
    try:
        return run_check(args.out_dir, args.cpu_dry_run, args.time_limit_s)
    except SdbenchError as error:
        print(f"gpu-check: {error}", file=sys.stderr)
        return error.exit_code
