"""First-block caching for transformer models (FLUX.1, SD3): skip the remaining blocks when the
first block's residual barely changed since the last full step.

The method of ParaAttention's first-block cache (as diffusers' `FirstBlockCacheConfig` runs it):
each step runs the first block; its residual r = output - input is compared with the residual
of the last step that ran every block, as mean|r - r_full| / mean|r_full|. At or above the
threshold every block runs and the step becomes the new full step, keeping what the blocks
after the first added to its output; below it, the other blocks are skipped and that kept
addition is reused.

Implemented here rather than through diffusers' hooks: those stay registered on the model after
a sampling loop and need a cache context around every later call (a worker reuses the module
for other cells and the fidelity reference), and their tail block cannot take SD3's last block,
which returns no text stream. Here each step patches the blocks' forwards for its one call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from sdbench.levers import CacheSetting
from sdbench.models.registry import ModelSpec
from sdbench.models.step_cache import patched_forward


def transformer_blocks(transformer: nn.Module) -> list[nn.Module]:
    """The blocks in call order: FLUX's double- then single-stream blocks; SD3's joint blocks."""
    names = ("transformer_blocks", "single_transformer_blocks")
    return [block for name in names for block in getattr(transformer, name, [])]


@dataclass
class FirstBlockCacheStep:
    """The per-step function of one sampling call (its state lasts that call)."""

    transformer: nn.Module
    threshold: float
    calls: int = 0
    full_calls: int = 0
    changes: list[float] = field(default_factory=list)  # the first block's relative change per step
    _full_residual: torch.Tensor | None = None  # first block's residual at the last full step
    _head_output: tuple | None = None  # (text, image) the first block gave at the last full step
    _tail_delta: tuple | None = None  # what the other blocks added at the last full step
    _skip: bool = False

    def __call__(self, latents, timestep, conditioning: dict, index: int) -> torch.Tensor:
        from sdbench.models.workload import unet_step

        self.calls += 1
        with self._patched_blocks():
            return unet_step(self.transformer, latents, timestep, conditioning)

    @contextlib.contextmanager
    def _patched_blocks(self) -> Iterator[None]:
        head, *rest = transformer_blocks(self.transformer)
        with contextlib.ExitStack() as stack:
            stack.enter_context(patched_forward(head, self._head(head.forward)))
            for block in rest:
                tail = block is rest[-1]
                stack.enter_context(patched_forward(block, self._other(block.forward, tail)))
            yield

    def _head(self, forward):
        def run(hidden_states, encoder_hidden_states, **kwargs):
            text, image = forward(
                hidden_states=hidden_states, encoder_hidden_states=encoder_hidden_states, **kwargs
            )
            residual = image - hidden_states
            self._skip = self._unchanged(residual)
            if self._skip:
                return _add((text, image), self._tail_delta)
            self.full_calls += 1
            self._full_residual, self._head_output = residual, (text, image)
            return text, image

        return run

    def _unchanged(self, residual: torch.Tensor) -> bool:
        if self._full_residual is None or self._tail_delta is None:
            return False
        change = (residual - self._full_residual).abs().mean() / self._full_residual.abs().mean()
        self.changes.append(float(change))
        return self.changes[-1] < self.threshold

    def _other(self, forward, tail: bool):
        def run(hidden_states, encoder_hidden_states, **kwargs):
            if self._skip:  # the kept delta already stands in for this block
                return encoder_hidden_states, hidden_states
            text, image = forward(
                hidden_states=hidden_states, encoder_hidden_states=encoder_hidden_states, **kwargs
            )
            if tail:
                self._tail_delta = _subtract((text, image), self._head_output)
            return text, image

        return run


def _subtract(after: tuple, before: tuple) -> tuple:
    """Per stream after - before; SD3's last block returns no text stream (None)."""
    return tuple(
        None if a is None or b is None else a - b for a, b in zip(after, before, strict=True)
    )


def _add(output: tuple, delta: tuple) -> tuple:
    return tuple(o if d is None or o is None else o + d for o, d in zip(output, delta, strict=True))


def make(setting: CacheSetting, spec: ModelSpec, denoiser: nn.Module) -> FirstBlockCacheStep:
    return FirstBlockCacheStep(denoiser, setting.threshold or 0.0)
