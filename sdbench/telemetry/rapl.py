"""CPU package energy from Linux RAPL counters in /sys/class/powercap (Intel, and AMD Zen 2+).

Each top-level zone named `package-N` has `energy_uj`, a microjoule counter that wraps at
`max_energy_range_uj`. The sampler reads it often enough (10-20 Hz) that at most one wrap falls
between two reads, and every step is unwrapped. Reading `energy_uj` needs root on kernels patched
for CVE-2020-8694; where it is not readable there is no RAPL backend (energy stays null).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
# RAPL counters update about every millisecond; a tenth of a second is a hundred updates.
RAPL_MIN_WINDOW_S = 0.1


@dataclass(frozen=True)
class RaplZone:
    name: str
    energy_path: Path
    max_range_uj: int


def package_zones(root: Path = POWERCAP) -> list[RaplZone]:
    """Readable package zones under `root`; empty where RAPL is absent or not readable."""
    zones = []
    for folder in sorted(root.glob("intel-rapl:*")):
        if folder.name.count(":") != 1:
            continue  # sub-zones (core, uncore, dram) are inside their package's figure
        try:
            name = (folder / "name").read_text().strip()
            if not name.startswith("package"):
                continue
            int((folder / "energy_uj").read_text())
            max_range_uj = int((folder / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue  # not readable without root, or a zone without a counter
        zones.append(RaplZone(name, folder / "energy_uj", max_range_uj))
    return zones


def unwrapped_delta_uj(before_uj: int, after_uj: int, max_range_uj: int) -> int:
    """Energy between two reads of a counter that wraps to zero after `max_range_uj`."""
    if after_uj >= before_uj:
        return after_uj - before_uj
    return after_uj + (max_range_uj + 1) - before_uj


class RaplCounter:
    """Total package energy across sockets, in joules, accumulated read by read."""

    def __init__(self, zones: list[RaplZone]):
        self.zones = zones
        self._last_uj: list[int] | None = None
        self.total_j = 0.0

    def reset(self) -> None:
        self._last_uj = self._read()
        self.total_j = 0.0

    def _read(self) -> list[int]:
        return [int(zone.energy_path.read_text()) for zone in self.zones]

    def update(self) -> float:
        """Read the counters, add what was used since the last read; the running total in J."""
        now = self._read()
        if self._last_uj is not None:
            for zone, before, after in zip(self.zones, self._last_uj, now, strict=True):
                self.total_j += unwrapped_delta_uj(before, after, zone.max_range_uj) / 1e6
        self._last_uj = now
        return self.total_j
