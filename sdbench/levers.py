"""The lever axes `memory`, `quant` and `cache`: their values, parsed and normalised (no torch).

One spelling per setting, so one setting gets one `cell_id`: memory modes joined with "+" in
the order of MEMORY_MODES ("vae_tiling+model_offload" is "model_offload+vae_tiling"), cache
values as "deepcache:N" (N an integer >= 2: the deep features are recomputed every N steps)
and "fbcache:T" (0 < T < 1: the first block's relative residual change under which the other
blocks are skipped). Every value that is not a setting raises LeverError, whose message says
what is allowed; the suite loader wraps it with the file and key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sdbench.errors import did_you_mean

NONE = "none"
LEVERS = ("memory", "quant", "cache")

# Memory modes as diffusers names them (DiffusionPipeline.enable_model_cpu_offload, ...).
MEMORY_MODES = (
    "model_offload",
    "sequential_offload",
    "vae_slicing",
    "vae_tiling",
    "attention_slicing",
)
OFFLOAD_MODES = ("model_offload", "sequential_offload")
VAE_MODES = ("vae_slicing", "vae_tiling")

QUANT_SCHEMES = ("int8wo", "int8dq", "fp8dq", "nf4")
QUANT_HELP = {
    "int8wo": "int8 weights, activations in the model's dtype (torchao)",
    "int8dq": "int8 weights and dynamically quantised int8 activations (torchao)",
    "fp8dq": "float8 e4m3 weights and dynamic activations, per-row scales (torchao)",
    "nf4": "4-bit NormalFloat weights (bitsandbytes, CUDA only)",
}
# Bytes each weight of a quantised linear layer takes, scales included (per-row scales cost
# a few bytes per row: negligible next to rows of thousands of weights); nf4 stores two
# weights per byte plus one fp32 absmax per block of 64 (bitsandbytes' default block size).
QUANT_WEIGHT_BYTES = {"int8wo": 1.0, "int8dq": 1.0, "fp8dq": 1.0, "nf4": 0.5 + 4 / 64}

CACHE_KINDS = ("deepcache", "fbcache")
CACHE_HELP = 'none, "deepcache:N" (N an integer >= 2, e.g. "deepcache:3") or "fbcache:T" (0 < T < 1, e.g. "fbcache:0.12")'
MAX_DEEPCACHE_INTERVAL = 1000


class LeverError(ValueError):
    """A lever value that is not a setting; the message says what is allowed."""


@dataclass(frozen=True)
class CacheSetting:
    kind: str  # "none", "deepcache" or "fbcache"
    interval: int | None = None  # deepcache: recompute the deep features every N steps
    threshold: float | None = None  # fbcache: skip the remaining blocks below this change


def parse_memory(value: object) -> str:
    """The canonical spelling of a memory setting ("none" or modes joined with "+")."""
    if not isinstance(value, str) or not value.strip():
        raise LeverError(f"a memory setting is a string: none, {', '.join(MEMORY_MODES)} or a+b")
    parts = [p.strip() for p in value.strip().split("+")]
    if parts == [NONE]:
        return NONE
    for part in parts:
        if part not in MEMORY_MODES:
            hint = " ('none' cannot be combined)" if part == NONE else ""
            raise LeverError(
                f"unknown memory mode {part!r}{hint}.{did_you_mean(part, MEMORY_MODES)} "
                f"Allowed: none, {', '.join(MEMORY_MODES)}, or several joined with '+'."
            )
    if len(set(parts)) != len(parts):
        raise LeverError(f"memory mode repeated in {value!r}; name each mode once.")
    if all(mode in parts for mode in OFFLOAD_MODES):
        raise LeverError(
            "model_offload and sequential_offload exclude each other (diffusers moves whole "
            "models or single layers, not both); pick one."
        )
    return "+".join(mode for mode in MEMORY_MODES if mode in parts)


def memory_modes(setting: str) -> tuple[str, ...]:
    """The modes of a canonical memory setting; () for none."""
    return () if setting == NONE else tuple(setting.split("+"))


def parse_quant(value: object) -> str:
    if value == NONE or value in QUANT_SCHEMES:
        return str(value)
    allowed = (NONE, *QUANT_SCHEMES)
    raise LeverError(
        f"unknown quantisation scheme {value!r}.{did_you_mean(str(value), allowed)} "
        f"Allowed: {', '.join(allowed)}."
    )


def parse_cache(value: object) -> CacheSetting:
    """A cache value as its kind and parameter; raises LeverError naming the allowed forms."""
    if value == NONE:
        return CacheSetting(NONE)
    if not isinstance(value, str):
        raise LeverError(f"a cache setting is a string: {CACHE_HELP}")
    kind, _, parameter = value.strip().partition(":")
    if kind not in CACHE_KINDS:
        raise LeverError(
            f"unknown cache {kind!r}.{did_you_mean(kind, CACHE_KINDS)} Allowed: {CACHE_HELP}."
        )
    if kind == "deepcache":
        if not parameter.strip().isdigit() or not 2 <= int(parameter) <= MAX_DEEPCACHE_INTERVAL:
            raise LeverError(
                f"deepcache needs its interval, an integer from 2 to {MAX_DEEPCACHE_INTERVAL} "
                f'(the deep features are recomputed every N steps), got {value!r}. Try "deepcache:3".'
            )
        return CacheSetting(kind, interval=int(parameter))
    try:
        threshold = float(parameter)
    except ValueError:
        threshold = math.nan
    if not 0 < threshold < 1:
        raise LeverError(
            "fbcache needs its threshold, a number between 0 and 1 (the first block's relative "
            f'change under which the other blocks are reused), got {value!r}. Try "fbcache:0.12".'
        )
    return CacheSetting(kind, threshold=threshold)


def cache_value(setting: CacheSetting) -> str:
    """The canonical spelling of a cache setting."""
    if setting.kind == "deepcache":
        return f"deepcache:{setting.interval}"
    if setting.kind == "fbcache":
        return f"fbcache:{setting.threshold!r}"
    return NONE


def normalise(axis: str, value: object) -> str:
    """The canonical spelling of `value` on lever `axis` (memory, quant or cache)."""
    if axis == "memory":
        return parse_memory(value)
    if axis == "quant":
        return parse_quant(value)
    return cache_value(parse_cache(value))


def describe(memory: str = NONE, quant: str = NONE, cache: str = NONE) -> str:
    """A short label of the levers that are set ("" when none is), for cell labels and plots."""
    return " ".join(v for v in (memory, quant, cache) if v != NONE)
