"""The suite gpu-check runs (sdbench/suites/gpu-check.toml) and its CPU dry run derived from it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

GPU_SUITE = Path(__file__).resolve().parents[1] / "suites" / "gpu-check.toml"
OOM_BATCH = 2048  # gpu-check.toml's planned out-of-memory cell (the only batch this big)
DRY_RUN_MODEL, DRY_RUN_STANDS_FOR = "tiny", "sd15"
DRY_RUN_RESOLUTION_DIVISOR = 8
DRY_RUN_STEPS = 2
DRY_RUN_MEASURE = {
    "warmup": 1,
    "min_repeats": 2,
    "max_repeats": 3,
    "max_time_s": 0.05,
    "target_rel_ci": 0.05,
    "cell_timeout_s": 120,
}


def dry_run_suite_text(gpu_suite_text: str) -> str:
    """gpu-check.toml turned into its CPU dry run: the tiny model, resolutions / 8, no compile.

    The tiny model stands in for SD1.5; rules that only shape other models' cells (SDXL) go, as
    those cells do.
    """
    data = tomllib.loads(gpu_suite_text)
    data["suite"]["name"] = "gpu-check-cpu-dry-run"
    data["suite"]["description"] = (
        "gpu-check.toml on the CPU, tiny model (scripts/gpu-check --cpu-dry-run)"
    )
    matrix = data["matrix"]
    matrix.update(model=[DRY_RUN_MODEL], device=["cpu"])
    matrix["compile"] = ["none"]  # inductor's C++ build takes minutes on a 2-core CI machine
    data["measure"] = dict(DRY_RUN_MEASURE)
    # The lever slice's pipeline cells: 2 steps keep the dry run short; steps only shape them.
    data.setdefault("options", {})["steps"] = DRY_RUN_STEPS
    rules = []
    for rule in data.get("exclude", []):
        models = rule.get("model", [DRY_RUN_STANDS_FOR])
        if DRY_RUN_STANDS_FOR not in (models if isinstance(models, list) else [models]):
            continue
        rule.pop("model", None)
        rules.append(rule)
    data["exclude"] = rules
    for table in [matrix, *rules]:
        if "resolution" in table:
            table["resolution"] = _mapped(
                table["resolution"], lambda r: r // DRY_RUN_RESOLUTION_DIVISOR
            )
    return suite_toml(data)


def _mapped(values, function):
    if isinstance(values, list):
        return [function(v) for v in values]
    return function(values)


def suite_toml(data: dict) -> str:
    """TOML for the flat tables and arrays of tables a suite has (strings, numbers, lists)."""
    lines: list[str] = []
    for key, value in data.items():
        tables = value if isinstance(value, list) else [value]
        for table in tables:
            lines.append(f"[[{key}]]" if isinstance(value, list) else f"[{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
            lines.append("")
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)
