"""`best` and the precision table over several machines: each machine gets its own answer, the
same one it gets alone, and ties and machines where nothing ran are answered the same way."""

from __future__ import annotations

import pandas as pd
import pytest
from report_fixtures import cell_key, only_row, synthetic_rows

from sdbench.analysis.best import fastest_settings
from sdbench.analysis.precision_gains import precision_gains

SLOWER = "slow-box"


def machine_rows(host: str, run_id: str, scale: float, spread: tuple[float, ...] = ()) -> list:
    """The synthetic GPU run as measured on `host`, `scale` times slower; with `spread`, every
    cell keeps those factors as its samples (another sample count than the fixture's five)."""
    rows = synthetic_rows(run_id=run_id, scale=scale, devices=("cuda:0",))
    for row in rows:
        row["host"] = host
        if spread and row["status"] == "ok":
            row["samples_ms"] = [row["median_ms"] * factor for factor in spread]
    return rows


@pytest.fixture
def fleet() -> dict[str, list[dict]]:
    return {
        "testhost": machine_rows("testhost", "run-a", 1.0),
        SLOWER: machine_rows(SLOWER, "run-b", 2.0, spread=(0.97, 0.99, 1.0, 1.0, 1.02, 1.04)),
    }


def by_machine(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    hosts = table["machine"].str.rsplit("·", n=1).str[-1]
    return {host: rows.reset_index(drop=True) for host, rows in table.groupby(hosts)}


def test_each_machine_gets_the_answer_it_gets_alone(fleet):
    together = by_machine(fastest_settings(pd.DataFrame(fleet["testhost"] + fleet[SLOWER])))
    for host, rows in fleet.items():
        alone = fastest_settings(pd.DataFrame(rows))
        pd.testing.assert_frame_equal(together[host], alone, check_dtype=False)
    slow = only_row(together[SLOWER], stage="vae_decode", height=512, batch_size=1)
    # Its own fp16 sdpa default, twice as slow as the first machine's: the same 1/0.9 speed-up.
    assert slow["default_median_ms"] == pytest.approx(2 * 48.0)
    assert slow["speedup"] == pytest.approx(1 / 0.9)
    assert slow["speedup_ci95_low"] < 1 / 0.9 < slow["speedup_ci95_high"]


def test_precision_gains_of_each_machine_are_what_it_gets_alone(fleet):
    together = by_machine(precision_gains(pd.DataFrame(fleet["testhost"] + fleet[SLOWER])))
    for host, rows in fleet.items():
        alone = precision_gains(pd.DataFrame(rows))
        pd.testing.assert_frame_equal(together[host], alone, check_dtype=False)
    assert len(together[SLOWER]) == 4  # unet and vae_decode, each fp16 and bf16


def test_reduced_precision_never_pairs_with_another_machines_fp32():
    fast = [r for r in machine_rows("testhost", "run-a", 1.0) if r["precision"] == "fp16"]
    slow = [r for r in machine_rows(SLOWER, "run-b", 2.0) if r["precision"] == "fp32"]
    gains = by_machine(precision_gains(pd.DataFrame(fast + slow)))
    assert set(gains) == {"testhost"}  # the fp32-only machine has nothing reduced to compare
    row = only_row(gains["testhost"], stage="unet", precision="fp16")
    assert row["pairs"] == 0
    assert row["verdict"] == "no fp32 cell with the same settings to compare with"


def test_a_machine_where_everything_ran_out_of_memory_keeps_its_rows_and_says_why(fleet):
    for row in fleet[SLOWER]:
        row.update(status="oom", error="CUDA out of memory", median_ms=None, samples_ms=[])
    frame = pd.DataFrame(fleet["testhost"] + fleet[SLOWER])
    best = by_machine(fastest_settings(frame))
    assert len(best[SLOWER]) == len(best["testhost"]) == 8
    assert best[SLOWER]["precision"].isna().all() and best[SLOWER]["speedup"].isna().all()
    unet = only_row(best[SLOWER], stage="unet", height=512, batch_size=1)
    assert unet["reason"] == "none of 10 configurations finished ok"
    assert (unet["candidates"], unet["not_ok"]) == (0, 10)
    gains = by_machine(precision_gains(frame))
    assert set(gains[SLOWER]["verdict"]) == {"did not run (oom: CUDA out of memory)"}
    assert best["testhost"]["speedup"].notna().any()


def set_fp16_vae_cell(rows: list[dict], attention: str, median_ms: float, high_ms: float) -> None:
    """Give the fp16 VAE decode cell at 256 px, batch 1, with `attention` these figures."""
    for row in rows:
        if cell_key(row) == ("cuda:0", "vae_decode", 256, 1, "fp16", attention, "none"):
            row.update(median_ms=median_ms, ci95_high_ms=high_ms, samples_ms=[median_ms] * 5)


def fastest_fp16_vae(rows: list[dict]) -> pd.Series:
    best = fastest_settings(pd.DataFrame(rows))
    return only_row(best, stage="vae_decode", height=256, batch_size=1)


def test_a_tie_on_the_median_goes_to_the_lower_ci_then_to_the_row_listed_first():
    rows = machine_rows("testhost", "run-a", 1.0)
    set_fp16_vae_cell(rows, "math", 10.0, 11.5)  # math is listed before flash in the run
    set_fp16_vae_cell(rows, "flash", 10.0, 11.0)
    assert fastest_fp16_vae(rows)[["attention", "ci95_high_ms"]].tolist() == ["flash", 11.0]
    set_fp16_vae_cell(rows, "math", 10.0, 11.0)
    assert fastest_fp16_vae(rows)["attention"] == "math"
