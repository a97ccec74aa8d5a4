"""Read a suite TOML file and validate every key and value, naming the file and key on error."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdbench import levers
from sdbench.cell import Measure
from sdbench.errors import BadInput, did_you_mean
from sdbench.suite import axes

SECTIONS = ("suite", "matrix", "options", "measure", "exclude", "serve")
OPTION_DEFAULTS: dict[str, Any] = {
    "cfg": True,
    "steps": 20,
    "weights": "random",
    "channels_last": False,
    "vae": "default",
    "skip_larger_after_oom": True,
    "allocator": "tuned",
}
MAX_CELLS = 100_000  # a matrix larger than this is almost certainly a typo
# A cross product up to this many times MAX_CELLS is counted after its [[exclude]] rules.
MAX_PRODUCT_FACTOR = 10
MAX_AXIS_VALUES = 1_000  # per axis; keeps validation fast on absurd input


@dataclass(frozen=True)
class Resolution:
    width: int
    height: int


@dataclass(frozen=True)
class Suite:
    """A validated suite: axes as tuples of allowed values, options, measure settings."""

    name: str
    description: str
    path: str
    matrix: dict[str, tuple] = field(hash=False)
    options: dict[str, Any] = field(hash=False)
    measure: Measure
    excludes: tuple[dict[str, tuple], ...] = field(hash=False)
    text: str = field(default="", repr=False)
    serve: ServeTable | None = None


@dataclass(frozen=True)
class ServeTable:
    """A suite's [serve] table: how requests arrive at a `serve` cell and how they batch."""

    rates: tuple[float | str, ...] = ()  # requests/s, or "auto"; empty with a closed loop
    concurrency: int | None = None
    duration_s: float | None = None
    requests: int | None = None
    max_batch: int = 4
    max_wait_ms: float = 50.0
    slo_p99_s: float = 10.0
    seed: int = 1


class _Context:
    """Where we are in the file, so every error names it."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, message: str) -> BadInput:
        return BadInput(f"{self.source}: [{_printable(key)}] {message}")


def _printable(text: str, limit: int = 80) -> str:
    """A key or value as one short line: control characters escaped, long text cut."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    """repr() of a user's value, cut short so an error message stays one readable paragraph."""
    return _printable(repr(value))


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file, or the packaged suite of that name (`quick`)."""
    from sdbench.suite.packaged import resolve_suite

    path = resolve_suite(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(
            f'Cannot read suite file "{path}": {exc}. Pass a readable UTF-8 TOML file.'
        ) from None
    return parse_suite(text, source=str(path))


def parse_suite(text: str, source: str = "<suite>") -> Suite:
    """Validate suite TOML text; raises BadInput naming the key and allowed values."""
    ctx = _Context(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{source}: not valid TOML ({exc}). Fix the syntax and run again.") from None
    except RecursionError:
        raise BadInput(
            f"{source}: not valid TOML (arrays or tables nested too deeply). Fix the file."
        ) from None
    for section in data:
        if section not in SECTIONS:
            raise ctx.fail(
                section,
                f"unknown section.{did_you_mean(section, SECTIONS)} Allowed sections: {', '.join(SECTIONS)}.",
            )
    info = _table(ctx, data, "suite")
    for key in info:
        if key not in ("name", "description"):
            raise ctx.fail(f"suite.{key}", "unknown key. Allowed keys: name, description.")
    name = _string(ctx, "suite.name", info.get("name", Path(source).stem))
    description = _string(ctx, "suite.description", info.get("description", ""))
    matrix = _matrix(ctx, _table(ctx, data, "matrix"))
    options = _options(ctx, _table(ctx, data, "options"))
    measure = _measure(ctx, _table(ctx, data, "measure"))
    excludes = _excludes(ctx, data.get("exclude", []))
    serve = _serve(ctx, _table(ctx, data, "serve"), "serve" in data, matrix)
    if not data.get("matrix"):  # defaults alone would run a full-size SD1.5 UNet for minutes
        raise ctx.fail(
            "matrix",
            "is missing or empty, so there is nothing to measure. Add a [matrix] table naming at "
            'least the models, e.g. model = ["sd15"] and resolution = [512] (see suites/quick.toml).',
        )
    suite = Suite(name, description, source, matrix, options, measure, excludes, text, serve)
    _check_size(ctx, suite)
    return suite


def _table(ctx: _Context, data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ctx.fail(key, f"must be a table ([{key}]), got {type(value).__name__}.")
    return value


def _string(ctx: _Context, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ctx.fail(key, f"must be a string, got {_show(value)}.")
    return value


def _matrix(ctx: _Context, table: dict) -> dict[str, tuple]:
    for key in table:
        if key not in axes.AXES:
            raise ctx.fail(
                f"matrix.{key}",
                f"unknown axis.{did_you_mean(key, axes.AXES)} Allowed axes: {', '.join(axes.AXES)}.",
            )
    defaults = {
        "model": ["sd15"],
        "stage": ["unet"],
        "device": ["auto"],
        "resolution": [512],
        "batch_size": [1],
        "precision": ["fp32"],
        "attention": ["sdpa"],
        "compile": ["none"],
        "memory": ["none"],
        "quant": ["none"],
        "cache": ["none"],
    }
    matrix = {}
    for axis in axes.AXES:
        values = table.get(axis, defaults[axis])
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise ctx.fail(
                f"matrix.{axis}", "is empty. Give at least one value or leave the axis out."
            )
        _check_length(ctx, f"matrix.{axis}", values)
        # Every parsed value is hashable (str, int, Resolution): dict keeps first-seen order.
        matrix[axis] = tuple(dict.fromkeys(_axis_value(ctx, axis, v) for v in values))
    _check_precision_alias(ctx, matrix)
    return matrix


def _check_precision_alias(ctx: _Context, matrix: dict[str, tuple]) -> None:
    """precision "fp8" is quant fp8dq on bf16: with another quant scheme it says two things."""
    others = [q for q in matrix["quant"] if q not in ("none", "fp8dq")]
    if "fp8" in matrix["precision"] and others:
        raise ctx.fail(
            "matrix.precision",
            f'"fp8" is the quant scheme fp8dq on a bf16 model, and matrix.quant also names '
            f'{", ".join(others)}. Write precision = "bf16" and add "fp8dq" to quant.',
        )


def _check_length(ctx: _Context, key: str, values: list) -> None:
    if len(values) > MAX_AXIS_VALUES:
        raise ctx.fail(
            key, f"has {len(values)} values, more than {MAX_AXIS_VALUES}. Split the suite."
        )


def _choice(ctx: _Context, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ctx.fail(
            key,
            f"unknown value {_show(value)}.{did_you_mean(value, allowed)} Allowed: {', '.join(allowed)}.",
        )
    return value


def _axis_value(ctx: _Context, axis: str, value: Any) -> Any:
    key = f"matrix.{axis}"
    if axis == "model":
        return _choice(ctx, key, value, axes.model_names())
    if axis == "stage":
        if isinstance(value, str) and value in axes.STAGE_ALIASES:
            return axes.STAGE_ALIASES[value]
        return _choice(ctx, key, value, axes.STAGES + tuple(axes.STAGE_ALIASES))
    if axis == "precision":
        return _choice(ctx, key, value, axes.PRECISIONS)
    if axis == "attention":
        return _choice(ctx, key, value, axes.ATTENTIONS)
    if axis == "compile":
        return _choice(ctx, key, value, axes.COMPILE_MODES)
    if axis == "device":
        return parse_device(value, key, ctx.source)
    if axis == "resolution":
        return parse_resolution(value, key, ctx.source)
    if axis == "batch_size":
        return _int(ctx, key, value, minimum=1, maximum=4096)
    if axis in levers.LEVERS:
        try:
            return levers.normalise(axis, value)
        except levers.LeverError as error:
            raise ctx.fail(key, f"{_show(value)}: {error}") from None
    raise AssertionError(axis)


def parse_device(value: Any, key: str = "device", source: str = "command line") -> str:
    if not isinstance(value, str) or not axes.DEVICE_PATTERN.match(value.strip().lower()):
        raise BadInput(
            f"{source}: [{key}] unknown device {_show(value)}. Allowed: {axes.DEVICE_HELP}."
        )
    return value.strip().lower()


def parse_resolution(
    value: Any, key: str = "resolution", source: str = "command line"
) -> Resolution:
    """An int N (square) or "WxH"; both sides multiples of 8 between 64 and 8192."""
    width = height = None
    if isinstance(value, int) and not isinstance(value, bool):
        width = height = value
    elif isinstance(value, str) and re.fullmatch(r"\s*\d{1,6}\s*[xX]\s*\d{1,6}\s*", value):
        w, h = re.split(r"[xX]", value)
        width, height = int(w), int(h)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d{1,6}\s*", value):
        width = height = int(value)
    if width is None or height is None:
        raise BadInput(
            f'{source}: [{key}] {_show(value)} is not a resolution. Use an integer (512 = 512x512) or "WIDTHxHEIGHT" such as "768x512".'
        )
    for side in (width, height):
        if side % 8 or not 64 <= side <= 8192:
            raise BadInput(
                f"{source}: [{key}] {_show(value)}: each side must be a multiple of 8 between 64 and 8192 "
                f"(the VAE downsamples by 8), got {side}. Try {max(64, min(8192, round(side / 8) * 8))}."
            )
    return Resolution(width, height)


def _int(ctx: _Context, key: str, value: Any, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ctx.fail(key, f"must be an integer from {minimum} to {maximum}, got {_show(value)}.")
    return value


def _number(ctx: _Context, key: str, value: Any, minimum: float, maximum: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not minimum <= value <= maximum
    ):
        raise ctx.fail(key, f"must be a number from {minimum} to {maximum}, got {_show(value)}.")
    return float(value)


def _bool(ctx: _Context, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ctx.fail(key, f"must be true or false, got {_show(value)}.")
    return value


def _options(ctx: _Context, table: dict) -> dict[str, Any]:
    options = dict(OPTION_DEFAULTS)
    for key, value in table.items():
        name = f"options.{key}"
        if key not in OPTION_DEFAULTS:
            raise ctx.fail(
                name,
                f"unknown option.{did_you_mean(key, OPTION_DEFAULTS)} Allowed: {', '.join(OPTION_DEFAULTS)}.",
            )
        if key in ("cfg", "steps") and value == "model":
            options[key] = "model"  # each model's usual setting (SDXL-Turbo: 1 step, no cfg)
        elif key == "cfg" and not isinstance(value, bool):
            raise ctx.fail(
                name, f'must be true, false or "model" (each model\'s usual), got {_show(value)}.'
            )
        elif key in ("cfg", "channels_last", "skip_larger_after_oom"):
            options[key] = _bool(ctx, name, value)
        elif key == "steps":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                raise ctx.fail(
                    name,
                    f'must be an integer from 1 to 1000 or "model" (each model\'s usual), got {_show(value)}.',
                )
            options[key] = value
        elif key == "vae":
            options[key] = _choice(ctx, name, value, axes.VAES)
        elif key == "allocator":
            from sdbench.store.schema import ALLOCATORS  # not at import: the store loads pyarrow

            options[key] = _choice(ctx, name, value, ALLOCATORS)
        elif key == "weights":
            options[key] = _weights(ctx, name, value)
    return options


def _weights(ctx: _Context, key: str, value: Any) -> str:
    value = _string(ctx, key, value)
    if value == "random":
        return value
    try:
        folder = Path(value).expanduser()
        if not folder.is_absolute():
            folder = (Path(ctx.source).parent / folder) if ctx.source != "<suite>" else folder
        found = folder.is_dir()
        resolved = str(folder.resolve()) if found else ""
    except (OSError, ValueError, RuntimeError):  # name too long, NUL byte, "~" without a home
        found = False
    if found and _only_pickles(Path(resolved)):
        raise ctx.fail(
            key,
            f"weights folder {_show(value)} holds only pickled weights (.bin, .ckpt, .pt), which "
            "sdbench never loads (unpickling runs code). Convert them to .safetensors (diffusers' "
            'save_pretrained does) or use "random".',
        )
    if not found:
        raise ctx.fail(
            key,
            f"weights folder {_show(value)} does not exist. Give a local diffusers folder (unet/, "
            'vae/, text_encoder/ with .safetensors files) or "random" for random weights.',
        )
    return resolved


PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")


def _only_pickles(folder: Path, limit: int = 10_000) -> bool:
    """Pickled weight files and no .safetensors file among the folder's first `limit` files."""
    pickles = False
    for index, file in enumerate(folder.rglob("*")):
        if file.name.endswith(".safetensors") or index >= limit:
            return False
        pickles = pickles or file.name.endswith(PICKLE_SUFFIXES)
    return pickles


def _measure(ctx: _Context, table: dict) -> Measure:
    limits = {
        "warmup": (0, 1000, int),
        "min_repeats": (1, 100_000, int),
        "max_repeats": (1, 100_000, int),
        "max_time_s": (0.0, 86_400.0, float),
        "target_rel_ci": (0.0, 1.0, float),
        "cell_timeout_s": (1.0, 7 * 86_400.0, float),
    }
    values = {}
    for key, value in table.items():
        name = f"measure.{key}"
        if key not in limits:
            raise ctx.fail(
                name, f"unknown key.{did_you_mean(key, limits)} Allowed: {', '.join(limits)}."
            )
        low, high, kind = limits[key]
        values[key] = (
            _int(ctx, name, value, low, high)
            if kind is int
            else _number(ctx, name, value, low, high)
        )
    measure = Measure(**values)
    if measure.max_repeats < measure.min_repeats:
        raise ctx.fail(
            "measure.max_repeats",
            f"({measure.max_repeats}) is below min_repeats ({measure.min_repeats}). Raise max_repeats or lower min_repeats.",
        )
    return measure


def _excludes(ctx: _Context, value: Any) -> tuple[dict[str, tuple], ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ctx.fail("exclude", "must be an array of tables ([[exclude]] blocks).")
    excludes = []
    for index, rule in enumerate(value):
        if not rule:
            raise ctx.fail(
                f"exclude.{index}", "is empty and would exclude every cell. Name at least one axis."
            )
        parsed = {}
        for key, values in rule.items():
            if key not in axes.AXES:
                raise ctx.fail(
                    f"exclude.{key}",
                    f"unknown axis.{did_you_mean(key, axes.AXES)} Allowed axes: {', '.join(axes.AXES)}.",
                )
            values = values if isinstance(values, list) else [values]
            if not values:
                raise ctx.fail(f"exclude.{key}", "is empty. Give at least one value.")
            _check_length(ctx, f"exclude.{key}", values)
            parsed[key] = tuple(_axis_value(ctx, key, v) for v in values)
        excludes.append(parsed)
    return tuple(excludes)


def _check_size(ctx: _Context, suite: Suite) -> None:
    count = 1
    for values in suite.matrix.values():
        count *= len(values)
    if MAX_CELLS < count <= MAX_CELLS * MAX_PRODUCT_FACTOR:
        count = _count_kept(suite)  # a wide matrix narrowed by [[exclude]] rules is fine
    if count > MAX_CELLS:
        raise ctx.fail(
            "matrix",
            f"expands to {count} cells per device, more than {MAX_CELLS}. Split it into smaller suites.",
        )


def _count_kept(suite: Suite) -> int:
    """Cells per device that no [[exclude]] rule removes (rules naming a device are ignored:
    whether they apply depends on the devices present, so the count is an upper bound).

    Vectorised over the index grid of the cross product: a few milliseconds for 10^6 cells.
    """
    import numpy as np

    axes_here = [a for a in suite.matrix if a != "device"]
    grid = np.indices([len(suite.matrix[a]) for a in axes_here], dtype=np.int16)
    grid = grid.reshape(len(axes_here), -1)
    excluded = np.zeros(grid.shape[1], dtype=bool)
    for rule in (r for r in suite.excludes if "device" not in r):
        match = np.ones(grid.shape[1], dtype=bool)
        for key, allowed in rule.items():
            allowed = frozenset(allowed)  # a lookup per value, however long the rule's list
            positions = [i for i, v in enumerate(suite.matrix[key]) if v in allowed]
            match &= np.isin(grid[axes_here.index(key)], positions)
        excluded |= match
    return int((~excluded).sum())


SERVE_KEYS = (
    "rates", "concurrency", "duration_s", "requests", "max_batch", "max_wait_ms", "slo_p99_s", "seed",
)  # fmt: skip


def _serve(ctx: _Context, table: dict, present: bool, matrix: dict) -> ServeTable | None:
    """The [serve] table, present exactly when the matrix has stage "serve"."""
    wants = "serve" in matrix["stage"]
    if present != wants:
        raise ctx.fail(
            "serve" if present else "matrix.stage",
            'has no "serve" stage in [matrix] to apply to. Add "serve" to [matrix] stage.'
            if present
            else 'stage "serve" needs a [serve] table (rates or concurrency, slo_p99_s). '
            "See docs/serving.md.",
        )
    if not present:
        return None
    for key in table:
        if key not in SERVE_KEYS:
            raise ctx.fail(
                f"serve.{key}",
                f"unknown key.{did_you_mean(key, SERVE_KEYS)} Allowed: {', '.join(SERVE_KEYS)}.",
            )
    if "slo_p99_s" not in table:
        raise ctx.fail("serve.slo_p99_s", "is missing: give the p99 latency target in seconds.")
    if ("rates" in table) == ("concurrency" in table):
        raise ctx.fail(
            "serve",
            'give either rates (open loop: Poisson arrivals, requests/s, or "auto") or '
            "concurrency (closed loop: N clients), not both and not neither.",
        )
    if "duration_s" in table and "requests" in table:
        raise ctx.fail("serve", "give duration_s or requests, not both.")
    number, integer = functools.partial(_number, ctx), functools.partial(_int, ctx)
    return ServeTable(
        rates=_rates(ctx, table["rates"]) if "rates" in table else (),
        concurrency=integer("serve.concurrency", table["concurrency"], 1, 4096)
        if "concurrency" in table
        else None,
        duration_s=number("serve.duration_s", table.get("duration_s", 60), 0.001, 86_400.0)
        if "duration_s" in table or "requests" not in table
        else None,
        requests=integer("serve.requests", table["requests"], 1, 1_000_000)
        if "requests" in table
        else None,
        max_batch=integer("serve.max_batch", table.get("max_batch", 4), 1, 256),
        max_wait_ms=number("serve.max_wait_ms", table.get("max_wait_ms", 50), 0.0, 600_000.0),
        slo_p99_s=number("serve.slo_p99_s", table["slo_p99_s"], 0.001, 86_400.0),
        seed=integer("serve.seed", table.get("seed", 1), 0, 2**32 - 1),
    )


def _rates(ctx: _Context, value: Any) -> tuple[float | str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ctx.fail(
            "serve.rates", 'is empty. Give requests per second, e.g. [0.5, 1], or "auto".'
        )
    _check_length(ctx, "serve.rates", values)
    rates: list[float | str] = []
    for rate in values:
        if rate == "auto":
            rates.append("auto")
        elif isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
            rates.append(_number(ctx, "serve.rates", rate, 1e-6, 100_000.0))
        else:
            raise ctx.fail(
                "serve.rates",
                f"{_show(rate)} is not a rate: give requests per second above zero "
                '(e.g. 0.5) or "auto" (the highest rate whose p99 meets slo_p99_s).',
            )
    return tuple(dict.fromkeys(rates))
