"""sdbench: benchmark Stable Diffusion on real hardware and decide which GPU to buy or rent."""

from __future__ import annotations

__version__ = "0.1.0"
