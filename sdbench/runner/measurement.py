"""What measuring one cell gave: a frozen value that keeps its samples and turns into a row.

`measure_cell` (sdbench.runner.measure) makes one for the worker and for the pytest plugin
alike; each part (timing, memory, telemetry, derived figures, fidelity, compile) gives its own
columns, so both paths write the same columns computed the same way. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sdbench.stats import Summary

OUTCOMES = ("ok", "oom", "error", "timeout", "unsupported")
_EMPTY: Mapping[str, object] = MappingProxyType({})


PARTS = ("memory", "telemetry", "derived", "fidelity", "compile", "serving")


@dataclass(frozen=True)
class Measurement:
    """One cell's outcome and, when ok, every measured part; `columns()` is its results row."""

    status: str
    error: str | None = None
    summary: Summary | None = None  # None when ok but no sample was kept (--benchmark-disable)
    warmup_ms: tuple[float, ...] = ()
    timed_s: float | None = None
    memory: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    telemetry: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    derived: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    fidelity: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    compile: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    serving: Mapping[str, object] = field(default_factory=lambda: _EMPTY)  # stage serve's own
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.status!r}; one of {OUTCOMES}")
        for part in PARTS:  # read-only copies: a Measurement cannot change once made
            object.__setattr__(self, part, MappingProxyType(dict(getattr(self, part))))
        object.__setattr__(self, "warmup_ms", tuple(self.warmup_ms))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    @classmethod
    def from_columns(cls, columns: Mapping[str, object]) -> Measurement:
        """A stage that measures itself (serve): its row's columns, kept as they are."""
        rest = {k: v for k, v in columns.items() if k not in ("status", "error")}
        status = str(columns.get("status", "ok"))
        return cls(status, columns.get("error"), serving=rest)  # type: ignore[arg-type]

    @property
    def first_call_ms(self) -> float | None:
        """The very first call's time: the first warm-up call, else the first timed one."""
        if self.warmup_ms:
            return self.warmup_ms[0]
        return self.summary.samples_ms[0] if self.summary else None

    def timing_columns(self) -> dict[str, object]:
        columns: dict[str, object] = {
            "warmup": len(self.warmup_ms),
            "timed_s": self.timed_s,
            "first_call_ms": self.first_call_ms,
        }
        return columns | (self.summary.as_columns() if self.summary else {})

    def columns(self) -> dict[str, object]:
        """The row's measured columns (the worker adds the cell and the environment)."""
        row: dict[str, object] = {"status": self.status, "error": self.error}
        if self.serving:
            return row | dict(self.serving)
        if self.status != "ok":
            return row | dict(self.memory)  # an OOM row keeps the peak it reached
        row |= self.timing_columns()
        row |= self.compile  # its first_call_ms is the compiling call's
        for part in (self.memory, self.telemetry, self.derived, self.fidelity):
            row |= part
        return row | {"warnings": list(self.warnings)}
