"""The device's own peak: achievable dense-matmul TFLOP/s per precision and copy bandwidth.

`measure_peaks` runs in a process that has torch (the worker, or `python -m
sdbench.devices.probe`); `load_or_probe` caches its answer per device name, torch version and
(on the CPU) thread count in `$XDG_CACHE_HOME/sdbench` (default `~/.cache/sdbench`). The manager
side calls `probe_in_subprocess` and never imports torch.

Method: square matmuls whose size is chosen from a small gauge call so that one call takes tens
of milliseconds (capped in size), repeated within a time budget; the fastest repeat counts
(the achievable peak, not the typical). Bandwidth: `dst.copy_(src)` of a large buffer, counted
as bytes read + bytes written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sdbench.devices.backend import open_backend
from sdbench.devices.device import device_kind
from sdbench.errors import DeviceError, SdbenchError
from sdbench.usercache import cache_dir

PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "fp8")
PROBE_VERSION = 3  # bump when the method changes so old cached figures are measured again


def cache_path(device_name: str, torch_version: str, threads: int | None) -> Path:
    key = f"{device_name}|{torch_version}|{threads}|v{PROBE_VERSION}"
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device_name).strip("-")[:60] or "device"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir() / f"probe-{slug}-{digest}.json"


def _budgets(kind: str) -> dict[str, float]:
    """Seconds and sizes per device kind: the CPU probe must stay at a few seconds in all."""
    if kind == "cpu":
        return {"matmul_s": 0.6, "call_s": 0.5, "gauge_n": 256, "max_n": 2048, "copy_bytes": 2**28}
    return {"matmul_s": 1.0, "call_s": 0.05, "gauge_n": 1024, "max_n": 16384, "copy_bytes": 2**30}


def _best_seconds(fn: Callable[[], object], sync: Callable[[], None], budget_s: float) -> float:
    """Fastest per-call time over repeats until `budget_s` is spent (at least three repeats)."""
    sync()
    begin = time.perf_counter()
    fn()
    sync()
    first_s = time.perf_counter() - begin
    calls = max(1, int(0.02 / max(first_s, 1e-9)))  # a repeat long enough for a coarse clock
    best_s, repeats, deadline = first_s, 0, time.perf_counter() + budget_s
    while repeats < 3 or time.perf_counter() < deadline:
        begin = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        best_s = min(best_s, (time.perf_counter() - begin) / calls)
        calls = max(1, int(0.02 / max(best_s, 1e-9)))
        repeats += 1
        if first_s > budget_s:  # a pathologically slow dtype: one more call is all it gets
            break
    return best_s


def _synchronizer(torch, device: str) -> Callable[[], None]:
    return open_backend(device, torch).synchronize


def _precision_support(torch, device: str) -> dict[str, str | None]:
    """None for each precision this device can multiply in, else why it is skipped."""
    kind = device_kind(device)
    support: dict[str, str | None] = dict.fromkeys(("fp32", "fp16", "bf16"), None)
    support["tf32"] = "TF32 tensor cores exist only on NVIDIA GPUs of compute capability 8.0+"
    support["fp8"] = "fp8 matmul needs an NVIDIA GPU of compute capability 8.9+"
    if kind == "cuda" and not torch.version.hip:
        major, minor = torch.cuda.get_device_capability(device)
        if major >= 8:
            support["tf32"] = None
        if (major, minor) >= (8, 9) and hasattr(torch, "_scaled_mm"):
            support["fp8"] = None
        if not torch.cuda.is_bf16_supported():
            support["bf16"] = "this GPU has no bf16 arithmetic"
    return support


def _matmul_call(torch, device: str, precision: str, n: int) -> Callable[[], object]:
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype if precision != "fp8" else torch.float16)
    b = torch.randn(n, n, device=device, dtype=a.dtype)
    if precision == "fp8":
        a8, b8 = a.to(torch.float8_e4m3fn), b.to(torch.float8_e4m3fn).t()  # b column-major
        one = torch.ones((), device=device, dtype=torch.float32)
        return lambda: torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    return lambda: torch.mm(a, b)


def _matmul_tflops(torch, device: str, precision: str, budget: dict[str, float]) -> float:
    """Achievable dense matmul TFLOP/s at the largest size whose call fits the call budget.

    Sizes double from a small start while one call stays under an eighth of `call_s` (a doubling
    costs 8x the time): small matmuls under-use the device, and some dtypes have pathologically
    slow CPU kernels (fp16 on CPUs without AVX512-FP16), which stop the growth early.
    """
    sync = _synchronizer(torch, device)
    allow = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        n = int(budget["gauge_n"])
        while 2 * n <= budget["max_n"]:
            seconds = _best_seconds(_matmul_call(torch, device, precision, n), sync, 0.0)
            if 8 * seconds > budget["call_s"]:
                break
            n *= 2
        seconds = _best_seconds(_matmul_call(torch, device, precision, n), sync, budget["matmul_s"])
        return 2 * n**3 / seconds / 1e12
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allow


def _conv_tflops(torch, device: str, precision: str, budget: dict[str, float]) -> float:
    """TFLOP/s of a 3x3 convolution shaped like a UNet block (320 channels, 64x64 latents).

    Diffusion models are mostly convolutions and matmuls; on some devices the convolution
    library outruns the BLAS matmul (oneDNN vs MKL on AMD CPUs), so the dense peak is the faster
    of the two and MFU never exceeds 1 because of the probe's choice of kernel.
    """
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
    batch, channels, full_side = (1, 320, 64) if device == "cpu" else (8, 640, 64)
    weight = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype)
    sync = _synchronizer(torch, device)
    allow = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = precision == "tf32"

    def call(side: int) -> Callable[[], object]:
        images = torch.randn(batch, channels, side, side, device=device, dtype=dtype)
        return lambda: torch.nn.functional.conv2d(images, weight, padding=1)

    try:
        side = 16  # grow like the matmul: a pathologically slow dtype stops early
        while side < full_side and 4 * _best_seconds(call(side), sync, 0.0) <= budget["call_s"]:
            side *= 2
        seconds = _best_seconds(call(side), sync, budget["matmul_s"])
    finally:
        torch.backends.cudnn.allow_tf32 = allow
    return 2 * batch * channels * channels * 9 * side * side / seconds / 1e12


def _copy_bandwidth_gbs(torch, device: str, budget: dict[str, float]) -> float:
    """GB/s of a large device-to-device copy, counting the bytes read and the bytes written."""
    size_bytes = int(budget["copy_bytes"])
    if device_kind(device) == "cuda":
        size_bytes = min(size_bytes, torch.cuda.get_device_properties(device).total_memory // 8)
    source = torch.empty(size_bytes // 4, device=device, dtype=torch.float32).uniform_()
    target = torch.empty_like(source)
    seconds = _best_seconds(lambda: target.copy_(source), _synchronizer(torch, device), 0.5)
    return 2 * source.numel() * 4 / seconds / 1e9


def device_name(torch, device: str) -> str:
    return open_backend(device, torch).name()


def measure_peaks(device: str) -> dict:
    """Probe `device` now (imports torch): matmul TFLOP/s per precision and copy GB/s."""
    import torch

    kind = device_kind(device)
    budget = _budgets(kind)
    begin = time.perf_counter()
    tflops: dict[str, float] = {}
    conv_tflops: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for precision, reason in _precision_support(torch, device).items():
        if reason:
            skipped[precision] = reason
            continue
        try:
            tflops[precision] = _matmul_tflops(torch, device, precision, budget)
            if precision != "fp8":
                conv_tflops[precision] = _conv_tflops(torch, device, precision, budget)
        except (RuntimeError, TypeError, NotImplementedError) as error:
            # the kernel is missing for this dtype on this device/build: a finding, not a crash
            skipped[precision] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    try:
        bandwidth_gbs = _copy_bandwidth_gbs(torch, device, budget)
    except RuntimeError as error:  # e.g. no room for the copy buffers on a GPU that is in use
        bandwidth_gbs = None
        skipped["bandwidth"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    if kind == "cuda":
        torch.cuda.empty_cache()  # hand the probe's buffers back before the worker builds models
    return {
        "device": device,
        "device_name": device_name(torch, device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads() if kind == "cpu" else None,
        "matmul_tflops": {p: tflops[p] for p in PRECISIONS if p in tflops},
        "conv_tflops": {p: conv_tflops[p] for p in PRECISIONS if p in conv_tflops},
        # the device's achievable dense peak, what MFU divides by: the faster of the two kernels
        "dense_tflops": {
            p: max(tflops[p], conv_tflops.get(p, 0.0)) for p in PRECISIONS if p in tflops
        },
        "skipped": skipped,
        "bandwidth_gbs": bandwidth_gbs,
        "probe_s": time.perf_counter() - begin,
        # other work on the machine lowers every figure: kept so a busy probe can be spotted
        "load_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "logical_cpus": os.cpu_count(),
        "probed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "probe_version": PROBE_VERSION,
    }


def load_or_probe(device: str, refresh: bool = False) -> dict:
    """The cached probe of this device (same name, torch and threads), else a fresh one, cached."""
    import torch

    kind = device_kind(device)
    path = cache_path(
        device_name(torch, device),
        torch.__version__,
        torch.get_num_threads() if kind == "cpu" else None,
    )
    if not refresh:
        try:
            cached = json.loads(path.read_text())
            if _well_formed(cached) and not _taken_busier_than_now(cached):
                return {**cached, "device": device, "cache_path": str(path), "cached": True}
        except (OSError, ValueError):
            pass  # no cache yet, or a damaged one: measure again
    result = measure_peaks(device)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(result, indent=2))
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only home: the figures are still used, just measured again next time
    return {**result, "cache_path": str(path), "cached": False}


def _well_formed(cached: object) -> bool:
    """A cache of the right shape: anything else (edited, older, foreign) is a missing cache."""
    if not isinstance(cached, dict) or not isinstance(cached.get("device_name"), str):
        return False
    figures = [cached.get(k, {}) for k in ("conv_tflops", "dense_tflops", "skipped")]
    figures.append(cached.get("matmul_tflops"))
    if not all(isinstance(f, dict) for f in figures):
        return False
    numbers = [v for f in figures[:2] + figures[3:] for v in f.values()]
    numbers += [cached[k] for k in ("bandwidth_gbs",) if cached.get(k) is not None]
    load = cached.get("load_1m", 0)
    return all(_positive(v) for v in numbers) and (load == 0 or _positive(load))


def _positive(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _taken_busier_than_now(cached: dict) -> bool:
    """A probe taken while the machine was overloaded under-measures it: redo it once calmer."""
    then = cached.get("load_1m")
    if then is None or not hasattr(os, "getloadavg"):
        return False
    cpus = os.cpu_count() or 1
    return then > cpus and os.getloadavg()[0] < then / 2


def datasheet_tflops(device_name: str, kind: str) -> dict[str, float]:
    """The catalogue's dense peak per precision for a known GPU; empty for CPUs and unknown GPUs."""
    if kind == "cpu":
        return {}
    from sdbench.gpus import find_gpu

    try:
        gpu = find_gpu(device_name)
    except SdbenchError:
        return {}  # not in the catalogue (or ambiguous): no datasheet figure to show
    peaks = {p: gpu.peak_tflops(p) for p in ("fp32", "fp16")}
    if gpu.has_tf32:
        peaks["tf32"] = gpu.peak_tflops("tf32")
    if gpu.bf16:
        peaks["bf16"] = gpu.peak_tflops("bf16")
    if gpu.fp8_tensor_tflops:
        peaks["fp8"] = gpu.fp8_tensor_tflops
    return {p: float(v) for p, v in peaks.items() if v}


def worker_probe(device: str, refresh: bool = False) -> dict:
    """What a worker records with every row: the (cached) probe plus the datasheet peaks."""
    probe = load_or_probe(device, refresh=refresh)
    probe["datasheet_tflops"] = datasheet_tflops(probe["device_name"], device.split(":")[0])
    return probe


def probe_in_subprocess(device: str, refresh: bool = False, timeout_s: float = 600) -> dict:
    """Run the probe in a fresh Python with torch (the caller stays torch-free)."""
    command = [sys.executable, "-m", "sdbench.devices.probe", device] + (
        ["--refresh"] if refresh else []
    )
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        raise DeviceError(
            f"Probing {device} took longer than {timeout_s:.0f} s; is the device busy?"
        ) from error
    if result.returncode == 2:  # the device is not here: the subprocess's own message says so
        raise DeviceError(result.stderr.strip())
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise DeviceError(f"Probing {device} failed:\n{tail}")
    return json.loads(result.stdout)


def _resolve(torch, device: str) -> str:
    """`auto` means the first accelerator torch sees, else the CPU; other names must exist."""
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        if hasattr(torch, "xpu") and torch.xpu.is_available():
            return "xpu:0"
        return "cpu"
    kind = device_kind(device)
    index = int(device.split(":")[1]) if ":" in device and device.split(":")[1].isdigit() else 0
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available() and index < torch.cuda.device_count(),
        "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
        "xpu": hasattr(torch, "xpu") and torch.xpu.is_available(),
    }
    if not available.get(kind, False):
        raise DeviceError(
            f'Device "{device}" is not present here. `sdbench devices` lists the ones that are.'
        )
    return device if ":" in device or kind in ("cpu", "mps") else f"{kind}:0"


def main(argv: list[str] | None = None) -> int:
    import argparse

    import psutil
    import torch

    parser = argparse.ArgumentParser(prog="python -m sdbench.devices.probe")
    parser.add_argument("device", nargs="?", default="auto")
    parser.add_argument("--refresh", action="store_true")
    args = parser.parse_args(argv)
    # the same thread count as a benchmark worker (sdbench.runner.worker.configure_torch)
    torch.set_num_threads(psutil.cpu_count(logical=False) or os.cpu_count() or 1)
    try:
        device = _resolve(torch, args.device)
    except DeviceError as error:
        print(str(error), file=sys.stderr)
        return 2
    print(json.dumps(worker_probe(device, args.refresh)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
