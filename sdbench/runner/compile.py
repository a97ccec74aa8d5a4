"""The compile axis: wrap a workload's call in torch.compile and account for compile time and recompiles.

`compile_s` is what the first compiled call costs beyond a steady-state call (tracing, inductor
code generation, autotuning, CUDA graph capture); it is timed on an explicit first call before
warm-up, so it never leaks into the samples. `recompiles` counts Dynamo compilations of a frame
it had already compiled (guard failures), read from Dynamo's compile ids ("frame/attempt").
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch._dynamo.callback import CallbackArgs, callback_handler

from sdbench.models.workload import Workload


class CompileRecord:
    """Dynamo compilations seen while a compiled workload runs, and its first call's time."""

    def __init__(self) -> None:
        self.compile_ids: list[str] = []
        self.first_call_ms: float | None = None
        self.compiles_in_first_call = 0
        self._callback = callback_handler.register_start_callback(self._on_compile)

    def _on_compile(self, args: CallbackArgs) -> None:
        self.compile_ids.append(str(args.compile_id))

    def close(self) -> None:
        """Stop listening (torch._dynamo.reset(), run after every compiled cell, also does)."""
        if self._callback in callback_handler.start_callbacks:
            callback_handler.remove_start_callback(self._callback)

    @property
    def recompiles(self) -> int:
        return sum(1 for compile_id in self.compile_ids if _attempt_of(compile_id) > 0)

    @property
    def compiles_after_first_call(self) -> int:
        return len(self.compile_ids) - self.compiles_in_first_call

    def columns(self, median_ms: float | None) -> dict[str, object]:
        """compile_s (first call beyond a steady one), recompiles and first_call_ms, as columns."""
        compile_s = None
        if self.first_call_ms is not None and median_ms is not None:
            compile_s = max(0.0, self.first_call_ms - median_ms) / 1000.0
        return {
            "compile_s": compile_s,
            "recompiles": self.recompiles,
            "first_call_ms": self.first_call_ms,  # the compiling call, before warm-up
        }

    def warnings(self) -> list[str]:
        count = self.compiles_after_first_call
        if count == 0:
            return []
        return [
            f"torch.compile compiled {count} more time(s) after the first call, so some samples "
            "include compilation: make the inputs' shapes and Python values constant, or run "
            'with TORCH_LOGS="recompiles" to see why'
        ]


def _attempt_of(compile_id: str) -> int:
    """The per-frame compile count of a Dynamo compile id such as "3/1" or "3/1_2"."""
    try:
        return int(compile_id.rsplit("/", 1)[1].split("_")[0])
    except (IndexError, ValueError):
        return 0


def compile_workload(
    workload: Workload, time_call: Callable[[Callable[[], object]], float]
) -> CompileRecord:
    """Compile the stage's whole call (graph breaks are fine) and time its first call.

    `time_call` times one call in milliseconds on the cell's device (a `timing.Timer`).
    """
    mode = None if workload.cell.compile == "default" else workload.cell.compile
    compiled = torch.compile(workload.run, mode=mode, dynamic=False)
    if workload.cell.compile == "reduce-overhead":

        def run_marked(modules, inputs):
            # Inference calls are separate CUDA-graph iterations; without the mark the graph
            # tree may refuse to replay while an earlier call's output is still alive.
            torch.compiler.cudagraph_mark_step_begin()
            return compiled(modules, inputs)

        workload.run = run_marked
    else:
        workload.run = compiled
    record = CompileRecord()
    try:
        record.first_call_ms = time_call(workload.call)
    except BaseException:
        record.close()
        raise
    record.compiles_in_first_call = len(record.compile_ids)
    return record
