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
from dataclasses import asdict, dataclass
from pathlib import Path

import tomllib

from sdbench.errors import BadInput, SdbenchError

REPO = Path(__file__).resolve().parent.parent
GPU_SUITE = Path(__file__).resolve().parent / "suites" / "gpu-check.toml"
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
    "rich": "rich",
}
WHEELS_HELP = (
    "On a machine with internet and the GPU machine's Python version, run "
    "`scripts/gpu-check --download-wheels wheels` (or `pip download -d wheels PACKAGES`), copy "
    "wheels/ (or shared/wheels/) next to scripts/ on the GPU machine and run scripts/gpu-check "
    "again: it installs them with `pip install --no-index --find-links wheels`."
)
MAX_FILES = 8
OOM_BATCH = 2048  # gpu-check.toml's planned out-of-memory cell (the only batch this big)
DRY_RUN_MODEL, DRY_RUN_STANDS_FOR = "tiny", "sd15"
DRY_RUN_RESOLUTION_DIVISOR = 8
DRY_RUN_MEASURE = {
    "warmup": 1,
    "min_repeats": 2,
    "max_repeats": 3,
    "max_time_s": 0.05,
    "target_rel_ci": 0.05,
    "cell_timeout_s": 120,
}
GPU_KERNEL_BACKENDS = ("math", "flash", "efficient", "cudnn")
CPU_KERNEL_BACKENDS = ("math", "flash")  # the only SDPA kernels a CPU has
REPORT_RESERVE_S = 75.0  # kept back from the run for the kernel check, report and summary
PROBE_TIMEOUT_S = 120.0
KERNEL_CHECK_TIMEOUT_S = 180.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


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


def dry_run_suite_text(gpu_suite_text: str) -> str:
    """gpu-check.toml turned into its CPU dry run: the tiny model, resolutions / 8, no compile.

    The tiny model stands in for SD1.5; rules that only shape other models' cells (SDXL) go, as
    those cells do.
    """
    data = tomllib.loads(gpu_suite_text)
    data["suite"]["name"] = "gpu-check-cpu-dry-run"
    data["suite"]["description"] = (
        "gpu-check.toml on the CPU, tiny model (scripts/gpu-check --cpu-dry-run)"
    )
    matrix = data["matrix"]
    matrix.update(model=[DRY_RUN_MODEL], device=["cpu"])
    matrix["compile"] = ["none"]  # inductor's C++ build takes minutes on a 2-core CI machine
    data["measure"] = dict(DRY_RUN_MEASURE)
    rules = []
    for rule in data.get("exclude", []):
        models = rule.get("model", [DRY_RUN_STANDS_FOR])
        if DRY_RUN_STANDS_FOR not in (models if isinstance(models, list) else [models]):
            continue
        rule.pop("model", None)
        rules.append(rule)
    data["exclude"] = rules
    for table in [matrix, *rules]:
        if "resolution" in table:
            table["resolution"] = _mapped(
                table["resolution"], lambda r: r // DRY_RUN_RESOLUTION_DIVISOR
            )
    return suite_toml(data)


def _mapped(values, function):
    if isinstance(values, list):
        return [function(v) for v in values]
    return function(values)


def suite_toml(data: dict) -> str:
    """TOML for the flat tables and arrays of tables a suite has (strings, numbers, lists)."""
    lines: list[str] = []
    for key, value in data.items():
        tables = value if isinstance(value, list) else [value]
        for table in tables:
            lines.append(f"[[{key}]]" if isinstance(value, list) else f"[{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
            lines.append("")
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def pick_device(devices: list[dict], cpu_dry_run: bool) -> dict:
    """The device to check: the CPU in a dry run, else the first CUDA GPU torch sees."""
    if cpu_dry_run:
        return next(d for d in devices if d["id"] == "cpu")
    gpus = [d for d in devices if d["id"].startswith("cuda")]
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
    """`sdbench probe --json` on the device when this checkout has the verb (another module)."""
    if importlib.util.find_spec("sdbench.commands.probe") is None:
        return None, Check("probe", True, "skipped: this checkout has no `sdbench probe` verb")
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
    from sdbench.runner.capability import unsupported_reason
    from sdbench.runner.kernels import attention_kernels_used, backends_of, kernel_mismatch
    from sdbench.runner.workload import ModelCache, build_workload

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
    if importlib.util.find_spec("sdbench.runner.kernels") is None:
        return [Check("attention kernels", True, "skipped: no sdbench.runner.kernels here")], {}
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


def judge_kernels(report: dict) -> list[Check]:
    """Every forced backend ran only its own kernel, and no two backends ran the same kernels."""
    problems, ran = [], {}
    for attention, seen in report.items():
        if "unsupported" in seen:
            continue
        if seen["mismatch"]:
            problems.append(seen["mismatch"])
        ran[attention] = tuple(seen["backends"])
    names = sorted(ran)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if ran[first] == ran[second]:
                problems.append(f"{first} and {second} ran the same kernels {list(ran[first])}")
    skipped = sorted(set(report) - set(ran))
    detail = "; ".join(problems) or (
        ", ".join(f"{a} -> {'/'.join(ran[a]) or 'none'}" for a in names)
        + (f" (unsupported here: {', '.join(skipped)})" if skipped else "")
    )
    return [Check("attention kernels", not problems and bool(ran), detail or "no backend ran")]


def row_label(row: dict) -> str:
    extras = [row["attention"]] + (
        [f"compile={row['compile']}"] if row["compile"] != "none" else []
    )
    return (
        f"{row['model']} {row['stage']} {row['width']}x{row['height']} bs{row['batch_size']} "
        f"{row['precision']} {' '.join(extras)}"
    )


def _present(value) -> bool:
    """True for a measured value; False for None and NaN (how pandas shows a null)."""
    return value is not None and value == value


def verify_rows(
    rows: list[dict], device: dict, cpu_dry_run: bool, expected_cells: int
) -> list[Check]:
    """What the results must show: every cell on the device itself, no errors, the planned OOM."""
    ok_rows = [r for r in rows if r["status"] == "ok"]
    checks = [
        Check(
            "all cells",
            len(rows) == expected_cells,
            f"{len(rows)} of {expected_cells} cells have a row",
        ),
        _device_check(rows, device, cpu_dry_run),
    ]
    broken = [r for r in rows if r["status"] in ("error", "timeout")]
    checks.append(
        Check(
            "no errors",
            not broken,
            "; ".join(f"{row_label(r)}: {r['status']}: {str(r.get('error'))[:200]}" for r in broken)
            or "no cell ended in error or timeout",
        )
    )
    planned = [r for r in rows if r["batch_size"] == OOM_BATCH]
    checks.append(
        Check(
            "planned out-of-memory cell",
            bool(planned) and all(r["status"] == "oom" for r in planned),
            "; ".join(
                f"{row_label(r)}: {r['status']} ({str(r.get('error'))[:120]})" for r in planned
            )
            or "the suite has no planned OOM cell",
        )
    )
    stages = {(r["model"], r["stage"]) for r in rows}
    unmeasured = sorted(stages - {(r["model"], r["stage"]) for r in ok_rows})
    checks.append(
        Check(
            "every stage measured",
            not unmeasured,
            f"no ok cell for {unmeasured}"
            if unmeasured
            else f"{len(ok_rows)} ok cells, {len(stages)} stages",
        )
    )
    checks.append(_memory_check(ok_rows, cpu_dry_run))
    checks.append(_telemetry_check(ok_rows, cpu_dry_run))
    if not cpu_dry_run:
        checks.append(_compile_check(rows))
    return checks


def _device_check(rows: list[dict], device: dict, cpu_dry_run: bool) -> Check:
    """Rows must come from the device asked for: a GPU row named after the CPU fell back."""
    wrong = [r for r in rows if r["device"] != device["id"]]
    if not cpu_dry_run:
        wrong += [
            r
            for r in rows
            if r["status"] == "ok"
            and (
                r.get("device_name") != device["name"] or r.get("device_name") == r.get("cpu_model")
            )
        ]
    detail = "; ".join(
        f"{row_label(r)} ran on {r['device']} ({r.get('device_name')})" for r in wrong[:5]
    )
    return Check(
        "ran on the device",
        not wrong,
        detail or f"every row on {device['id']} ({device['name']})",
    )


def _memory_check(ok_rows: list[dict], cpu_dry_run: bool) -> Check:
    column = "peak_rss_bytes" if cpu_dry_run else "peak_mem_allocated_bytes"
    missing = [row_label(r) for r in ok_rows if not _present(r.get(column)) or not r[column] > 0]
    return Check(
        "peak memory",
        not missing,
        f"no {column} for {missing[:5]}" if missing else f"{column} measured for every ok cell",
    )


NVML_COLUMNS = ("sm_clock_mhz", "max_temp_c", "avg_power_w", "energy_j")


def _telemetry_check(ok_rows: list[dict], cpu_dry_run: bool) -> Check:
    """NVIDIA GPUs: NVML must have answered for every ok cell (clocks, temperature, energy)."""
    if cpu_dry_run:
        missing = [row_label(r) for r in ok_rows if not _present(r.get("telemetry_backend"))]
        return Check(
            "telemetry",
            not missing,
            f"no telemetry_backend for {missing[:5]}" if missing else "host telemetry recorded",
        )
    if any(str(r.get("cuda") or "").startswith("rocm") for r in ok_rows):
        return Check("telemetry", True, "skipped: NVML columns are checked on NVIDIA GPUs only")
    problems = []
    for row in ok_rows:
        if "nvml" not in str(row.get("telemetry_backend")) or _present(row.get("telemetry_error")):
            problems.append(f"{row_label(row)}: NVML not read ({row.get('telemetry_error')})")
            continue
        long_enough = (row.get("telemetry_window_s") or 0) >= (row.get("energy_min_window_s") or 0)
        wanted = NVML_COLUMNS if long_enough else NVML_COLUMNS[:2]
        nulls = [c for c in wanted if not _present(row.get(c))]
        if nulls:
            problems.append(f"{row_label(row)}: null {', '.join(nulls)}")
    return Check(
        "NVML telemetry",
        not problems,
        "; ".join(problems[:5]) or f"{', '.join(NVML_COLUMNS)} present for every ok cell",
    )


def _compile_check(rows: list[dict]) -> Check:
    compiled = [r for r in rows if r["compile"] != "none"]
    good = [r for r in compiled if r["status"] == "ok" and _present(r.get("compile_s"))]
    detail = "; ".join(
        f"{row_label(r)}: {r['status']}, compile {r.get('compile_s') or 0:.0f} s"
        + (f" ({str(r.get('error'))[:150]})" if r["status"] != "ok" else "")
        for r in compiled
    )
    return Check(
        "torch.compile", bool(compiled) and len(good) == len(compiled), detail or "no compile cell"
    )


def summary_text(
    rows: list[dict], checks: list[Check], device: dict, probe: dict | None, wall_s: float
) -> str:
    """summary.txt: the machine, every cell's headline figures and statuses, then the checks."""
    from sdbench.commands.output import format_table, human_bytes

    first = rows[0] if rows else {}
    lines = [
        f"sdbench gpu-check: {device['id']} {device['name']}, run {first.get('run_id')}, {wall_s:.0f} s",
        ", ".join(
            f"{name} {first.get(name) if _present(first.get(name)) else '-'}"
            for name in ("torch", "cuda", "driver", "diffusers", "host", "cpu_model")
        ),
        "",
    ]
    table = []
    for row in rows:
        mfu = _mfu(row, probe)
        table.append(
            [
                row_label(row),
                row["status"],
                _number(row.get("median_ms")),
                _number(row.get("it_per_s")),
                _number(row.get("images_per_s")),
                f"{mfu:.1%}" if mfu is not None else None,
                human_bytes(_peak_bytes(row)),
                _number(row.get("energy_per_image_j")),
                {True: "pass", False: "FAIL"}.get(row.get("fidelity_ok"))
                if row["status"] == "ok"
                else None,
                _note(row),
            ]
        )
    headers = [
        "cell",
        "status",
        "median ms",
        "it/s",
        "img/s",
        "MFU",
        "peak mem",
        "J/image",
        "fidelity",
        "note",
    ]
    lines += [format_table(headers, table), ""]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    lines.append("statuses: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    lines += ["", "checks:"] + [
        f"  {'PASS' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in checks
    ]
    failed = [c.name for c in checks if not c.ok]
    lines.append("")
    lines.append(f"gpu-check FAILED: {', '.join(failed)}" if failed else "gpu-check passed")
    return "\n".join(lines) + "\n"


def _number(value) -> float | None:
    return float(value) if _present(value) else None


def _peak_bytes(row: dict) -> float | None:
    for column in ("peak_mem_reserved_bytes", "peak_mem_allocated_bytes", "peak_rss_bytes"):
        if _present(row.get(column)):
            return float(row[column])
    return None


def _mfu(row: dict, probe: dict | None) -> float | None:
    """The row's MFU, or the same ratio against the probe's peak when the worker had none."""
    if _present(row.get("mfu")):
        return float(row["mfu"])
    if not probe or not _present(row.get("tflops_per_s")):
        return None
    from types import SimpleNamespace

    from sdbench.runner.derived import peak_figures

    return peak_figures(row["precision"], float(row["tflops_per_s"]), SimpleNamespace(probe=probe))[
        "mfu"
    ]


def _note(row: dict) -> str | None:
    if row["status"] == "ok":
        warnings = row.get("warnings")
        return f"{len(warnings)} warning(s)" if warnings is not None and len(warnings) else None
    return str(row.get("error") or "")[:90] or None


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


if __name__ == "__main__":
    sys.exit(main())
