"""What a buyer's question is about: one txt2img workload, independent of the GPU, and how its
money is counted.

The performance model, the memory model, `predict`, `recommend` and `capacity` all take an
`ImageWorkload`; a model's usual steps and guidance, its aliases (SD1.4 is SD1.5) and its family
come from the registry through it, never from tables of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from sdbench.models.registry import canonical_name, get_model, model_family
from sdbench.store.schema import row_guided


@dataclass(frozen=True)
class ImageWorkload:
    """A txt2img configuration: model, size, batch, precision, steps, guidance and kernels."""

    model: str  # a registry name, or an alias published results use (sd14)
    height: int
    width: int
    batch_size: int = 1
    precision: str = "fp16"
    steps: int = 20
    attention: str = "sdpa"
    compile: str = "none"
    software: str = "torch2"  # torch2 | torch1 | coreml
    cfg: bool = True  # classifier-free guidance: the UNet runs on 2 x batch_size

    @classmethod
    def usual(
        cls,
        model: str,
        height: int,
        width: int | None = None,
        batch_size: int = 1,
        precision: str = "fp16",
        steps: int | None = None,
        attention: str = "sdpa",
        compile: str = "none",
        cfg: bool | None = None,
    ) -> ImageWorkload:
        """The workload asked for, with steps and guidance the model's usual where not given
        (SD1.5 50 steps with cfg, LCM 4 without); an unknown model is a BadInput."""
        spec = get_model(model)
        return cls(
            model, height, width or height, batch_size, precision, steps or spec.default_steps,
            attention, compile, cfg=spec.default_cfg if cfg is None else cfg,
        )  # fmt: skip

    @classmethod
    def of_row(cls, row: dict) -> ImageWorkload:
        """The workload a results row (or a cell's config) ran; rows without cfg ran with it."""
        return cls(
            model=str(row["model"]), height=int(row["height"]), width=int(row["width"]),
            batch_size=int(row["batch_size"]), precision=str(row["precision"]),
            steps=int(row.get("steps") or 20), attention=str(row.get("attention") or "sdpa"),
            compile=str(row.get("compile") or "none"), cfg=row_guided(row.get("cfg")),
        )  # fmt: skip

    @property
    def registered_model(self) -> str:
        """The registry's name for the model (sd15 for the alias sd14)."""
        return canonical_name(self.model)

    @property
    def family(self) -> str:
        """The registry's family of the model (sd15 for bk-sdm-tiny, sdxl for ssd-1b)."""
        return model_family(self.model)

    @property
    def guided_batch(self) -> int:
        """Images the text encoders and the denoiser see per call: 2 x batch with cfg."""
        return (2 if self.cfg else 1) * self.batch_size

    def but(self, **changes) -> ImageWorkload:
        """This workload with some fields changed (dataclasses.replace)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class CostAssumptions:
    """How a purchase turns into dollars per image: the card's price spread over its service
    hours, plus the electricity each image draws."""

    electricity_usd_per_kwh: float = 0.15
    lifetime_years: float = 3.0
    hours_per_day: float = 4.0  # hours a day the GPU generates images

    @property
    def service_hours(self) -> float:
        """Hours of generating over the purchase's lifetime."""
        return self.lifetime_years * 365 * self.hours_per_day

    def electricity_usd(self, energy_j: float) -> float:
        return energy_j / 3.6e6 * self.electricity_usd_per_kwh

    def per_1000_images_usd(
        self, s_per_image: float, energy_per_image_j: float | None, price_usd: float | None
    ) -> float | None:
        """Purchase share plus electricity of 1000 images; None without a price or an energy."""
        if price_usd is None or energy_per_image_j is None or math.isnan(price_usd):
            return None
        images_in_lifetime = self.service_hours * 3600 / s_per_image
        return 1000 * (price_usd / images_in_lifetime + self.electricity_usd(energy_per_image_j))
