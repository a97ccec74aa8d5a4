"""How long each cell of a run should take, before it runs: counted FLOPs over the device's peak.

One call of a cell costs `flops / (efficiency x peak) + overhead`; the cell makes its warm-up and
timed calls (as many as `[measure]` will ask for when the CI target is not met early), plus one
fp32 reference call per shape and worker for fidelity; the first cell of each worker also pays
the worker's start and model build, and a device whose probe is not cached yet pays the probe.

The peak is, in order: the device's cached `sdbench probe` (the run makes one on its first cell),
the catalogue's datasheet figure for a GPU, or a deliberately modest assumption per CPU core.
Efficiencies per stage are those the quick-matrix run measured on the 2-core development VM
(2026-11-26, quiet: UNet 46-52% of the probed peak, VAE decode 76-87%, text encoder 29-53%); on
GPUs they are assumptions. `EtaClock` corrects all of them as cells finish. No torch here.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sdbench.cell import Cell, Measure
from sdbench.devices.device import device_kind
from sdbench.errors import SdbenchError

EFFICIENCY = {
    "cpu": {"unet": 0.47, "vae_decode": 0.80, "text_encoder": 0.40},
    "gpu": {"unet": 0.40, "vae_decode": 0.40, "text_encoder": 0.15},
}
CALL_OVERHEAD_S = {"cpu": 0.005, "gpu": 0.015}  # Python and kernel launches of an eager call
WORKER_START_S = 5.0  # process start 2.2 s (benchmarks/run_efficiency.py) + model build ~1-3 s
PROBE_S = {"cpu": 6.0, "gpu": 20.0}
# Used only when no usable probe is cached (the run makes one): dense TFLOP/s per logical CPU by
# vector extension, from the quiet 2-core development VM's probe (AVX-512 with BF16: fp32 0.483,
# bf16 0.973, fp16 0.002 for 2 CPUs). Without AVX-512 oneDNN has no bf16 kernels: a UNet-sized
# bf16 convolution ran 78x slower than fp32 on the AVX2 (Zen 3) dev VM, 2026-12-01.
BF16_WITHOUT_AVX512 = 1 / 78
ASSUMED_FP32_TFLOPS_PER_CPU = {"avx512f": 0.24, "avx2": 0.1, "": 0.03}


@dataclass(frozen=True)
class DevicePeak:
    """What one device is expected to achieve: dense TFLOP/s per precision, and where that came from."""

    device: str
    name: str
    tflops: dict[str, float]
    source: str  # "probe" | "datasheet" | "assumed"

    @property
    def kind(self) -> str:
        return "cpu" if device_kind(self.device) == "cpu" else "gpu"


def device_peaks(devices: Iterable[dict]) -> dict[str, DevicePeak]:
    """A DevicePeak per device dict (`id`, and `name` where detection gave one)."""
    return {d["id"]: device_peak(d["id"], d.get("name") or d["id"]) for d in devices}


def device_peak(device: str, name: str) -> DevicePeak:
    probe = cached_probe(name)
    if probe and probe.get("dense_tflops") and not _busy(probe):
        return DevicePeak(device, name, dict(probe["dense_tflops"]), "probe")
    if device_kind(device) != "cpu":
        from sdbench.devices.probe import datasheet_tflops

        sheet = datasheet_tflops(name, device_kind(device))
        if sheet:
            return DevicePeak(device, name, sheet, "datasheet")
        return DevicePeak(
            device, name, {"fp32": 10.0, "tf32": 20.0, "fp16": 40.0, "bf16": 40.0}, "assumed"
        )
    return DevicePeak(
        device, name, assumed_cpu_tflops(_cpu_flags(), os.cpu_count() or 1), "assumed"
    )


def assumed_cpu_tflops(flags: set[str], cpus: int) -> dict[str, float]:
    """A CPU's likely dense TFLOP/s per precision from its vector extensions, before any probe."""
    extension = next((e for e in ASSUMED_FP32_TFLOPS_PER_CPU if e in flags or not e), "")
    fp32 = ASSUMED_FP32_TFLOPS_PER_CPU[extension] * cpus
    if flags & {"avx512_bf16", "amx_bf16"}:
        bf16 = 2.0 * fp32
    else:  # oneDNN emulates bf16 with AVX-512; below that, reference kernels
        bf16 = fp32 * (0.5 if "avx512bw" in flags else BF16_WITHOUT_AVX512)
    return {
        "fp32": fp32,
        "tf32": fp32,
        "bf16": bf16,
        "fp16": fp32 * (2.0 if "amx_fp16" in flags else 0.01),
        "fp8": fp32 * 0.01,
    }


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass  # not Linux: no flags known, the most modest assumption applies
    return set()


def cached_probe(device_name: str) -> dict | None:
    """The newest cached probe of a device by that name (any torch build or thread count)."""
    from sdbench.devices.probe import PROBE_VERSION, cache_dir

    newest: tuple[str, dict] | None = None
    for path in cache_dir().glob("probe-*.json"):
        try:
            probe = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if probe.get("device_name") != device_name or probe.get("probe_version") != PROBE_VERSION:
            continue
        stamp = str(probe.get("probed_at") or "")
        if newest is None or stamp > newest[0]:
            newest = (stamp, probe)
    return None if newest is None else newest[1]


def _busy(probe: dict) -> bool:
    """A probe taken with more runnable work than CPUs under-measures the device (by up to 1000x
    on a CPU whose OpenMP threads spin); its figures would make every estimate absurd."""
    load, cpus = probe.get("load_1m"), probe.get("logical_cpus") or os.cpu_count() or 1
    return load is not None and load > cpus


def call_seconds(cell: Cell, peak: DevicePeak, precision: str | None = None) -> float:
    """Expected seconds of one eager call of `cell` (at `precision`, default the cell's)."""
    precision = precision or cell.precision
    flops_by_stage = stage_flops(cell)
    tflops = peak.tflops.get(precision) or peak.tflops.get("fp32") or 0.1
    seconds = CALL_OVERHEAD_S[peak.kind]
    for stage, flops in flops_by_stage.items():
        efficiency = EFFICIENCY[peak.kind].get(stage, 0.4)
        seconds += flops / (efficiency * tflops * 1e12)
    return seconds


def stage_flops(cell: Cell) -> dict[str, float]:
    """FLOPs of one call per stage it runs (a pipeline call runs all three); {} when not tabled."""
    from sdbench.analysis.costs import cost_table, stage_cost
    from sdbench.analysis.workload import ImageWorkload

    table = cost_table()
    if not (table["model"] == _tabled_name(cell.model)).any():
        return {}  # the tiny test model and any model not in the shipped table: overhead only
    parts = {"text_encoder": 1, "unet": cell.steps, "vae_decode": 1}
    if cell.stage not in ("pipeline", "serve"):  # a serve request is one whole pipeline call
        parts = {cell.stage: 1}
    workload = ImageWorkload(
        cell.model, cell.height, cell.width, cell.batch_size, cell.precision,
        attention=cell.attention, cfg=cell.cfg,
    )  # fmt: skip
    out = {}
    for stage, calls in parts.items():
        try:
            cost = stage_cost(workload, stage)
        except SdbenchError:
            return {}
        out[stage] = calls * cost.flops
    return out


def _tabled_name(model: str) -> str:
    from sdbench.models.registry import MODELS, same_architecture

    return same_architecture(model) if model in MODELS else model


def timed_calls(call_s: float, measure: Measure) -> int:
    """Timed repeats `[measure]` asks for when the CI target is not met before max_time_s."""
    if call_s <= 0:
        return measure.max_repeats
    by_time = math.ceil(measure.max_time_s / call_s)
    return max(measure.min_repeats, min(measure.max_repeats, by_time))


def estimate_cells(
    cells: Sequence[Cell], measure: Measure, peaks: dict[str, DevicePeak]
) -> dict[str, float]:
    """Expected wall seconds per cell_id, in run order (start-up costs on each group's first cell)."""
    seconds: dict[str, float] = {}
    started_groups: set[tuple] = set()
    referenced: set[tuple] = set()
    probed: set[str] = set()
    for cell in cells:
        peak = peaks.get(cell.device) or device_peak(cell.device, cell.device)
        call = call_seconds(cell, peak)
        if cell.stage == "serve":
            total = serve_seconds(cell, call, measure)
        else:
            total = (measure.warmup + timed_calls(call, measure) + 1) * call  # +1: fidelity's
        shape = (*cell.group, cell.stage, cell.height, cell.width, cell.batch_size)
        if shape not in referenced and cell.stage != "serve":
            referenced.add(shape)
            total += call_seconds(cell, peak, "fp32") * 1.15  # fp32 math-attention reference
        if cell.group not in started_groups:
            started_groups.add(cell.group)
            total += WORKER_START_S
        if cell.device not in probed:
            probed.add(cell.device)
            total += 0.0 if peak.source == "probe" else PROBE_S[peak.kind]
        seconds[cell.cell_id] = total
    return seconds


def serve_seconds(cell: Cell, batch_call_s: float, measure: Measure) -> float:
    """A serve cell: warm-up and calibration of each batch size (`batch_call_s` is one call at
    max_batch; smaller batches taken as proportionally shorter), then its arrivals' span (an
    "auto" cell may serve up to three times; its span is taken twice)."""
    from sdbench.serving.server import CALIBRATION_CALLS

    calibration = sum(
        (max(1, measure.warmup) + CALIBRATION_CALLS) * batch_call_s * size / cell.batch_size
        for size in range(1, cell.batch_size + 1)
    )
    if cell.requests is not None and cell.rate_rps:
        span = cell.requests / cell.rate_rps
    else:
        span = cell.duration_s or measure.cell_timeout_s * 0.8
    return calibration + span * (2 if cell.serve_mode == "auto" else 1)


class EtaClock:
    """Seconds left in a run: the remaining cells' expected cost, scaled by how the run is going.

    Devices run side by side, so each device is a lane. A lane's finished cells say how much
    slower or faster than expected it runs (seconds it took to finish them / their expected
    seconds); its remaining cells are scaled by that, less the time already spent on the cell in
    flight. The run ends when the slowest lane does.
    """

    def __init__(
        self, expected_s: dict[str, float], device_of: dict[str, str], done: Iterable[str] = ()
    ):
        self.expected_s = dict(expected_s)
        self.device_of = dict(device_of)
        self.finished = set(done)
        lanes = set(device_of.values())
        self.lane_done_expected_s = dict.fromkeys(lanes, 0.0)
        self.lane_done_at_s = dict.fromkeys(lanes, 0.0)
        self.lane_start_s = dict.fromkeys(lanes, 0.0)

    def finish(self, cell_id: str, elapsed_s: float, ran: bool = True) -> None:
        """Cell `cell_id` finished `elapsed_s` seconds after the clock's run started.

        A cell no worker ran (`ran` False: the capability check settled it, or it was skipped)
        says nothing of how fast its lane runs, and a lane none of whose cells ran yet starts
        when it is settled: counted as cells of their expected cost done at that moment, the
        capability check's start-up made every cell left look 30 times slower (an ETA of 28 h
        for a run of minutes).
        """
        if cell_id in self.finished or cell_id not in self.expected_s:
            return
        self.finished.add(cell_id)
        lane = self.device_of[cell_id]
        if not ran:
            if self.lane_done_expected_s[lane] == 0:
                self.lane_start_s[lane] = elapsed_s
            return
        self.lane_done_expected_s[lane] += self.expected_s[cell_id]
        self.lane_done_at_s[lane] = elapsed_s

    def remaining_s(self, elapsed_s: float) -> float:
        left = 0.0
        for lane, done_expected in self.lane_done_expected_s.items():
            todo = sum(
                seconds
                for cell_id, seconds in self.expected_s.items()
                if self.device_of[cell_id] == lane and cell_id not in self.finished
            )
            if todo == 0:
                continue
            start = self.lane_start_s[lane]
            done_at = max(self.lane_done_at_s[lane], start)
            worked = done_at - start
            speed = worked / done_expected if done_expected > 0 and worked > 0 else 1.0
            left = max(left, todo * speed - (elapsed_s - done_at))
        return max(left, 0.0)

    @property
    def fraction_done(self) -> float:
        total = sum(self.expected_s.values())
        done = sum(self.expected_s[c] for c in self.finished if c in self.expected_s)
        return done / total if total > 0 else 1.0
