"""Change points across runs: real steps are found at the right run with their size; noise is not a step."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from sdbench.analysis.history import (
    RunningMedian,
    cell_series,
    change_points,
    detect_steps,
    optimal_partition,
)
from sdbench.cell import Cell
from sdbench.cli import main
from sdbench.store import write_run

UNET = Cell("sd15", "unet", "cuda:0", 512, 512, 1, "fp16", "sdpa", "none")
VAE = Cell("sd15", "vae_decode", "cuda:0", 512, 512, 1, "fp16", "sdpa", "none")
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def history_frame(
    levels: dict[Cell, list[float]], rng: np.random.Generator, noise: float = 0.015
) -> pd.DataFrame:
    """One row per cell per run; run i starts i hours after T0; each level gets 1.5% noise."""
    rows = []
    for cell, series in levels.items():
        for i, level in enumerate(series):
            rows.append(
                cell.to_dict()
                | {
                    "run_id": f"run{i:03d}",
                    "cell_id": cell.cell_id,
                    "started_at": T0 + timedelta(hours=i),
                    "status": "ok",
                    "median_ms": level * (1 + rng.normal(0, noise)),
                    "peak_mem_reserved_bytes": 3 * 1024**3,
                }
            )
    return pd.DataFrame(rows)


def test_a_ten_percent_step_is_found_at_the_run_where_it_happened():
    rng = np.random.default_rng(0)
    frame = history_frame({UNET: [40.0] * 25 + [44.0] * 15, VAE: [30.0] * 40}, rng)
    changes = change_points(frame)
    assert changes["cell_id"].tolist() == [UNET.cell_id]
    step = changes.iloc[0]
    assert step["run_id"] == "run025"
    assert step["started_at"] == pd.Timestamp(T0 + timedelta(hours=25))
    assert step["before"] == pytest.approx(40.0, rel=0.01)
    assert step["after"] == pytest.approx(44.0, rel=0.01)
    assert step["change_pct"] == pytest.approx(10.0, abs=1.5)
    assert (step["runs_before"], step["runs_after"]) == (25, 15)


def test_noise_alone_yields_no_change_points_across_seeds():
    found = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        frame = history_frame({UNET: [40.0] * 30, VAE: [30.0] * 30}, rng, noise=0.02)
        found += len(change_points(frame))
    assert found <= 1


def test_one_outlier_run_is_not_a_step():
    rng = np.random.default_rng(3)
    series = [40.0] * 30
    series[12] = 70.0
    assert change_points(history_frame({UNET: series}, rng)).empty


def test_up_then_down_gives_two_steps_with_sizes():
    rng = np.random.default_rng(4)
    frame = history_frame({UNET: [40.0] * 12 + [60.0] * 10 + [40.0] * 12}, rng)
    changes = change_points(frame)
    assert changes["run_id"].tolist() == ["run012", "run022"]
    assert changes["change_pct"].tolist() == pytest.approx([50.0, -33.3], abs=2.0)


def test_steps_below_the_practical_threshold_are_merged_away():
    rng = np.random.default_rng(5)
    frame = history_frame({UNET: [40.0] * 20 + [41.2] * 20}, rng, noise=0.002)
    assert len(change_points(frame, min_change_pct=1.0)) == 1  # 3% is a real, visible step ...
    assert change_points(frame).empty  # ... but below the default 5% practical threshold


def test_runs_are_ordered_by_started_at_not_by_file_order():
    rng = np.random.default_rng(6)
    frame = history_frame({UNET: [40.0] * 15 + [50.0] * 15}, rng).sample(frac=1.0, random_state=1)
    assert change_points(frame)["run_id"].tolist() == ["run015"]


def test_failed_cells_are_left_out_of_the_series():
    rng = np.random.default_rng(7)
    frame = history_frame({UNET: [40.0] * 10}, rng)
    frame.loc[3, "status"] = "oom"
    series = cell_series(frame)
    assert len(series) == 9 and "run003" not in series["run_id"].tolist()


def test_other_metrics_and_unknown_metrics():
    rng = np.random.default_rng(8)
    frame = history_frame({UNET: [40.0] * 20}, rng)
    frame.loc[10:, "peak_mem_reserved_bytes"] = 4 * 1024**3
    memory = change_points(frame, metric="peak_mem_reserved_bytes")
    assert memory["run_id"].tolist() == ["run010"]
    assert memory["change_pct"].iloc[0] == pytest.approx(100 / 3)
    from sdbench.errors import BadInput

    with pytest.raises(BadInput, match="No column"):
        change_points(frame, metric="median_s")


def test_optimal_partition_matches_brute_force_on_small_series():
    rng = np.random.default_rng(9)
    for _ in range(30):
        y = rng.choice([1.0, 2.0, 5.0], size=7) + rng.normal(0, 0.1, 7)
        penalty = 0.8
        assert _cost(y, optimal_partition(y, penalty, 1), penalty) == pytest.approx(
            _brute_force(y, penalty)
        )


def _cost(y, starts, penalty):
    bounds = [0, *starts, len(y)]
    segments = [y[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return sum(np.abs(s - np.median(s)).sum() for s in segments) + penalty * len(starts)


def _brute_force(y, penalty):
    from itertools import combinations

    n = len(y)
    return min(_cost(y, list(c), penalty) for k in range(n) for c in combinations(range(1, n), k))


def test_running_median_abs_deviation_matches_numpy():
    rng = np.random.default_rng(10)
    values = rng.normal(0, 1, 51)
    running = RunningMedian()
    for i, value in enumerate(values, start=1):
        running.add(float(value))
        seen = values[:i]
        assert running.abs_deviation() == pytest.approx(np.abs(seen - np.median(seen)).sum())


def test_short_series_have_no_steps():
    assert detect_steps([1.0, 2.0, 3.0]) == []


def test_history_command_lists_steps_as_text_and_json(tmp_path, capsys):
    rng = np.random.default_rng(11)
    frame = history_frame({UNET: [40.0] * 10 + [48.0] * 10}, rng)
    for run_id, rows in frame.groupby("run_id"):
        write_run(rows.to_dict("records"), tmp_path / f"{run_id}.parquet")
    assert main(["history", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "run010" in text and UNET.label() in text and "+20." in text
    assert main(["history", str(tmp_path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [row["run_id"] for row in data] == ["run010"]
    assert data[0]["cell_id"] == UNET.cell_id
