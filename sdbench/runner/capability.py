"""Decide before running whether a device can run a cell at all; the answer becomes an `unsupported` row.

Suites are written once and run anywhere: a CUDA-only kernel on a CPU, bf16 on a pre-Ampere GPU or
fp8 without torchao are findings with a reason, never crashes or silent drops. On CUDA, forced
SDPA kernels are checked against the stage's real attention shapes with PyTorch's own
`torch.backends.cuda.can_use_*_attention` checks (head size, dtype, GPU generation).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import shutil
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from sdbench.cell import Cell
from sdbench.devices.device import device_kind
from sdbench.levers import OFFLOAD_MODES, VAE_MODES, memory_modes, parse_cache
from sdbench.models import step_cache
from sdbench.models.registry import get_model

UNET_STAGES = ("unet", "pipeline")


def unsupported_reason(cell: Cell) -> str | None:
    """Why `cell` cannot run on its device, or None when it can."""
    kind = device_kind(cell.device)
    return (
        _stage_reason(cell)
        or _model_size_reason(cell, kind)
        or _precision_reason(cell, kind)
        or _attention_reason(cell, kind)
        or _compile_reason(cell, kind)
        or _memory_reason(cell, kind)
        or _quant_reason(cell, kind)
        or _cache_reason(cell)
        or _kernel_shape_reason(cell, kind)
    )


def _is_rocm() -> bool:
    return bool(torch.version.hip)


def _cuda_capability(device: str) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def _rocm_arch(device: str) -> str:
    return torch.cuda.get_device_properties(device).gcnArchName.split(":")[0]


def _precision_reason(cell: Cell, kind: str) -> str | None:
    p = cell.precision
    if p in ("fp32", "fp16"):
        return None  # fp16 on a CPU runs, slowly: that is worth measuring
    if kind == "cuda" and _is_rocm():
        arch = _rocm_arch(cell.device)
        if p in ("tf32", "fp8") and not arch.startswith(("gfx94", "gfx95")):
            return f"{p} needs an AMD MI300-class GPU (gfx94x/gfx95x); this one is {arch}"
    elif kind == "cuda":
        major, minor = _cuda_capability(cell.device)
        if p in ("tf32", "bf16") and major < 8:
            return f"{p} needs an Ampere or newer NVIDIA GPU (compute capability 8.0+); this one is {major}.{minor}"
        if p == "fp8" and _fp8_hardware_reason(cell.device, kind, p):
            return _fp8_hardware_reason(cell.device, kind, p)
    elif p == "tf32":
        return (
            f"tf32 is a tensor-core mode of NVIDIA Ampere+ and AMD MI300 GPUs; {kind} computes fp32"
        )
    elif p == "fp8":
        return _fp8_hardware_reason(cell.device, kind, p)
    if p == "fp8":
        return _torchao_reason("fp8")
    return None


def _torchao_reason(scheme: str = "fp8") -> str | None:
    if importlib.util.find_spec("torchao") is None:
        return f"{scheme} needs the torchao package: pip install 'sdbench[quant]' (torchao >= 0.10)"
    config = TORCHAO_CONFIGS.get(scheme, "Float8DynamicActivationFloat8WeightConfig")
    try:
        getattr(importlib.import_module("torchao.quantization"), config)
    except (ImportError, AttributeError) as error:
        return f"{scheme} needs torchao >= 0.10 with {config}: {error}"
    return None


TORCHAO_CONFIGS = {
    "int8wo": "Int8WeightOnlyConfig",
    "int8dq": "Int8DynamicActivationInt8WeightConfig",
    "fp8dq": "Float8DynamicActivationFloat8WeightConfig",
}


def _fp8_hardware_reason(device: str, kind: str, name: str) -> str | None:
    if kind == "cuda" and _is_rocm():
        arch = _rocm_arch(device)
        if not arch.startswith(("gfx94", "gfx95")):
            return f"{name} needs an AMD MI300-class GPU (gfx94x/gfx95x); this one is {arch}"
        return None
    if kind == "cuda":
        major, minor = _cuda_capability(device)
        if (major, minor) < (8, 9):
            return f"{name} needs an Ada or Hopper GPU (compute capability 8.9+); this one is {major}.{minor}"
        return None
    return f"{name} needs a GPU with fp8 matrix units (NVIDIA Ada/Hopper/Blackwell, AMD MI300), not {kind}"


def _memory_reason(cell: Cell, kind: str) -> str | None:
    modes = memory_modes(cell.memory)
    if not modes:
        return None
    if cell.stage == "vae_decode" and all(m in VAE_MODES for m in modes):
        return None
    if cell.stage != "pipeline":
        return (
            f"memory mode {cell.memory} applies to pipeline cells (vae_slicing and vae_tiling also "
            f"to vae_decode), not {cell.stage}"
        )
    spec = get_model(cell.model)
    if "attention_slicing" in modes:
        if spec.denoiser != "unet":
            return f"attention_slicing slices UNet attention; {cell.model}'s transformer has none to slice"
        if cell.attention != "sdpa":
            return (
                "attention_slicing installs diffusers' sliced attention processor, replacing "
                f"attention {cell.attention}; run it with attention sdpa"
            )
    if any(m in OFFLOAD_MODES for m in modes):
        return _offload_reason(kind, cell.compile)
    return None


def _offload_reason(kind: str, compile_mode: str) -> str | None:
    if kind == "cpu":
        return (
            "offload moves weights from device memory to host memory between uses; on the CPU "
            "the weights already live in host memory, so there is nothing to offload"
        )
    if importlib.util.find_spec("accelerate") is None:
        return "offload runs through diffusers' accelerate hooks: pip install 'sdbench[offload]'"
    if compile_mode != "none":
        return "offload hooks move weights during the call, which torch.compile cannot trace"
    return None


def _quant_reason(cell: Cell, kind: str) -> str | None:
    scheme = cell.quant
    if scheme == "none":
        return None
    if cell.stage == "vae_decode":
        return f"{scheme} quantises the denoiser's and text encoders' linear layers; the VAE is not quantised"
    if cell.precision == "fp8":
        return (
            "precision fp8 is already quant fp8dq on bf16; use precision bf16 with the quant axis"
        )
    if scheme == "nf4":
        return _nf4_reason(kind)
    if scheme == "fp8dq":
        hardware = _fp8_hardware_reason(cell.device, kind, scheme)
        if hardware:
            return hardware
    return _torchao_reason(scheme)


def _nf4_reason(kind: str) -> str | None:
    if kind != "cuda" or _is_rocm():
        return f"nf4 runs through bitsandbytes' CUDA kernels; not on {'ROCm' if kind == 'cuda' else kind}"
    if importlib.util.find_spec("bitsandbytes") is None:
        return "nf4 needs the bitsandbytes package: pip install 'sdbench[quant]' bitsandbytes"
    return None


def _cache_reason(cell: Cell) -> str | None:
    setting = parse_cache(cell.cache)
    if setting.kind == "none":
        return None
    if cell.stage != "pipeline":
        return f"{setting.kind} reuses work across denoising steps; only pipeline cells run steps, not {cell.stage}"
    denoiser = get_model(cell.model).denoiser
    wanted = {"deepcache": "unet", "fbcache": "transformer"}[setting.kind]
    if denoiser != wanted:
        what = {"unet": "UNet", "transformer": "DiT (transformer)"}
        return f"{setting.kind} applies to {what[wanted]} models; {cell.model}'s denoiser is a {what[denoiser]}"
    if step_cache.implementation(setting.kind) is None:
        return f"{setting.kind} has no implementation registered in sdbench.models.step_cache"
    return None


def _attention_reason(cell: Cell, kind: str) -> str | None:
    a = cell.attention
    if a in ("sdpa", "math", "classic", "sliced"):
        return None
    if a == "xformers":
        return _xformers_reason(kind)
    if kind == "cpu":
        if a == "flash":
            return None  # the CPU flash kernel takes fp32, bf16 and fp16
        return f"the {a} SDPA kernel exists only on CUDA GPUs; on the CPU use math or flash"
    if kind != "cuda":
        return f"the {a} SDPA kernel is CUDA-only; on {kind} use sdpa, math, classic or sliced"
    low_precision = cell.precision in ("fp16", "bf16", "fp8")
    if a == "flash":
        if not torch.backends.cuda.is_flash_attention_available():
            return "this torch build has no flash attention kernel"
        if not low_precision:
            return f"flash attention computes in fp16/bf16 only, not {cell.precision}"
    if a == "cudnn":
        if _is_rocm():
            return "the cuDNN attention kernel does not exist on ROCm"
        if not low_precision:
            return f"cuDNN attention computes in fp16/bf16 only, not {cell.precision}"
    return None


def _xformers_reason(kind: str) -> str | None:
    if kind != "cuda":
        return "xformers kernels run on CUDA GPUs only"
    if importlib.util.find_spec("xformers") is None:
        return "xformers is not installed (pip install xformers built for this torch)"
    try:
        import xformers.ops  # noqa: F401
    except Exception as error:  # a wheel built for another torch fails at import
        return f"xformers is installed but does not load: {type(error).__name__}: {error}"
    return None


def _compile_reason(cell: Cell, kind: str) -> str | None:
    if cell.compile == "none":
        return None
    if cell.compile == "reduce-overhead" and kind != "cuda":
        return "reduce-overhead uses CUDA graphs, which exist only on CUDA/ROCm GPUs"
    if kind == "mps":
        return "torch.compile's inductor backend does not target MPS in this torch"
    if kind == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "torch.compile on the CPU needs a C++ compiler (install g++)"
    if kind in ("cuda", "xpu") and importlib.util.find_spec("triton") is None:
        return f"torch.compile on {kind} needs the triton package (pip install triton)"
    return None


def _stage_reason(cell: Cell) -> str | None:
    spec = get_model(cell.model)
    if cell.stage in UNET_STAGES and spec.denoiser not in spec.components:
        return f"{cell.model} has no denoiser"
    if (
        spec.denoiser == "transformer"
        and cell.stage in UNET_STAGES
        and cell.attention in ("classic", "sliced", "xformers")
    ):
        return (
            f"{cell.model}'s MMDiT keeps its joint-attention processors, which call SDPA; "
            f"{cell.attention} attention does not apply (use sdpa, math, flash, efficient or cudnn)"
        )
    if cell.attention == "sliced" and cell.stage not in UNET_STAGES:
        return (
            "attention slicing applies to the UNet only (as diffusers' enable_attention_slicing); "
            f"on {cell.stage} it would be plain sdpa"
        )
    if cell.attention == "xformers" and cell.stage == "text_encoder":
        return "xformers attention applies to diffusers models; text encoders keep SDPA"
    if cell.precision == "fp8" and cell.stage == "vae_decode":
        return "fp8 quantises the UNet's and text encoders' linear layers; the VAE stays bf16"
    return None


def _model_size_reason(cell: Cell, kind: str) -> str | None:
    """Models whose denoiser a CPU cannot run in reasonable time or memory (FLUX.1's 12B)."""
    spec = get_model(cell.model)
    if kind != "cpu" or not spec.cpu_unsupported or cell.stage not in UNET_STAGES:
        return None
    from sdbench.analysis.costs import stage_cost
    from sdbench.analysis.workload import ImageWorkload

    workload = ImageWorkload(cell.model, cell.height, cell.width, cell.batch_size, cfg=cell.cfg)
    step = stage_cost(workload, "unet")
    calls = f"{cell.steps} steps" if cell.stage == "pipeline" else "one step"
    work = step.flops * (cell.steps if cell.stage == "pipeline" else 1) / 1e12
    return f"{spec.cpu_unsupported} (this cell: {calls} = {work:,.0f} TFLOP)"


# --- forced SDPA kernels against the stage's real attention calls (CUDA) ---

_CAN_USE = {
    "flash": "can_use_flash_attention",
    "efficient": "can_use_efficient_attention",
    "cudnn": "can_use_cudnn_attention",
}


@dataclass(frozen=True)
class AttentionCall:
    """The shapes of one F.scaled_dot_product_attention call a stage makes (batch included)."""

    query: tuple[int, ...]
    key: tuple[int, ...]
    value: tuple[int, ...]
    mask: tuple[int, ...] | None
    is_causal: bool

    def describe(self) -> str:
        _, heads, length, head_dim = self.query
        return (
            f"attention with {heads} head(s) of {head_dim} dims over {length}x{self.key[2]} tokens"
        )


class _AttentionRecorder(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: set[AttentionCall] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            query, key, value = args[:3]
            mask = kwargs.get("attn_mask", args[3] if len(args) > 3 else None)
            self.calls.add(
                AttentionCall(
                    tuple(query.shape),
                    tuple(key.shape),
                    tuple(value.shape),
                    None if mask is None else tuple(mask.shape),
                    bool(kwargs.get("is_causal", args[5] if len(args) > 5 else False)),
                )
            )
        return func(*args, **kwargs)


@functools.lru_cache(maxsize=64)
def attention_calls(
    model: str, stage: str, height: int, width: int, cfg: bool = True
) -> tuple[AttentionCall, ...]:
    """Every distinct SDPA call one timed call of `stage` makes at batch size 1 (meta device)."""
    from sdbench.models.workload import build_workload

    if stage == "pipeline":
        stages = ("text_encoder", "unet", "vae_decode")
        calls = {c for s in stages for c in attention_calls(model, s, height, width, cfg)}
        return tuple(sorted(calls, key=repr))
    cell = Cell(model, stage, "meta", height, width, 1, "fp32", "sdpa", "none", cfg=cfg)
    workload = build_workload(cell)
    with _AttentionRecorder() as recorder:
        workload.call()
    return tuple(sorted(recorder.calls, key=repr))


def _kernel_shape_reason(cell: Cell, kind: str) -> str | None:
    if kind != "cuda" or cell.attention not in _CAN_USE:
        return None
    check = getattr(torch.backends.cuda, _CAN_USE[cell.attention], None)
    if check is None:  # an older torch without this check: the run itself will tell
        return None
    from sdbench.models.build import DTYPES

    calls = attention_calls(cell.model, cell.stage, cell.height, cell.width, cell.cfg)
    for call in calls:
        refusal = probe_kernel(check, call, cell.device, DTYPES[cell.precision])
        if refusal is not None:
            return f"the {cell.attention} SDPA kernel cannot run {call.describe()}: {refusal}"
    return None


def probe_kernel(check, call: AttentionCall, device: str, dtype: torch.dtype) -> str | None:
    """Ask PyTorch's `check` (a can_use_*_attention) about `call`; its warnings are the reason."""

    def tensor(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty((1, *shape[1:]), device=device, dtype=dtype)

    mask = None if call.mask is None else tensor(call.mask)
    try:
        params = torch.backends.cuda.SDPAParams(
            tensor(call.query),
            tensor(call.key),
            tensor(call.value),
            mask,
            0.0,
            call.is_causal,
            False,
        )
    except TypeError:  # SDPAParams' signature changed in this torch: the run itself will tell
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if check(params, True):
            return None
    messages = [str(w.message).strip().splitlines()[0] for w in caught if str(w.message).strip()]
    return "; ".join(messages) or "PyTorch's kernel selection refuses these shapes or this dtype"
