"""What a worker keeps between the cells of its group (models, references, telemetry, probe)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WorkerState:
    """What a worker keeps between cells of its group."""

    models: object = None
    references: object = None
    telemetry: dict = field(default_factory=dict)
    probe: dict = field(default_factory=dict)
