"""`sdbench best`: fastest passing configuration per workload and its speed-up over the plain default."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from report_fixtures import only_row, synthetic_rows, write_history, write_synthetic_run

from sdbench.analysis.best import compile_gains, default_precision, fastest_settings
from sdbench.cli import main
from sdbench.store import read_results
from sdbench.store.files import write_run


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(synthetic_rows())


def _pick(best: pd.DataFrame, device: str, stage: str, size: int, batch: int) -> pd.Series:
    return only_row(best, device=device, stage=stage, height=size, batch_size=batch)


def test_one_row_per_workload(frame):
    best = fastest_settings(frame)
    # 2 devices x 2 stages x 2 resolutions x 2 batch sizes
    assert len(best) == 16
    assert not best.duplicated(["device", "stage", "height", "batch_size"]).any()


def test_gpu_picks_fastest_and_measures_speedup_over_fp16_sdpa(frame):
    row = _pick(fastest_settings(frame), "cuda:0", "vae_decode", 512, 1)
    # fp16 (0.5) x flash (0.9) is the fastest synthetic factor; default is fp16 sdpa.
    assert (row["precision"], row["attention"], row["compile"]) == ("fp16", "flash", "none")
    assert row["default_precision"] == "fp16"
    assert row["default_median_ms"] == pytest.approx(48.0)
    assert row["speedup"] == pytest.approx(1 / 0.9)


def test_failed_fidelity_never_wins(frame):
    # fp16 flash at 256/batch 1 is the fastest cell but its fidelity failed.
    row = _pick(fastest_settings(frame), "cuda:0", "unet", 256, 1)
    assert (row["precision"], row["attention"]) == ("bf16", "flash")
    assert row["rejected_fidelity"] == 1


def test_nonfinite_output_never_wins(frame):
    row = _pick(fastest_settings(frame), "cuda:0", "unet", 256, 2)
    assert (row["precision"], row["attention"]) == ("bf16", "flash")


def test_compiled_cell_can_win_and_cpu_default_is_fp32(frame):
    best = fastest_settings(frame)
    gpu = _pick(best, "cuda:0", "unet", 512, 1)
    assert gpu["compile"] == "default" and gpu["speedup"] == pytest.approx(1.25)
    cpu = _pick(best, "cpu", "unet", 256, 1)
    assert cpu["default_precision"] == "fp32"
    assert cpu["speedup"] == pytest.approx(1 / 0.55)


def test_unmeasured_fidelity_competes_unless_required():
    rows = [
        r for r in synthetic_rows(devices=("cpu",)) if r["stage"] == "unet" and r["height"] == 256
    ]
    for row in rows:
        row["fidelity_ok"] = None if row["precision"] == "bf16" else row["fidelity_ok"]
    frame = pd.DataFrame(rows)
    loose = _pick(fastest_settings(frame), "cpu", "unet", 256, 1)
    assert loose["precision"] == "bf16" and not loose["fidelity_checked"]
    strict = _pick(fastest_settings(frame, require_fidelity=True), "cpu", "unet", 256, 1)
    assert (strict["precision"], strict["attention"]) == ("fp32", "sdpa") and strict[
        "fidelity_checked"
    ]


def test_workload_where_nothing_runs_keeps_a_reason():
    rows = [
        r for r in synthetic_rows(devices=("cpu",)) if r["stage"] == "unet" and r["height"] == 256
    ]
    for row in rows:
        row["status"], row["median_ms"] = "oom", None
    best = fastest_settings(pd.DataFrame(rows))
    assert best["precision"].isna().all()
    assert best["reason"].str.contains("none of").all()
    assert best["speedup"].isna().all()


def test_default_precision_prefers_fp16_then_bf16():
    assert default_precision("cpu", {"fp32", "bf16"}) == "fp32"
    assert default_precision("cuda:0", {"fp16", "bf16"}) == "fp16"
    assert default_precision("cuda:0", {"bf16", "fp32"}) == "bf16"


def test_latest_run_of_a_cell_counts(tmp_path):
    write_history(tmp_path, scales=(1.0, 2.0))
    best = fastest_settings(read_results([tmp_path]))
    row = _pick(best, "cuda:0", "vae_decode", 512, 1)
    assert row["run_id"] == "run-1"
    assert row["median_ms"] == pytest.approx(2 * 48.0 * 0.9)


def test_compile_gains_pairs_compiled_with_eager(frame):
    gains = compile_gains(frame)
    assert len(gains) == 2
    assert gains["speedup"].tolist() == pytest.approx([1.25, 1.25])
    assert gains["compile_s"].tolist() == [45.0, 45.0]


def test_cli_json_and_markdown(tmp_path, capsys):
    path = write_synthetic_run(tmp_path)
    assert main(["best", str(path), "--format", "json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert len(answers) == 16
    assert {"median_ms", "speedup", "precision", "attention", "fidelity_checked"} <= set(answers[0])
    assert main(["best", str(path), "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| device |") and len(lines) == 2 + 16


def test_cli_table_names_the_speedup(tmp_path, capsys):
    path = write_synthetic_run(tmp_path)
    assert main(["best", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1.82x" in out and "Synthetic GPU 24GB" in out


def test_cli_missing_file_is_bad_input(tmp_path, capsys):
    assert main(["best", str(tmp_path / "nope.parquet")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _markdown_column(capsys, name: str) -> list[str]:
    lines = capsys.readouterr().out.splitlines()
    column = [c.strip() for c in lines[0].strip("|").split("|")].index(name)
    return [[c.strip() for c in line.strip("|").split("|")][column] for line in lines[2:]]


def test_two_step_counts_of_one_workload_read_apart_and_one_count_stays_short(tmp_path, capsys):
    rows = synthetic_rows(devices=("cuda:0",))
    longer = [r | {"steps": 50, "cfg": False, "cell_id": r["cell_id"] + "-50"} for r in rows]
    path = write_run(rows + longer, tmp_path / "steps.parquet")
    assert main(["best", str(path), "--format", "markdown"]) == 0
    workloads = _markdown_column(capsys, "workload")
    assert len(workloads) == len(set(workloads)) * 2 == 16  # unet and vae_decode each
    assert workloads.count("512x512 b2, 20 steps with cfg") == 2
    assert workloads.count("512x512 b2, 50 steps without cfg") == 2
    assert main(["best", str(write_synthetic_run(tmp_path)), "--format", "markdown"]) == 0
    assert set(_markdown_column(capsys, "workload")) == {
        "256x256 b1", "256x256 b2", "512x512 b1", "512x512 b2"
    }  # fmt: skip
