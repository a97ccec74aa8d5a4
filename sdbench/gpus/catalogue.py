"""Read `sdbench/data/gpus.csv` into frozen GPU records (one per catalogue row)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import pandas as pd

from sdbench.datafiles import read_data_csv

GIB = 1024**3
DATE_COLUMNS = {"street_price_date": str, "cloud_date": str, "spec_source_date": str}


@dataclass(frozen=True)
class GPU:
    """One catalogue row: datasheet figures plus dated prices, each with its source."""

    name: str
    aliases: tuple[str, ...]
    vendor: str
    architecture: str
    family: str
    segment: str
    release_year: int
    vram_gb: float
    unified_memory: bool
    mem_bandwidth_gbs: float
    fp16_tensor_tflops: float
    fp32_tflops: float
    fp8_tensor_tflops: float | None
    bf16: bool
    tdp_w: float
    launch_price_usd: float | None
    street_price_usd: float | None
    street_price_date: str | None
    cloud_usd_per_h: float | None
    cloud_date: str | None
    spec_source: str
    spec_source_date: str
    price_source: str | None
    cloud_source: str | None

    @property
    def vram_bytes(self) -> int:
        """Memory the vendor sells (GB = 1e9 bytes on datasheets; close enough to GiB-rounded figures)."""
        return int(self.vram_gb * GIB)

    @property
    def price_usd(self) -> float | None:
        """What buying one costs today: the dated street price when known, else the launch price."""
        return self.street_price_usd if self.street_price_usd is not None else self.launch_price_usd

    def peak_tflops(self, precision: str) -> float:
        """The compute roof a workload in `precision` runs against."""
        if precision in ("fp16", "bf16", "fp8"):
            return self.fp16_tensor_tflops
        if precision == "tf32" and self.has_tf32:
            return (
                self.fp16_tensor_tflops / 2
            )  # TF32 tensor rate is half the FP16 rate on every such GPU
        return self.fp32_tflops

    @property
    def has_tf32(self) -> bool:
        """NVIDIA Ampere and later run fp32 convolutions and matmuls on TF32 tensor cores when allowed."""
        return self.vendor == "NVIDIA" and self.family not in ("turing", "volta")


def _optional(value: object) -> object | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _record(row: dict) -> GPU:
    values = {key: _optional(value) for key, value in row.items()}
    values["aliases"] = tuple(
        a.strip() for a in str(values["aliases"] or "").split(";") if a.strip()
    )
    values["release_year"] = int(values["release_year"])
    for key in ("unified_memory", "bf16"):
        values[key] = str(values[key]).lower() == "true"
    for key in ("street_price_date", "cloud_date", "spec_source_date"):
        values[key] = None if values[key] is None else str(values[key])
    return GPU(**values)


@functools.lru_cache(maxsize=1)
def load_catalogue() -> tuple[GPU, ...]:
    """Every GPU in the shipped catalogue, in file order."""
    return tuple(_record(row) for row in catalogue_frame().to_dict("records"))


def catalogue_frame() -> pd.DataFrame:
    """The catalogue as a DataFrame (the CSV's columns), for listings and joins."""
    return read_data_csv("gpus.csv", dtype=DATE_COLUMNS)
