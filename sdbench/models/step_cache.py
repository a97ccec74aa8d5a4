"""The `cache` axis' registry: which step-caching implementation a pipeline cell samples with.

The sampling loop (`workload.denoise`) asks `workload.denoiser_step` for the function it calls
once per denoising step. With cache "none" that is the plain `workload.unet_step`; otherwise
`denoiser_step` calls the factory registered here under the setting's kind:

    make(setting: levers.CacheSetting, spec: ModelSpec, denoiser: nn.Module) -> DenoiserStep
    DenoiserStep = (latents, timestep, conditioning, index) -> prediction

The factory runs once per sampling call, so state kept in the returned function (cached deep
features, the previous first-block residual) lives for one image batch and never leaks into
the next timed call. `index` counts steps from 0; `latents` is already doubled for guidance.
`tolerance_rel` is the relative L2 error against the uncached fp32 pipeline (same seed) that
a cached row may show and still pass fidelity; `denoisers` names the architectures it applies
to ("unet" or "transformer"), which capability.py checks before a cell runs.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

DenoiserStep = Callable[[torch.Tensor, torch.Tensor, dict, int], torch.Tensor]


@dataclass(frozen=True)
class StepCacheKind:
    module: str  # the implementation's module; it defines make(setting, spec, denoiser)
    tolerance_rel: float
    denoisers: tuple[str, ...]


# kind (levers.CACHE_KINDS) -> its implementation. An implementation lands by adding its line.
# Tolerances: relative L2 error of the decoded images against the uncached fp32 pipeline. Set
# from the tiny random-weight models on the CPU (deepcache:2 over 8 steps: 0.12 on the final
# latent); random weights change features more between steps than trained ones, so real models
# should sit well inside. Check real-weight rows' ref_rel_err before trusting a verdict.
IMPLEMENTATIONS: dict[str, StepCacheKind] = {
    "deepcache": StepCacheKind("sdbench.models.deepcache", tolerance_rel=0.25, denoisers=("unet",)),
    "fbcache": StepCacheKind(
        "sdbench.models.fbcache", tolerance_rel=0.25, denoisers=("transformer",)
    ),
}


def implementation(kind: str) -> StepCacheKind | None:
    return IMPLEMENTATIONS.get(kind)


def factory(kind: str) -> Callable:
    return importlib.import_module(IMPLEMENTATIONS[kind].module).make


@contextlib.contextmanager
def patched_forward(module: torch.nn.Module, forward: Callable) -> Iterator[None]:
    """`module` calls `forward` instead of its own for the block (nn.Module.__call__ looks the
    instance attribute up first); the class's forward is back afterwards."""
    module.forward = forward
    try:
        yield
    finally:
        del module.forward
