"""Measure one cell in-process: build, (compile,) time, read memory, telemetry and fidelity.

`measure_cell` is the one measuring path: the worker times with `time_calls`, the pytest plugin
with pytest-benchmark; they differ only in the sampler passed in. Every outcome is a
`Measurement`: unsupported, oom, error or ok.
"""

from __future__ import annotations

import torch

from sdbench.cell import Cell, Measure, as_pipeline
from sdbench.devices.probe import worker_probe
from sdbench.levers import describe as describe_levers
from sdbench.models.flops import cell_flops
from sdbench.models.workload import ModelCache, Workload, build_workload
from sdbench.quality import probe_warnings, telemetry_warnings, timing_warnings
from sdbench.runner import inject, memory
from sdbench.runner.capability import unsupported_reason
from sdbench.runner.compile import compile_workload
from sdbench.runner.derived import derived_figures, energy_per_image_j
from sdbench.runner.fidelity import ReferenceCache, fidelity
from sdbench.runner.measurement import Measurement
from sdbench.runner.memory_modes import apply_memory, memory_warnings
from sdbench.runner.quantise import apply_quant
from sdbench.runner.serve import serve_cell
from sdbench.runner.state import WorkerState
from sdbench.runner.timing import Sampler, Timer, time_calls
from sdbench.stats import Summary, summarize
from sdbench.telemetry import open_telemetry


def new_state(device: str) -> WorkerState:
    return WorkerState(
        models=ModelCache(),
        references=ReferenceCache(),
        telemetry={"backend": open_telemetry(device)},
        probe=worker_probe(device),  # cached per device; measured once when not yet cached
    )


def run_cell(cell: Cell, measure: Measure, state: WorkerState) -> dict:
    """The measured fields of one cell's row, timed by the worker's own loop."""
    return measure_cell(cell, measure, state, time_calls).columns()


def measure_cell(
    cell: Cell, measure: Measure, state: WorkerState, sampler: Sampler = time_calls
) -> Measurement:
    """Measure one cell; `sampler` runs the warm-up and the timed repeats."""
    reason = unsupported_reason(as_pipeline(cell) if cell.stage == "serve" else cell)
    if reason:
        return Measurement("unsupported", reason)
    fault = inject.fault_for(cell)
    try:
        if fault and fault != "nan":
            inject.trigger(fault)
        if cell.stage == "serve":  # one request = one image: its own loop, its own columns
            return Measurement.from_columns(serve_cell(cell, measure, state))
        return _measure(cell, measure, state, sampler, fault)
    except Exception as error:
        if memory.is_out_of_memory(error):
            return Measurement("oom", _one_line(error), memory=memory.peaks(cell.device))
        return Measurement("error", f"{type(error).__name__}: {_one_line(error)}")
    finally:
        if cell.compile != "none":
            torch._dynamo.reset()
        memory.release(cell.device)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:500] if text else type(error).__name__


def _measure(
    cell: Cell, measure: Measure, state: WorkerState, sampler: Sampler, fault: str | None
) -> Measurement:
    workload = build_workload(cell, state.models)
    apply_quant(workload)
    apply_memory(workload)
    # After the build: components of the previous stage are gone, this stage's weights stay.
    memory.reset_peaks(cell.device)
    timer = Timer(cell.device)
    compiled = compile_workload(workload, timer) if cell.compile != "none" else None
    flops = cell_flops(cell)
    last_output: list[torch.Tensor] = []

    def call() -> None:
        last_output[:] = [workload.call()]

    telemetry = state.telemetry["backend"]
    window: dict = {}

    def on_window(opening: bool) -> None:
        if opening:
            telemetry.start()
        else:
            window.update(telemetry.stop())

    timing = sampler(call, timer, measure, on_window)
    summary = summarize(timing.samples_ms) if timing.samples_ms else None
    compile_columns: dict = {}
    if compiled is not None:
        compiled.close()
        compile_columns = compiled.columns(summary.median_ms if summary else None)
    derived = _derived(cell, workload, summary, flops, window, state)
    output = last_output[0]
    if fault == "nan":
        output = torch.full_like(output, float("nan"))
    checked = fidelity(workload, output, state.references)
    row = {**window, **derived, **checked}
    warnings = timing_warnings(summary, timing.warmup_ms, measure.target_rel_ci) if summary else []
    warnings += telemetry_warnings(row) + probe_warnings(row) + memory_warnings(workload)
    warnings += compiled.warnings() if compiled is not None else []
    warnings += _fidelity_warnings(cell, checked)
    return Measurement(
        "ok",
        summary=summary,
        warmup_ms=timing.warmup_ms,
        timed_s=timing.timed_s,
        memory=memory.peaks(cell.device),
        telemetry=window,
        derived=derived,
        fidelity=checked,
        compile=compile_columns,
        warnings=warnings,
    )


def _derived(
    cell: Cell,
    workload: Workload,
    summary: Summary | None,
    flops: int,
    window: dict,
    state: WorkerState,
) -> dict:
    """Rates, MFU and energy per image, all from the summary's median and the timed window."""
    n_samples = len(summary.samples_ms) if summary else 0
    derived: dict = {"flops": float(flops)}
    if summary is not None:
        median_ms = summary.median_ms
        derived |= derived_figures(cell, workload.images_per_call, median_ms, flops, state)
    derived["energy_per_image_j"] = energy_per_image_j(
        cell, workload.images_per_call, window.get("energy_j"), n_samples
    )
    return derived


def _fidelity_warnings(cell: Cell, checked: dict) -> list[str]:
    if checked["nonfinite"]:
        return ["output has NaN/inf: this configuration is numerically broken (fidelity fails)"]
    if not checked["fidelity_ok"]:
        settings = (
            f"{cell.precision} {describe_levers(cell.memory, cell.quant, cell.cache)}".strip()
        )
        return [
            f"output differs from the fp32 reference by {checked['ref_rel_err']:.2g} (relative L2), "
            f"above the {settings} tolerance {checked['fidelity_tolerance']:.2g}"
        ]
    return []
