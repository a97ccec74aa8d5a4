"""Silence the few library messages known to be harmless here, by logger and text, nothing else.

Importing diffusers imports torchao (the quant axis), which on a machine without its optional
CUDA kernels logged ".so failed to load" twice, made torch log two pytree deprecation warnings,
and made diffusers say torchao-serialized checkpoints may not load (sdbench never loads one):
five lines on stderr whenever a verb built a model, which users learn to read past. Each filter
sits on the one logger that emits the message and drops only that message; every other warning
of those loggers, and every other logger, is untouched.
"""

from __future__ import annotations

import logging

# logger name -> (substrings that must all be in the message); a message matching is dropped.
KNOWN_HARMLESS: dict[str, tuple[tuple[str, ...], ...]] = {
    # torchao/__init__.py: optional kernels (mxfp8, cutlass) built for other CUDA/Python versions.
    "torchao": (("Failed to load ", ".so"),),
    # torch/utils/_pytree.py, when torchao registers its Enum types as pytree constants.
    "torch.utils._pytree": (("is an Enum subclass and is now natively supported",),),
    # diffusers/quantizers/torchao/torchao_quantizer.py: about loading torchao checkpoints.
    "diffusers.quantizers.torchao.torchao_quantizer": (
        ("Unable to import `torchao` Tensor objects",),
    ),
}


class _DropKnownHarmless(logging.Filter):
    def __init__(self, patterns: tuple[tuple[str, ...], ...]):
        super().__init__()
        self.patterns = patterns

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(all(part in message for part in parts) for parts in self.patterns)


def quiet_known_harmless_messages() -> None:
    """Install the filters (idempotent); cheap, and imports none of the libraries concerned."""
    for name, patterns in KNOWN_HARMLESS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnownHarmless) for f in logger.filters):
            logger.addFilter(_DropKnownHarmless(patterns))
