"""compare_runs on synthetic runs: noise is not a regression, a real slowdown is, and nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from sdbench.analysis.compare import bootstrap_ratio_ci, compare_runs
from sdbench.cell import Cell
from sdbench.cli import main
from sdbench.machine import DifferentMachines
from sdbench.store import read_results, write_run

CELLS = [
    Cell("sd15", stage, "cuda:0", res, res, batch, precision, "sdpa", "none")
    for stage in ("unet", "vae_decode")
    for res in (512, 768)
    for batch in (1, 4)
    for precision in ("fp16",)
]
TRUE_MS = {cell.cell_id: 20.0 * (cell.height / 512) ** 2 * cell.batch_size for cell in CELLS}
ENVIRONMENT = {
    "device_name": "NVIDIA A100-SXM4-80GB",
    "cpu_model": "AMD EPYC 7742",
    "gpu_count": 8,
    "torch": "2.5.1",
    "diffusers": "0.31.0",
    "cuda": "12.4",
    "driver": "550.54",
    "python": "3.11.9",
}
T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)


def realistic_samples(
    rng: np.random.Generator, true_ms: float, n: int = 20, run_offset: float = 0.0
) -> list[float]:
    """GPU-like timings: 2% lognormal jitter, a per-run clock offset and 5% slow outliers."""
    samples = true_ms * (1 + run_offset) * rng.lognormal(0.0, 0.02, n)
    outliers = rng.random(n) < 0.05
    samples[outliers] *= rng.uniform(1.1, 1.6, outliers.sum())
    return samples.tolist()


def make_row(
    cell: Cell, run_id: str, samples: list[float], started_at: datetime = T0, **extra
) -> dict:
    row = (
        cell.to_dict()
        | ENVIRONMENT
        | {
            "run_id": run_id,
            "cell_id": cell.cell_id,
            "suite": "synthetic",
            "started_at": started_at,
            "status": "ok",
            "samples_ms": samples,
            "n_samples": len(samples),
            "median_ms": float(np.median(samples)) if samples else None,
            "peak_mem_reserved_bytes": 4 * 1024**3,
            "ref_rel_err": 2e-3,
        }
    )
    return row | extra


def make_run(
    rng: np.random.Generator, run_id: str, slow: dict[str, float] | None = None, **extra
) -> pd.DataFrame:
    slow = slow or {}
    offset = rng.normal(0.0, 0.005)  # the same machine on another day: clocks, temperature
    rows = [
        make_row(
            c,
            run_id,
            realistic_samples(
                rng, TRUE_MS[c.cell_id] * slow.get(c.cell_id, 1.0), run_offset=offset
            ),
            **extra,
        )
        for c in CELLS
    ]
    return pd.DataFrame(rows)


def test_noise_alone_is_never_a_regression_across_many_seeds():
    false_alarms = 0
    seeds = 200
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        result = compare_runs(make_run(rng, "a"), make_run(rng, "b"))
        false_alarms += result.has_regression
    # Below 1% of whole-run comparisons (8 cells each), the bar.
    assert false_alarms / seeds < 0.01, false_alarms


def test_ten_percent_slowdown_in_one_cell_flags_exactly_that_cell():
    target = CELLS[3].cell_id
    for seed in range(20):
        rng = np.random.default_rng(1000 + seed)
        result = compare_runs(make_run(rng, "a"), make_run(rng, "b", slow={target: 1.10}))
        flagged = result.regressions
        assert flagged["cell_id"].tolist() == [target], seed
        row = flagged.iloc[0]
        assert row["metric"] == "median_ms" and row["verdict"] == "slower"
        assert 5 < row["change_pct"] < 15
        assert row["ratio_ci_low"] > 1.0 and row["p_value"] < 0.01
        assert result.has_regression


def test_a_speedup_is_reported_as_faster_and_is_not_a_regression():
    rng = np.random.default_rng(7)
    target = CELLS[0].cell_id
    result = compare_runs(make_run(rng, "a"), make_run(rng, "b", slow={target: 0.8}))
    row = result.table.query("cell_id == @target and metric == 'median_ms'").iloc[0]
    assert row["verdict"] == "faster" and not row["regression"]
    assert not result.has_regression


def test_a_significant_but_small_change_stays_unchanged_under_the_threshold():
    rng = np.random.default_rng(3)
    base = pd.DataFrame([make_row(CELLS[0], "a", list(rng.normal(100, 0.2, 30)))])
    cur = pd.DataFrame([make_row(CELLS[0], "b", list(rng.normal(102, 0.2, 30)))])
    row = compare_runs(base, cur).table.query("metric == 'median_ms'").iloc[0]
    assert row["p_value"] < 1e-6  # statistically certain ...
    assert row["verdict"] == "unchanged"  # ... but 2% is below the 5% practical threshold
    lowered = (
        compare_runs(base, cur, threshold_pct=1.0).table.query("metric == 'median_ms'").iloc[0]
    )
    assert lowered["verdict"] == "slower"


def test_a_big_move_in_a_few_noisy_samples_is_not_called_without_significance():
    base = pd.DataFrame([make_row(CELLS[0], "a", [100.0, 140.0, 80.0])])
    cur = pd.DataFrame([make_row(CELLS[0], "b", [112.0, 70.0, 150.0])])
    row = compare_runs(base, cur).table.query("metric == 'median_ms'").iloc[0]
    assert row["change_pct"] == pytest.approx(12.0)
    assert row["verdict"] == "unchanged"
    assert row["note"].startswith("3 vs 3 samples can never reach p < 0.01")


def test_five_samples_a_side_are_enough_to_flag_a_clear_slowdown():
    base = pd.DataFrame([make_row(CELLS[0], "a", [100.0, 101.0, 99.5, 100.4, 100.2])])
    cur = pd.DataFrame([make_row(CELLS[0], "b", [110.0, 111.0, 109.5, 110.4, 110.2])])
    result = compare_runs(base, cur)
    row = result.table.query("metric == 'median_ms'").iloc[0]
    assert row["verdict"] == "slower" and row["p_value"] == pytest.approx(2 / 252, rel=0.3)
    assert result.notes == []


def test_status_changes_missing_and_new_cells_are_reported():
    rng = np.random.default_rng(11)
    base = make_run(rng, "a")
    cur = make_run(rng, "b")
    oom_id, fixed_id, gone_id = CELLS[0].cell_id, CELLS[1].cell_id, CELLS[2].cell_id
    cur.loc[cur.cell_id == oom_id, ["status", "error"]] = [
        "oom",
        "CUDA out of memory. Tried to allocate 2 GiB",
    ]
    base.loc[base.cell_id == fixed_id, "status"] = "oom"
    cur = cur[cur.cell_id != gone_id]
    extra = Cell("sdxl", "unet", "cuda:0", 1024, 1024, 1, "fp16", "sdpa", "none")
    cur = pd.concat(
        [cur, pd.DataFrame([make_row(extra, "b", realistic_samples(rng, 90.0))])], ignore_index=True
    )
    result = compare_runs(base, cur)
    status = result.table[result.table.metric == "status"].set_index("cell_id")
    assert status.loc[oom_id, "verdict"] == "status changed" and status.loc[oom_id, "regression"]
    assert status.loc[oom_id, ["baseline_status", "current_status"]].tolist() == ["ok", "oom"]
    assert "out of memory" in status.loc[oom_id, "note"]
    assert (
        status.loc[fixed_id, "verdict"] == "status changed"
        and not status.loc[fixed_id, "regression"]
    )
    assert status.loc[gone_id, "verdict"] == "missing" and not status.loc[gone_id, "regression"]
    assert status.loc[extra.cell_id, "verdict"] == "new"
    assert result.regressions["cell_id"].tolist() == [oom_id]  # the only regression, listed first
    assert result.table.iloc[0]["cell_id"] == oom_id


def test_cells_match_by_configuration_not_by_row_position():
    rng = np.random.default_rng(5)
    base = make_run(rng, "a")
    cur = make_run(rng, "b").iloc[::-1].reset_index(drop=True)
    result = compare_runs(base, cur)
    latency = result.table[result.table.metric == "median_ms"]
    assert len(latency) == len(CELLS)
    assert (latency["verdict"] == "unchanged").all()
    assert (latency["ratio"].between(0.97, 1.03)).all()


def test_runs_of_different_machines_get_no_verdict_and_the_error_names_the_differences():
    rng = np.random.default_rng(2)
    base = make_run(rng, "a")
    cur = make_run(rng, "b", device_name="NVIDIA H100 80GB HBM3", torch="2.6.0")
    with pytest.raises(DifferentMachines) as raised:
        compare_runs(base, cur)
    message = str(raised.value)
    assert "device_name NVIDIA A100-SXM4-80GB vs NVIDIA H100 80GB HBM3" in message
    assert "torch 2.5.1 vs 2.6.0" in message and "--across-machines" in message


def test_software_outside_the_machine_identity_is_warned_loudly():
    rng = np.random.default_rng(2)
    base = make_run(rng, "a")
    cur = make_run(rng, "b", cpu_model="Intel Xeon 8480", diffusers="0.32.0")
    warnings = compare_runs(base, cur).environment_warnings
    assert len(warnings) == 2
    assert warnings[0].startswith("HARDWARE DIFFERS (cpu_model)")
    assert "AMD EPYC 7742 vs current Intel Xeon 8480 (8 cells)" in warnings[0]
    assert warnings[1].startswith("SOFTWARE DIFFERS (diffusers)") and "0.31.0" in warnings[1]
    same = compare_runs(base, make_run(rng, "c")).environment_warnings
    assert same == []


def test_memory_growth_beyond_the_byte_threshold_is_a_regression_and_small_growth_is_not():
    rng = np.random.default_rng(9)
    base = make_run(rng, "a")
    cur = make_run(rng, "b")
    cur.loc[cur.cell_id == CELLS[0].cell_id, "peak_mem_reserved_bytes"] += 300 * 1024**2
    cur.loc[cur.cell_id == CELLS[1].cell_id, "peak_mem_reserved_bytes"] += 10 * 1024**2
    cur.loc[cur.cell_id == CELLS[2].cell_id, "peak_mem_reserved_bytes"] -= 512 * 1024**2
    memory = (
        compare_runs(base, cur)
        .table.query("metric == 'peak_mem_reserved_bytes'")
        .set_index("cell_id")
    )
    assert (
        memory.loc[CELLS[0].cell_id, "verdict"] == "worse"
        and memory.loc[CELLS[0].cell_id, "regression"]
    )
    assert memory.loc[CELLS[0].cell_id, "note"] == "+300.0 MiB"
    assert memory.loc[CELLS[1].cell_id, "verdict"] == "unchanged"
    assert (
        memory.loc[CELLS[2].cell_id, "verdict"] == "better"
        and not memory.loc[CELLS[2].cell_id, "regression"]
    )


def test_fidelity_blowup_and_nonfinite_output_are_regressions():
    rng = np.random.default_rng(4)
    base = make_run(rng, "a")
    cur = make_run(rng, "b")
    cur.loc[cur.cell_id == CELLS[0].cell_id, "ref_rel_err"] = 0.2
    cur.loc[cur.cell_id == CELLS[1].cell_id, "nonfinite"] = True
    cur.loc[cur.cell_id == CELLS[2].cell_id, "ref_rel_err"] = (
        2.2e-3  # +10%: within the fidelity band
    )
    fidelity = compare_runs(base, cur).table.query("metric == 'ref_rel_err'").set_index("cell_id")
    assert fidelity.loc[CELLS[0].cell_id, "verdict"] == "worse"
    assert fidelity.loc[CELLS[0].cell_id, "ratio"] == pytest.approx(100.0)
    assert fidelity.loc[CELLS[1].cell_id, "note"] == "current output contains NaN or inf"
    assert fidelity.loc[CELLS[2].cell_id, "verdict"] == "unchanged"


def test_metrics_nobody_measured_get_no_rows():
    rng = np.random.default_rng(1)
    table = compare_runs(make_run(rng, "a"), make_run(rng, "b")).table
    assert set(table["metric"]) == {"median_ms", "peak_mem_reserved_bytes", "ref_rel_err"}


def test_the_latest_of_several_runs_is_compared():
    rng = np.random.default_rng(8)
    cell = CELLS[0]
    old = make_row(cell, "old", realistic_samples(rng, 50.0), started_at=T0)
    new = make_row(cell, "new", realistic_samples(rng, 20.0), started_at=T0 + timedelta(days=1))
    base = pd.DataFrame([new, old])  # file order must not matter
    cur = pd.DataFrame([make_row(cell, "cur", realistic_samples(rng, 20.0))])
    result = compare_runs(base, cur)
    row = result.table.query("metric == 'median_ms'").iloc[0]
    assert row["baseline_run_id"] == "new" and row["verdict"] == "unchanged"
    assert result.notes == [
        "baseline: 1 cell(s) appear in up to 2 runs; each is compared through its latest run (by started_at)."
    ]


def test_bootstrap_ratio_ci_covers_the_true_ratio():
    rng = np.random.default_rng(0)
    base = rng.normal(100, 2, 40)
    cur = rng.normal(110, 2, 40)
    low, high = bootstrap_ratio_ci(base, cur, seed=1)
    assert low < 1.10 < high
    assert high - low < 0.03


def test_rows_without_samples_fall_back_to_stored_confidence_intervals():
    base = pd.DataFrame(
        [make_row(CELLS[0], "a", [], median_ms=100.0, ci95_low_ms=99.0, ci95_high_ms=101.0)]
    )
    cur = pd.DataFrame(
        [make_row(CELLS[0], "b", [], median_ms=120.0, ci95_low_ms=118.0, ci95_high_ms=122.0)]
    )
    row = compare_runs(base, cur).table.query("metric == 'median_ms'").iloc[0]
    assert row["test"] == "ci overlap" and row["verdict"] == "slower"
    assert row["ratio_ci_low"] == pytest.approx(118 / 101)


def write_pair(tmp_path, slow: dict[str, float] | None = None, **current_extra):
    rng = np.random.default_rng(21)
    base = tmp_path / "base" / "a.parquet"
    cur = tmp_path / "cur" / "b.parquet"
    write_run(make_run(rng, "a").to_dict("records"), base)
    write_run(make_run(rng, "b", slow=slow, **current_extra).to_dict("records"), cur)
    return base, cur


def test_compare_command_exits_1_on_regression_and_prints_markdown(tmp_path, capsys):
    base, cur = write_pair(tmp_path, slow={CELLS[5].cell_id: 1.25}, diffusers="0.32.0")
    assert main(["compare", str(base.parent), str(cur.parent), "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert "SOFTWARE DIFFERS (diffusers)" in out
    assert (
        f"| {CELLS[5].label()} | median_ms |" in out
    )  # the config label, as Cell.label() spells it
    assert out.count("**slower**") == 1


def test_compare_command_exits_0_without_regression_and_json_is_parseable(tmp_path, capsys):
    base, cur = write_pair(tmp_path)
    assert main(["compare", str(base), str(cur), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["has_regression"] is False
    assert data["threshold_pct"] == 5.0
    assert len([r for r in data["rows"] if r["metric"] == "median_ms"]) == len(CELLS)


def test_compare_command_round_trips_through_parquet(tmp_path, capsys):
    base, cur = write_pair(tmp_path, slow={CELLS[0].cell_id: 1.3})
    result = compare_runs(read_results([base]), read_results([cur]))
    assert result.regressions["cell_id"].tolist() == [CELLS[0].cell_id]
    assert main(["compare", str(base), str(cur), "--threshold", "50"]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_compare_command_rejects_missing_files_with_exit_2(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope"), str(tmp_path / "nope2")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_energy_is_compared_per_call_since_energy_j_covers_the_whole_window():
    rng = np.random.default_rng(12)
    base = make_run(rng, "a")
    cur = make_run(rng, "b")
    base["energy_j"] = 100.0 * base["n_samples"]  # 100 J per call
    cur["energy_j"] = 100.0 * cur["n_samples"]
    cur.loc[cur.cell_id == CELLS[0].cell_id, ["n_samples", "energy_j"]] = [
        40,
        40 * 100.0,
    ]  # more calls, same J/call
    cur.loc[cur.cell_id == CELLS[1].cell_id, "energy_j"] *= 1.2
    energy = (
        compare_runs(base, cur).table.query("metric == 'energy_per_call_j'").set_index("cell_id")
    )
    assert energy.loc[CELLS[0].cell_id, "verdict"] == "unchanged"
    assert energy.loc[CELLS[0].cell_id, "current"] == pytest.approx(100.0)
    assert (
        energy.loc[CELLS[1].cell_id, "verdict"] == "worse"
        and energy.loc[CELLS[1].cell_id, "regression"]
    )
    assert energy.loc[CELLS[1].cell_id, "change_pct"] == pytest.approx(20.0)


def test_a_move_hidden_in_noise_is_unchanged_with_a_note_saying_so():
    noisy = [100.0, 130.0, 70.0, 100.0, 140.0, 60.0, 100.0, 120.0, 80.0, 100.0]
    base = pd.DataFrame([make_row(CELLS[0], "a", noisy)])
    cur = pd.DataFrame([make_row(CELLS[0], "b", [v * 1.1 for v in noisy])])
    row = compare_runs(base, cur).table.query("metric == 'median_ms'").iloc[0]
    assert row["change_pct"] == pytest.approx(10.0)
    assert row["verdict"] == "unchanged" and row["p_value"] > 0.1
    assert row["note"].startswith("moved +10.0% but not significant")


def test_smallest_p_value_of_mann_whitney_for_small_and_huge_samples():
    from sdbench.analysis.compare import smallest_p_value

    assert smallest_p_value(3, 3) == pytest.approx(0.1)  # 2 / C(6, 3)
    assert smallest_p_value(5, 5) == pytest.approx(2 / 252)
    assert (
        smallest_p_value(5000, 5000) == 0.0
    )  # no overflow on pytest-benchmark's thousands of rounds
