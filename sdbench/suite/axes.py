"""The values each suite axis and option may take, in one place."""

from __future__ import annotations

import re

from sdbench.models.registry import MODELS

STAGES = ("text_encoder", "unet", "vae_decode", "pipeline", "serve")  # serve: suite [serve]
# Stage "unet" is one denoiser step; "denoiser" names it for transformer (SD3) models too.
STAGE_ALIASES = {"denoiser": "unet"}
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "fp8")
ATTENTIONS = ("sdpa", "math", "flash", "efficient", "cudnn", "classic", "sliced", "xformers")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
VAES = ("default", "taesd")  # taesd: the family's tiny autoencoder (TAESD, TAESDXL, TAESD3)
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|(cuda|xpu|rocm)(:\d+)?)$")
DEVICE_HELP = "auto, cpu, cuda, cuda:N, rocm, rocm:N, mps, xpu or xpu:N"

AXES = (
    "model",
    "stage",
    "device",
    "resolution",
    "batch_size",
    "precision",
    "attention",
    "compile",
    "memory",  # the lever axes: values and their spelling in sdbench/levers.py
    "quant",
    "cache",
)
# Today's "fp8" precision is the quant scheme fp8dq on a bf16 model (expand() rewrites it).
PRECISION_ALIASES = {"fp8": ("bf16", "fp8dq")}


def model_names() -> tuple[str, ...]:
    return tuple(MODELS)
