"""Expand a suite into cells: a pure function of the suite and the devices present."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from sdbench.cell import Cell
from sdbench.devices.device import device_kind
from sdbench.errors import BadInput
from sdbench.models.registry import MODELS
from sdbench.suite.axes import PRECISION_ALIASES
from sdbench.suite.load import Resolution, ServeTable, Suite

ACCELERATOR_PREFIXES = ("cuda", "rocm", "mps", "xpu")


def resolve_devices(requested: Sequence[str], present: Sequence[str]) -> list[str]:
    """Turn axis values (auto, cuda, cuda:1, ...) into device ids present here, in order.

    `auto` means every accelerator present, else the CPU. ROCm GPUs appear to torch as `cuda:N`,
    so `rocm` and `rocm:N` name them too.
    """
    resolved: list[str] = []
    for value in requested:
        if value == "auto":
            accelerators = [d for d in present if device_kind(d) in ACCELERATOR_PREFIXES]
            matches = accelerators or ["cpu"]
        else:
            wanted = value.replace("rocm", "cuda")
            matches = [d for d in present if d == wanted or device_kind(d) == wanted]
            if not matches:
                raise BadInput(
                    f'Device "{value}" is not present on this machine. Present: {", ".join(present)}. '
                    'Use device = ["auto"] to benchmark whatever is there, or pass --device.'
                )
        resolved += [d for d in matches if d not in resolved]
    return resolved


MAX_EXCLUDE_TUPLES = 1_000_000  # rules whose value combinations fit are one set lookup per cell


@dataclass(frozen=True)
class _Excludes:
    """Exclude rules ready for matching: small rules merged into one set of value tuples per key
    combination (one lookup per cell, however many rules), the rest kept as per-key sets."""

    tuples: dict[tuple[str, ...], frozenset]
    rules: list[dict[str, frozenset]]


def _excluded(cell_values: dict, excludes: _Excludes) -> bool:
    for keys, combinations in excludes.tuples.items():
        if tuple(cell_values[k] for k in keys) in combinations:
            return True
    for rule in excludes.rules:
        if all(_matches(key, cell_values[key], allowed) for key, allowed in rule.items()):
            return True
    return False


def _as_sets(excludes: Sequence[dict]) -> _Excludes:
    """Exclude rules with each key's values as a set: a lookup per key, however long the list.

    Device values also match as their family ("cuda" excludes cuda:1) and rocm as cuda, so rules
    naming a device stay per-key rules.
    """
    tuples: dict[tuple[str, ...], set] = {}
    rules = []
    for rule in excludes:
        sets = {key: frozenset(values) for key, values in rule.items()}
        if "device" in sets:
            sets["device"] |= {a.replace("rocm", "cuda") for a in sets["device"]}
        keys = tuple(sorted(sets))
        size = math.prod(len(v) for v in sets.values())
        if "device" in sets or size + len(tuples.get(keys, ())) > MAX_EXCLUDE_TUPLES:
            rules.append(sets)
        else:
            tuples.setdefault(keys, set()).update(itertools.product(*(sets[k] for k in keys)))
    return _Excludes({k: frozenset(v) for k, v in tuples.items()}, rules)


def _kept_combinations(axes: list[tuple[str, Sequence]], excludes: _Excludes) -> Iterator[dict]:
    """The axes' cross product in itertools.product order, less the excluded combinations.

    Depth first: each exclude rule is checked as soon as every key it names has a value, so a
    rule like `stage = "vae_decode"` + `batch_size = [4, 8]` prunes a whole subtree at once
    instead of being tested against each of its combinations (gpu-check.toml's 192,000
    combinations keep 54 cells).
    """
    depth_of = {key: depth for depth, (key, _) in enumerate(axes)}
    checks: list[list[Callable[[dict], bool]]] = [[] for _ in axes]
    for keys, combinations in excludes.tuples.items():
        checks[max(depth_of[k] for k in keys)].append(
            lambda values, keys=keys, combinations=combinations: (
                tuple(values[k] for k in keys) in combinations
            )
        )
    for rule in excludes.rules:
        checks[max(depth_of[k] for k in rule)].append(
            lambda values, rule=rule: all(
                _matches(key, values[key], allowed) for key, allowed in rule.items()
            )
        )
    values: dict = {}

    def walk(depth: int) -> Iterator[dict]:
        if depth == len(axes):
            yield dict(values)
            return
        key, choices = axes[depth]
        for choice in choices:
            values[key] = choice
            if not any(check(values) for check in checks[depth]):
                yield from walk(depth + 1)
        values.pop(key, None)

    return walk(0)


def _matches(key: str, value: object, allowed: frozenset) -> bool:
    if key == "device":
        family = device_kind(str(value))
        return "auto" in allowed or value in allowed or family in allowed
    return value in allowed


def expand(suite: Suite, devices: Sequence[str]) -> list[Cell]:
    """Every cell of the suite on the given devices, excludes applied, in a deterministic order.

    Cells of one (device, model, precision) group are contiguous so a worker builds each model once.
    """
    m = suite.matrix
    options = suite.options
    cells: dict[str, Cell] = {}
    # Levers that rebuild or change modules (quant, memory) sit outside the stage loop, so a
    # worker builds each quantised or offloaded model once per stage.
    axes = [
        (key, resolve_devices(m["device"], devices) if key == "device" else m[key])
        for key in _COMBO_KEYS
    ]
    for values in _kept_combinations(axes, _as_sets(suite.excludes)):
        for cell in _serve_cells(_cell(values, options), suite.serve):
            cells.setdefault(cell.cell_id, cell)  # precision "fp8" and bf16 + fp8dq are one cell
    return _grouped(list(cells.values()))


_COMBO_KEYS = (
    "device",
    "model",
    "precision",
    "quant",
    "memory",
    "stage",
    "resolution",
    "batch_size",
    "attention",
    "compile",
    "cache",
)


def _cell(values: dict, options: dict) -> Cell:
    resolution = values["resolution"]
    assert isinstance(resolution, Resolution)
    spec = MODELS[values["model"]]
    precision, quant = values["precision"], values["quant"]
    if precision in PRECISION_ALIASES:
        precision, quant = PRECISION_ALIASES[precision]
    return Cell(
        model=values["model"],
        stage=values["stage"],
        device=values["device"],
        height=resolution.height,
        width=resolution.width,
        batch_size=values["batch_size"],
        precision=precision,
        attention=values["attention"],
        compile=values["compile"],
        cfg=spec.default_cfg if options["cfg"] == "model" else options["cfg"],
        steps=spec.default_steps if options["steps"] == "model" else options["steps"],
        weights=options["weights"],
        channels_last=options["channels_last"],
        vae=options["vae"],
        memory=values["memory"],
        quant=quant,
        cache=values["cache"],
    )


def _serve_cells(cell: Cell, serve: ServeTable | None) -> list[Cell]:
    """A serve cell per offered rate (or the one closed loop); other stages pass through.

    The batch_size axis does not apply to serving: its batch size is [serve] max_batch.
    """
    if cell.stage != "serve" or serve is None:
        return [cell]
    common = dict(
        batch_size=serve.max_batch, duration_s=serve.duration_s, requests=serve.requests,
        max_wait_ms=serve.max_wait_ms, slo_p99_s=serve.slo_p99_s, serve_seed=serve.seed,
    )  # fmt: skip
    if serve.concurrency is not None:
        return [replace(cell, concurrency=serve.concurrency, **common)]
    return [
        replace(cell, rate_rps=None if rate == "auto" else float(rate), **common)
        for rate in serve.rates
    ]


def _grouped(cells: list[Cell]) -> list[Cell]:
    """Cells in their order, each (device, model, precision) group made contiguous (stable)."""
    first_seen: dict[tuple, int] = {}
    for cell in cells:
        first_seen.setdefault(cell.group, len(first_seen))
    return sorted(cells, key=lambda cell: first_seen[cell.group])
