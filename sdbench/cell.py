"""A cell is one configuration to measure: a frozen value with a stable id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace

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


SERVE_FIELDS = frozenset(
    ("rate_rps", "concurrency", "duration_s", "requests", "max_wait_ms", "slo_p99_s", "serve_seed")
)


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
    # Stage "serve" only (the suite's [serve] table); None elsewhere. batch_size is max_batch.
    rate_rps: float | None = None  # Poisson arrivals; None for a closed loop or rate "auto"
    concurrency: int | None = None  # closed loop: clients that each wait for their image
    duration_s: float | None = None  # how long requests arrive (or `requests` of them)
    requests: int | None = None
    max_wait_ms: float | None = None  # dynamic batching: the longest a batch waits to fill
    slo_p99_s: float | None = None
    serve_seed: int | None = None

    @property
    def cell_id(self) -> str:
        """A stable hash of the configuration: the same cell gets the same id in every run.

        Levers left at "none" and serve fields left None are not hashed, so cells of older runs
        (before those fields existed) keep their ids.
        """
        config = {
            k: v
            for k, v in asdict(self).items()
            if not (k in LEVERS and v == "none") and not (k in SERVE_FIELDS and v is None)
        }
        text = json.dumps(config, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def group(self) -> tuple[str, str, str]:
        """Cells of one group share a worker process that builds the model once."""
        return (self.device, self.model, self.precision)

    @property
    def serve_mode(self) -> str | None:
        """How a serve cell's requests arrive: "poisson", "closed" or "auto"; None otherwise."""
        if self.stage != "serve":
            return None
        if self.concurrency is not None:
            return "closed"
        return "auto" if self.rate_rps is None else "poisson"

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"

    def label(self) -> str:
        """A short human-readable name for progress lines and logs."""
        extras = [self.attention, self.compile if self.compile != "none" else ""]
        extras += ["channels_last" if self.channels_last else "", "" if self.cfg else "no-cfg"]
        extras.append(describe_levers(self.memory, self.quant, self.cache))
        mode = self.serve_mode
        if mode == "poisson":
            extras.append(f"{self.rate_rps:g} req/s")
        elif mode is not None:
            extras.append(f"{self.concurrency} clients" if mode == "closed" else "rate auto")
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
        values = {k: v for k, v in data.items() if k in names}
        for key in SERVE_FIELDS & set(values):  # a Parquet null read back as NaN is None
            if values[key] is not None and values[key] != values[key]:
                values[key] = None
            elif values[key] is not None and key in ("concurrency", "requests", "serve_seed"):
                values[key] = int(values[key])
        return cls(**values)


def as_pipeline(cell: Cell, batch_size: int = 1) -> Cell:
    """The pipeline cell one batch of a serve cell runs."""
    return replace(cell, stage="pipeline", batch_size=batch_size, **dict.fromkeys(SERVE_FIELDS))
