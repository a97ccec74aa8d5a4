"""sdbench: benchmark Stable Diffusion on real hardware and decide which GPU to buy or rent."""

from __future__ import annotations

from sdbench.library_noise import quiet_known_harmless_messages

__version__ = "0.1.0"

# Before any sdbench process (CLI, worker, gpu-check) imports torch, diffusers or torchao.
quiet_known_harmless_messages()
