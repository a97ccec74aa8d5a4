"""What gpu-check's results must show, and its summary: one `Check` per claim, pass or fail."""

from __future__ import annotations

from dataclasses import dataclass

from sdbench.export.table import format_table, human_bytes
from sdbench.gpucheck.suite import OOM_BATCH


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def judge_kernels(report: dict) -> list[Check]:
    """Every forced backend ran only its own kernel, and no two backends ran the same kernels."""
    problems, ran = [], {}
    for attention, seen in report.items():
        if "unsupported" in seen:
            continue
        if seen["mismatch"]:
            problems.append(seen["mismatch"])
        ran[attention] = tuple(seen["backends"])
    names = sorted(ran)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if ran[first] == ran[second]:
                problems.append(f"{first} and {second} ran the same kernels {list(ran[first])}")
    skipped = sorted(set(report) - set(ran))
    detail = "; ".join(problems) or (
        ", ".join(f"{a} -> {'/'.join(ran[a]) or 'none'}" for a in names)
        + (f" (unsupported here: {', '.join(skipped)})" if skipped else "")
    )
    return [Check("attention kernels", not problems and bool(ran), detail or "no backend ran")]


def row_label(row: dict) -> str:
    extras = [row["attention"]] + (
        [f"compile={row['compile']}"] if row["compile"] != "none" else []
    )
    return (
        f"{row['model']} {row['stage']} {row['width']}x{row['height']} bs{row['batch_size']} "
        f"{row['precision']} {' '.join(extras)}"
    )


def _present(value) -> bool:
    """True for a measured value; False for None and NaN (how pandas shows a null)."""
    return value is not None and value == value


def verify_rows(
    rows: list[dict], device: dict, cpu_dry_run: bool, expected_cells: int
) -> list[Check]:
    """What the results must show: every cell on the device itself, no errors, the planned OOM."""
    ok_rows = [r for r in rows if r["status"] == "ok"]
    checks = [
        Check(
            "all cells",
            len(rows) == expected_cells,
            f"{len(rows)} of {expected_cells} cells have a row",
        ),
        _device_check(rows, device, cpu_dry_run),
    ]
    broken = [r for r in rows if r["status"] in ("error", "timeout")]
    checks.append(
        Check(
            "no errors",
            not broken,
            "; ".join(f"{row_label(r)}: {r['status']}: {str(r.get('error'))[:200]}" for r in broken)
            or "no cell ended in error or timeout",
        )
    )
    planned = [r for r in rows if r["batch_size"] == OOM_BATCH]
    checks.append(
        Check(
            "planned out-of-memory cell",
            bool(planned) and all(r["status"] == "oom" for r in planned),
            "; ".join(
                f"{row_label(r)}: {r['status']} ({str(r.get('error'))[:120]})" for r in planned
            )
            or "the suite has no planned OOM cell",
        )
    )
    stages = {(r["model"], r["stage"]) for r in rows}
    unmeasured = sorted(stages - {(r["model"], r["stage"]) for r in ok_rows})
    checks.append(
        Check(
            "every stage measured",
            not unmeasured,
            f"no ok cell for {unmeasured}"
            if unmeasured
            else f"{len(ok_rows)} ok cells, {len(stages)} stages",
        )
    )
    checks.append(_memory_check(ok_rows, cpu_dry_run))
    checks.append(lever_check(rows, cpu_dry_run))
    checks.append(_telemetry_check(ok_rows, cpu_dry_run))
    if not cpu_dry_run:
        checks.append(_compile_check(rows))
    return checks


def _device_check(rows: list[dict], device: dict, cpu_dry_run: bool) -> Check:
    """Rows must come from the device asked for: a GPU row named after the CPU fell back."""
    wrong = [r for r in rows if r["device"] != device["id"]]
    if not cpu_dry_run:
        wrong += [
            r
            for r in rows
            if r["status"] == "ok"
            and (
                r.get("device_name") != device["name"] or r.get("device_name") == r.get("cpu_model")
            )
        ]
    detail = "; ".join(
        f"{row_label(r)} ran on {r['device']} ({r.get('device_name')})" for r in wrong[:5]
    )
    return Check(
        "ran on the device",
        not wrong,
        detail or f"every row on {device['id']} ({device['name']})",
    )


def _memory_check(ok_rows: list[dict], cpu_dry_run: bool) -> Check:
    column = "peak_rss_bytes" if cpu_dry_run else "peak_mem_allocated_bytes"
    missing = [row_label(r) for r in ok_rows if not _present(r.get(column)) or not r[column] > 0]
    return Check(
        "peak memory",
        not missing,
        f"no {column} for {missing[:5]}" if missing else f"{column} measured for every ok cell",
    )


NVML_COLUMNS = ("sm_clock_mhz", "max_temp_c", "avg_power_w", "energy_j")


def _lever(row: dict) -> str:
    return " ".join(
        str(row.get(k)) for k in ("memory", "quant", "cache") if row.get(k) not in (None, "none")
    )


def lever_check(rows: list[dict], cpu_dry_run: bool) -> Check:
    """The lever slice: offload lowers the pipeline's peak device memory, every ok quantised or
    cached row passes its fidelity tolerance, and what cannot run here says why."""
    levers = [r for r in rows if _lever(r)]
    if not levers:
        return Check("levers", True, "the suite has no lever cells")
    plain = [r for r in rows if r["stage"] == "pipeline" and not _lever(r) and r["status"] == "ok"]
    plain_peak = plain[0].get("peak_mem_allocated_bytes") if plain else None
    problems, seen = [], []
    for row in levers:
        name = _lever(row)
        if row["status"] == "unsupported":
            seen.append(f"{name}: unsupported ({str(row.get('error'))[:80]})")
            continue
        if row["status"] != "ok":
            continue  # "no errors" reports it
        if row.get("fidelity_ok") is False:
            problems.append(
                f"{name}: fidelity {row.get('ref_rel_err'):.3g} above {row.get('fidelity_tolerance')}"
            )
        peak = row.get("peak_mem_allocated_bytes")
        if (
            "offload" in name
            and not cpu_dry_run
            and not (_present(peak) and _present(plain_peak) and peak < plain_peak)
        ):
            problems.append(
                f"{name}: peak {human_bytes(peak)} not below the plain pipeline's {human_bytes(plain_peak)}"
            )
        seen.append(
            f"{name}: ok, {_number(row.get('median_ms'))} ms, {human_bytes(_peak_bytes(row))}"
        )
    return Check("levers", not problems, "; ".join(problems) or "; ".join(seen))


def _telemetry_check(ok_rows: list[dict], cpu_dry_run: bool) -> Check:
    """NVIDIA GPUs: NVML must have answered for every ok cell (clocks, temperature, energy)."""
    if cpu_dry_run:
        missing = [row_label(r) for r in ok_rows if not _present(r.get("telemetry_backend"))]
        return Check(
            "telemetry",
            not missing,
            f"no telemetry_backend for {missing[:5]}" if missing else "host telemetry recorded",
        )
    if any(str(r.get("cuda") or "").startswith("rocm") for r in ok_rows):
        return Check("telemetry", True, "skipped: NVML columns are checked on NVIDIA GPUs only")
    problems = []
    for row in ok_rows:
        if "nvml" not in str(row.get("telemetry_backend")) or _present(row.get("telemetry_error")):
            problems.append(f"{row_label(row)}: NVML not read ({row.get('telemetry_error')})")
            continue
        long_enough = (row.get("telemetry_window_s") or 0) >= (row.get("energy_min_window_s") or 0)
        wanted = NVML_COLUMNS if long_enough else NVML_COLUMNS[:2]
        nulls = [c for c in wanted if not _present(row.get(c))]
        if nulls:
            problems.append(f"{row_label(row)}: null {', '.join(nulls)}")
    return Check(
        "NVML telemetry",
        not problems,
        "; ".join(problems[:5]) or f"{', '.join(NVML_COLUMNS)} present for every ok cell",
    )


def _compile_check(rows: list[dict]) -> Check:
    compiled = [r for r in rows if r["compile"] != "none"]
    good = [r for r in compiled if r["status"] == "ok" and _present(r.get("compile_s"))]
    detail = "; ".join(
        f"{row_label(r)}: {r['status']}, compile {r.get('compile_s') or 0:.0f} s"
        + (f" ({str(r.get('error'))[:150]})" if r["status"] != "ok" else "")
        for r in compiled
    )
    return Check(
        "torch.compile", bool(compiled) and len(good) == len(compiled), detail or "no compile cell"
    )


def summary_text(
    rows: list[dict], checks: list[Check], device: dict, probe: dict | None, wall_s: float
) -> str:
    """summary.txt: the machine, every cell's headline figures and statuses, then the checks."""
    first = rows[0] if rows else {}
    lines = [
        f"sdbench gpu-check: {device['id']} {device['name']}, run {first.get('run_id')}, {wall_s:.0f} s",
        ", ".join(
            f"{name} {first.get(name) if _present(first.get(name)) else '-'}"
            for name in ("torch", "cuda", "driver", "diffusers", "host", "cpu_model")
        ),
        "",
    ]
    table = []
    for row in rows:
        mfu = _mfu(row, probe)
        table.append(
            [
                row_label(row),
                row["status"],
                _number(row.get("median_ms")),
                _number(row.get("it_per_s")),
                _number(row.get("images_per_s")),
                f"{mfu:.1%}" if mfu is not None else None,
                human_bytes(_peak_bytes(row)),
                _number(row.get("energy_per_image_j")),
                {True: "pass", False: "FAIL"}.get(row.get("fidelity_ok"))
                if row["status"] == "ok"
                else None,
                _note(row),
            ]
        )
    headers = [
        "cell",
        "status",
        "median ms",
        "it/s",
        "img/s",
        "MFU",
        "peak mem",
        "J/image",
        "fidelity",
        "note",
    ]
    lines += [format_table(headers, table, fit=False), ""]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    lines.append("statuses: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    lines += ["", "checks:"] + [
        f"  {'PASS' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in checks
    ]
    failed = [c.name for c in checks if not c.ok]
    lines.append("")
    lines.append(f"gpu-check FAILED: {', '.join(failed)}" if failed else "gpu-check passed")
    return "\n".join(lines) + "\n"


def _number(value) -> float | None:
    return float(value) if _present(value) else None


def _peak_bytes(row: dict) -> float | None:
    for column in ("peak_mem_reserved_bytes", "peak_mem_allocated_bytes", "peak_rss_bytes"):
        if _present(row.get(column)):
            return float(row[column])
    return None


def _mfu(row: dict, probe: dict | None) -> float | None:
    """The row's MFU, or the same ratio against the probe's peak when the worker had none."""
    if _present(row.get("mfu")):
        return float(row["mfu"])
    if not probe or not _present(row.get("tflops_per_s")):
        return None
    from types import SimpleNamespace

    from sdbench.runner.derived import peak_figures

    return peak_figures(row["precision"], float(row["tflops_per_s"]), SimpleNamespace(probe=probe))[
        "mfu"
    ]


def _note(row: dict) -> str | None:
    if row["status"] == "ok":
        warnings = row.get("warnings")
        return f"{len(warnings)} warning(s)" if warnings is not None and len(warnings) else None
    return str(row.get("error") or "")[:90] or None
