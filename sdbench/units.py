"""How figures read, the same in the terminal and the report: a unit per column chosen from its
values, and one text per value (GiB, thousands separators, ~3 significant digits, ±, ✓/✗)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Unit:
    """How a column is shown: displayed value = stored value / scale, followed by the label."""

    label: str
    scale: float = 1.0
    integer: bool = False

    def show(self, value: object) -> str:
        number = as_number(value)
        if number is None:
            return ""
        return (
            f"{round(number / self.scale):,}"
            if self.integer
            else format_number(number / self.scale)
        )


def as_number(value: object) -> float | None:
    """A finite float, or None for null / NaN / non-numbers (nulls mean "not measured")."""
    if value is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_number(value: float) -> str:
    """Three significant figures, thousands separated; no scientific notation for everyday sizes."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.2g}"


def _largest(values: Iterable[object]) -> float:
    numbers = [abs(n) for n in (as_number(v) for v in values) if n is not None]
    return max(numbers, default=0.0)


def _typical(values: Iterable[object]) -> float:
    """The median magnitude (0 when there is none)."""
    from sdbench.stats import median  # here: importing units stays free of numpy and scipy

    numbers = [abs(n) for n in (as_number(v) for v in values) if n is not None]
    return median(numbers) if numbers else 0.0


def _thousands(value: float, milli: str, base: str, kilo: str) -> Unit:
    """The unit a thousand times smaller below 1, a thousand times larger from 10,000 up."""
    if 0 < value < 1:
        return Unit(milli, 1e-3)
    return Unit(kilo, 1000.0) if value >= 10_000 else Unit(base)


def time_unit(values_ms: Iterable[object]) -> Unit:
    """By the typical value, so a column mixing CPU seconds and GPU milliseconds keeps its digits."""
    return _thousands(_typical(values_ms), "µs", "ms", "s")


def bytes_unit(values: Iterable[object]) -> Unit:
    return Unit("GiB", GIB) if _largest(values) >= GIB else Unit("MiB", MIB)


def energy_unit(values_j: Iterable[object]) -> Unit:
    return _thousands(_largest(values_j), "mJ", "J", "kJ")


def flop_rate_unit(values_tflops: Iterable[object]) -> Unit:
    return Unit("GFLOP/s", 1e-3) if 0 < _largest(values_tflops) < 1 else Unit("TFLOP/s")


def flops_unit(values: Iterable[object]) -> Unit:
    largest = _largest(values)
    if largest >= 1e12:
        return Unit("TFLOP", 1e12)
    return Unit("GFLOP", 1e9) if largest >= 1e9 else Unit("MFLOP", 1e6)


PERCENT = Unit("%", 0.01)
PLAIN = Unit("")
COUNT = Unit("", integer=True)


# Text for one value, the same in the terminal and the report; "-" means not measured.
MISSING = "-"


def number_text(value: object) -> str:
    number = as_number(value)
    return MISSING if number is None else format_number(number)


def bytes_text(value: object) -> str:
    """Bytes in binary units: 1.50 GiB, 512 MiB, 12.0 KiB."""
    number = as_number(value)
    if number is None:
        return MISSING
    for label, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if abs(number) >= scale:
            return f"{format_number(number / scale)} {label}"
    return f"{number:.0f} B"


def time_text(value_ms: object) -> str:
    """A duration given in milliseconds: 850 µs, 12.3 ms, 4.56 s."""
    number = as_number(value_ms)
    if number is None:
        return MISSING
    if abs(number) >= 1000:
        return f"{format_number(number / 1000)} s"
    if 0 < abs(number) < 1:
        return f"{format_number(number * 1000)} µs"
    return f"{format_number(number)} ms"


def duration_text(seconds: object) -> str:
    """A wall-clock duration: 647 ms, 29.0 s, 4 min 10 s, 1 h 05 min."""
    number = as_number(seconds)
    if number is None:
        return MISSING
    if abs(number) < 60:
        return time_text(number * 1000)
    whole = round(number)
    if whole >= 3600:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    return f"{whole // 60} min {whole % 60:02d} s"


def percent_text(value_pct: object, signed: bool = False) -> str:
    number = as_number(value_pct)
    if number is None:
        return MISSING
    return ("+" if signed and number > 0 else "") + f"{format_number(number)}%"


def band_text(low_pct: object, high_pct: object, compact: bool = False) -> str:
    """An interval around a figure as percentages: ±12% when symmetric, else -8% / +15%
    (compact, for a table cell: -8/+15%)."""
    low, high = as_number(low_pct), as_number(high_pct)
    if low is None or high is None:
        return MISSING
    if round(abs(low)) == round(abs(high)):
        return f"±{_percent(abs(high))}%"
    if compact:
        return f"-{_percent(abs(low))}/+{_percent(abs(high))}%"
    return f"-{_percent(abs(low))}% / +{_percent(abs(high))}%"


def _percent(value: float) -> str:
    return f"{value:.0f}" if value >= 9.95 else f"{value:.1f}"


def check_text(flag: object) -> str:
    """✓ / ✗ for a yes/no figure; "-" when it was not measured."""
    if flag is None or (isinstance(flag, float) and math.isnan(flag)):
        return MISSING
    return "✓" if bool(flag) else "✗"
