"""Measure one cell in-process: build, (compile,) time, read memory, telemetry and fidelity.

Returns the row's measured fields. Every outcome is a row: unsupported, oom, error or ok.
"""

from __future__ import annotations

import torch

from sdbench.cell import Cell, Measure
from sdbench.devices.probe import worker_probe
from sdbench.levers import describe as describe_levers
from sdbench.models.flops import cell_flops
from sdbench.models.workload import ModelCache, build_workload
from sdbench.quality import probe_warnings, telemetry_warnings, timing_warnings
from sdbench.runner import inject, memory
from sdbench.runner.capability import unsupported_reason
from sdbench.runner.compile import compile_workload
from sdbench.runner.derived import derived_figures, energy_per_image_j
from sdbench.runner.fidelity import ReferenceCache, fidelity
from sdbench.runner.memory_modes import apply_memory, memory_warnings
from sdbench.runner.quantise import apply_quant
from sdbench.runner.serve import as_pipeline, serve_cell
from sdbench.runner.timing import Timer, time_calls
from sdbench.runner.worker import WorkerState
from sdbench.stats import summarize
from sdbench.telemetry import open_telemetry


def new_state(device: str) -> WorkerState:
    return WorkerState(
        models=ModelCache(),
        references=ReferenceCache(),
        telemetry={"backend": open_telemetry(device)},
        probe=worker_probe(device),  # cached per device; measured once when not yet cached
    )


def run_cell(cell: Cell, measure: Measure, state: WorkerState) -> dict:
    """The measured fields of one cell's row."""
    reason = unsupported_reason(as_pipeline(cell) if cell.stage == "serve" else cell)
    if reason:
        return {"status": "unsupported", "error": reason}
    fault = inject.fault_for(cell)
    try:
        if fault and fault != "nan":
            inject.trigger(fault)
        if cell.stage == "serve":
            return serve_cell(cell, measure, state)
        return _measure(cell, measure, state, fault)
    except Exception as error:
        if memory.is_out_of_memory(error):
            return {"status": "oom", "error": _one_line(error), **memory.peaks(cell.device)}
        return {"status": "error", "error": f"{type(error).__name__}: {_one_line(error)}"}
    finally:
        if cell.compile != "none":
            torch._dynamo.reset()
        memory.release(cell.device)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:500] if text else type(error).__name__


def _measure(cell: Cell, measure: Measure, state: WorkerState, fault: str | None) -> dict:
    workload = build_workload(cell, state.models)
    apply_quant(workload)
    apply_memory(workload)
    # After the build: components of the previous stage are gone, this stage's weights stay.
    memory.reset_peaks(cell.device)
    timer = Timer(cell.device, workload.synchronize)
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

    timing = time_calls(call, timer, measure, on_window)
    row: dict = {"status": "ok", "error": None, "warmup": measure.warmup, "timed_s": timing.timed_s}
    row["first_call_ms"] = timing.first_call_ms
    summary = summarize(timing.samples_ms)
    if compiled is not None:
        compiled.close()
        row.update(compiled.columns(summary.median_ms))
    row.update(summary.as_columns())
    row.update(memory.peaks(cell.device))
    row.update(window)
    row.update(derived_figures(cell, workload.images_per_call, summary.median_ms, flops, state))
    row["energy_per_image_j"] = energy_per_image_j(
        cell, workload.images_per_call, row.get("energy_j"), row.get("n_samples")
    )
    output = last_output[0]
    if fault == "nan":
        output = torch.full_like(output, float("nan"))
    row.update(fidelity(workload, output, state.references))
    row["warnings"] = timing_warnings(
        timing.samples_ms, timing.warmup_ms, summary.rel_ci_half_width, measure.target_rel_ci
    )
    row["warnings"] += telemetry_warnings(row) + probe_warnings(row) + memory_warnings(workload)
    row["warnings"] += compiled.warnings() if compiled is not None else []
    if row["nonfinite"]:
        row["warnings"].append(
            "output has NaN/inf: this configuration is numerically broken (fidelity fails)"
        )
    elif not row["fidelity_ok"]:
        levers = describe_levers(cell.memory, cell.quant, cell.cache)
        settings = f"{cell.precision} {levers}".strip()
        row["warnings"].append(
            f"output differs from the fp32 reference by {row['ref_rel_err']:.2g} (relative L2), above the "
            f"{settings} tolerance {row['fidelity_tolerance']:.2g}"
        )
    return row
