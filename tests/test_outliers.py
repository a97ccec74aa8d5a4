"""Noise cannot become a headline: outlier cells are flagged and kept out of speed-up claims."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from report_fixtures import cell_key, only_row, scale_cell, synthetic_rows

from sdbench.analysis.best import fastest_settings
from sdbench.analysis.outliers import SPREAD_LIMIT, flag_outliers
from sdbench.analysis.precision_gains import precision_gains
from sdbench.cli import main
from sdbench.store import write_run

PLANTED = ("cpu", "unet", 256, 1, "fp32", "sdpa", "none")


@pytest.fixture
def planted() -> pd.DataFrame:
    # The case: fp32 at batch 1 measured 4x slow, so slower per call than batch 2.
    rows = synthetic_rows()
    scale_cell(rows, PLANTED, 4.0)
    return pd.DataFrame(rows)


def _flagged(frame: pd.DataFrame) -> pd.DataFrame:
    flagged = flag_outliers(frame)
    return flagged[flagged["outlier_reason"].notna()]


def test_consistent_results_have_no_outliers():
    assert _flagged(pd.DataFrame(synthetic_rows())).empty


def test_cell_slower_than_its_larger_batch_is_the_one_flagged(planted):
    flagged = _flagged(planted)
    assert [cell_key(row) for _, row in flagged.iterrows()] == [PLANTED]
    reason = flagged["outlier_reason"].iloc[0]
    assert "contradicts its neighbour" in reason
    assert "256x256 batch 2" in reason


def test_noisy_cell_is_flagged_by_its_spread():
    rows = synthetic_rows()
    noisy = next(
        r for r in rows if cell_key(r) == ("cpu", "vae_decode", 256, 2, "bf16", "sdpa", "none")
    )
    noisy["iqr_ms"] = noisy["median_ms"] * (SPREAD_LIMIT + 0.05)
    flagged = _flagged(pd.DataFrame(rows))
    assert len(flagged) == 1
    assert flagged["outlier_reason"].iloc[0].startswith("noisy: IQR is 30% of the median")


def test_batching_gain_within_physics_is_not_flagged():
    # Batch 2 taking 1.2x batch 1's time (a GPU's batching gain) does more work in more time.
    rows = synthetic_rows(devices=("cuda:0",))
    for row in rows:
        if row["batch_size"] == 2 and row["status"] == "ok":
            scale_cell([row], cell_key(row), 0.6)
    assert _flagged(pd.DataFrame(rows)).empty


def test_best_claims_no_speedup_against_a_flagged_default(planted):
    best = fastest_settings(planted)
    row = only_row(best, device="cpu", stage="unet", height=256, batch_size=1)
    # Without the flag the 4x-slow default would give bf16 a 4 / 0.55 = 7.3x "speed-up".
    assert pd.isna(row["speedup"])
    assert row["outliers"] == 1
    assert "default cell is flagged" in row["reason"]
    assert row["precision"] == "bf16"


def test_best_speedups_carry_a_95_percent_ci(planted):
    best = fastest_settings(planted)
    claimed = best[best["speedup"].notna()]
    assert len(claimed) > 0
    assert (claimed["speedup_ci95_low"] <= claimed["speedup"]).all()
    assert (claimed["speedup"] <= claimed["speedup_ci95_high"]).all()
    cpu_vae = only_row(claimed, device="cpu", stage="vae_decode", height=256, batch_size=1)
    # bf16 is 0.55x fp32 in the fixtures; samples spread -2%..+3% around each median.
    assert cpu_vae["speedup"] == pytest.approx(1 / 0.55)
    assert 1 / 0.55 / 1.06 < cpu_vae["speedup_ci95_low"] < 1 / 0.55
    assert 1 / 0.55 < cpu_vae["speedup_ci95_high"] < 1 / 0.55 * 1.06


def test_precision_table_leaves_the_outlier_out_of_its_pairs(planted):
    gains = precision_gains(planted)
    row = only_row(gains, device="cpu", stage="unet", precision="bf16")
    # CPU unet pairs: 2 sizes x 2 batches x 2 attentions = 8, one failed (error), one flagged.
    assert row["pairs"] == 6
    assert row["outliers"] == 1
    assert row["speedup"] == pytest.approx(1 / 0.55)
    assert row["speedup_ci95_low"] < 1 / 0.55 < row["speedup_ci95_high"]
    assert row["speedup_ci95_high"] < 1 / 0.55 * 1.05
    assert row["fidelity"] == "pass"
    assert row["verdict"] == "yes: 1.82x faster"


def test_precision_table_says_when_fidelity_fails():
    gains = precision_gains(pd.DataFrame(synthetic_rows()))
    fp16_unet = only_row(gains, device="cuda:0", stage="unet", precision="fp16")
    assert fp16_unet["fidelity"] == "fail"
    assert fp16_unet["verdict"] == "no: fails fidelity"


def test_best_by_precision_prints_one_row_per_stage_and_precision(tmp_path, capsys):
    rows = synthetic_rows()
    scale_cell(rows, PLANTED, 4.0)
    write_run(rows, tmp_path / "run-a.parquet")
    assert main(["best", str(tmp_path), "--by", "precision", "--format", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    keys = {(r["device"], r["stage"], r["precision"]) for r in answer}
    assert keys == {
        ("cpu", "unet", "bf16"),
        ("cpu", "vae_decode", "bf16"),
        ("cuda:0", "unet", "fp16"),
        ("cuda:0", "unet", "bf16"),
        ("cuda:0", "vae_decode", "fp16"),
        ("cuda:0", "vae_decode", "bf16"),
    }
    cpu_unet = next(r for r in answer if (r["device"], r["stage"]) == ("cpu", "unet"))
    assert cpu_unet["outliers"] == 1


def test_the_run_summary_names_each_outlier_and_why(planted):
    from sdbench.runner.run import outlier_lines

    lines = outlier_lines(planted.to_dict("records"))
    assert len(lines) == 1
    assert lines[0].startswith("sd15 unet 256x256 bs1 fp32 sdpa")
    assert "contradicts its neighbour" in lines[0]


def _series_rows(*cells: tuple[str, int, float]) -> pd.DataFrame:
    """Hand-made ok rows of one series, (machine_id, batch_size, median ms) each, CI ±2%."""
    return pd.DataFrame(
        [
            {
                "machine_id": machine,
                "device": "cuda:0",
                "model": "sd15",
                "stage": "unet",
                "precision": "fp16",
                "attention": "sdpa",
                "compile": "none",
                "status": "ok",
                "height": 512,
                "width": 512,
                "batch_size": batch,
                "median_ms": median,
                "ci95_low_ms": median * 0.98,
                "ci95_high_ms": median * 1.02,
                "iqr_ms": median * 0.05,
            }
            for machine, batch, median in cells
        ]
    )


def test_a_cell_slower_than_two_larger_neighbours_names_the_first_in_row_order():
    flagged = flag_outliers(_series_rows(("m1", 1, 50.0), ("m1", 4, 40.0), ("m1", 2, 30.0)))
    assert flagged["outlier_reason"].tolist()[1:] == [None, None]
    assert flagged["outlier_reason"].iloc[0] == (
        "contradicts its neighbour: 512x512 batch 1 took 50.0 ms, slower than 512x512 batch 4 "
        "(40.0 ms) which does more work; it was likely slowed by other load: measure it again"
    )


def test_a_noisy_cell_that_also_contradicts_its_neighbour_is_called_noisy():
    frame = _series_rows(("m1", 1, 50.0), ("m1", 2, 30.0))
    frame.loc[0, "iqr_ms"] = 20.0
    reasons = flag_outliers(frame)["outlier_reason"].tolist()
    assert reasons[0].startswith("noisy: IQR is 40% of the median (limit 25%)")
    assert reasons[1] is None


def test_another_machines_larger_faster_cell_is_no_neighbour():
    flagged = flag_outliers(_series_rows(("m1", 1, 50.0), ("m2", 2, 30.0), ("m2", 1, 20.0)))
    assert flagged["outlier_reason"].isna().all()
