"""A cell is one configuration to measure: a frozen value with a stable id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from sdbench.levers import LEVERS
from sdbench.levers import describe as describe_levers


@dataclass(frozen=True)
class Measure:
    """How long and how often to time one cell."""

    warmup: int = 2
    min_repeats: int = 5
    max_repeats: int = 30
    max_time_s: float = 20.0
    target_rel_ci: float = 0.02
    cell_timeout_s: float = 900.0


@dataclass(frozen=True)
class Cell:
    """What to measure: one point of a suite's matrix on one device."""

    model: str
    stage: str
    device: str
    height: int
    width: int
    batch_size: int
    precision: str
    attention: str
    compile: str
    cfg: bool = True
    steps: int = 20
    weights: str = "random"
    channels_last: bool = False
    vae: str = "default"
    memory: str = "none"  # the lever axes (sdbench/levers.py): canonical spellings
    quant: str = "none"
    cache: str = "none"

    @property
    def cell_id(self) -> str:
        """A stable hash of the configuration: the same cell gets the same id in every run.

        Levers left at "none" are not hashed, so cells of older runs (before the lever axes
        existed) keep their ids.
        """
        config = {k: v for k, v in asdict(self).items() if not (k in LEVERS and v == "none")}
        text = json.dumps(config, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def group(self) -> tuple[str, str, str]:
        """Cells of one group share a worker process that builds the model once."""
        return (self.device, self.model, self.precision)

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"

    def label(self) -> str:
        """A short human-readable name for progress lines and logs."""
        extras = [self.attention, self.compile if self.compile != "none" else ""]
        extras += ["channels_last" if self.channels_last else "", "" if self.cfg else "no-cfg"]
        extras.append(describe_levers(self.memory, self.quant, self.cache))
        tail = " ".join(e for e in extras if e)
        return (
            f"{self.model} {self.stage} {self.resolution} bs{self.batch_size} "
            f"{self.precision} {tail} @ {self.device}"
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Cell:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
