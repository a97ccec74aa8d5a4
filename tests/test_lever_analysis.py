"""What levers buy and cost, from result rows: lever tables, winners, memory model, remedies."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sdbench.analysis.best import fastest_settings
from sdbench.analysis.levers import lever_summary, lever_table, measured_memory_ratios
from sdbench.analysis.memory_model import GIB, component_weight_bytes, ways_to_fit
from sdbench.analysis.predict import same_workload
from sdbench.analysis.workload import ImageWorkload


def _row(memory="none", quant="none", cache="none", median=100.0, peak=1000, **extra) -> dict:
    row = {
        "run_id": "r", "started_at": "2026-12-01T00:00:00Z", "status": "ok",
        "device": "cuda:0", "device_name": "NVIDIA H100", "model": "sd15", "stage": "pipeline",
        "height": 512, "width": 512, "batch_size": 2, "cfg": True, "steps": 20,
        "precision": "fp16", "attention": "sdpa", "compile": "none", "channels_last": False,
        "vae": "default", "memory": memory, "quant": quant, "cache": cache,
        "median_ms": median, "ci95_low_ms": median, "ci95_high_ms": median, "iqr_ms": 0.0, "samples_ms": [median] * 5,
        "peak_mem_reserved_bytes": peak, "peak_rss_bytes": 50 * peak,
        "ref_rel_err": 0.01, "fidelity_ok": True, "nonfinite": False, "it_per_s": None,
        "images_per_s": None,
    }  # fmt: skip
    row["cell_id"] = f"{memory}/{quant}/{cache}"
    return row | extra


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row(),
            _row(memory="vae_slicing", median=104.0, peak=700),
            _row(memory="model_offload", median=130.0, peak=400),
            _row(quant="int8dq", median=80.0, peak=800, ref_rel_err=0.05),
            # Fastest and smallest, but its fidelity failed: it must not win either way.
            _row(quant="nf4", median=70.0, peak=300, ref_rel_err=0.6, fidelity_ok=False),
        ]
    )


def test_each_lever_row_gets_its_speedup_and_memory_ratio_against_the_plain_cell(frame):
    table = lever_table(frame).set_index("setting")
    assert table.loc["model_offload", "speedup"] == pytest.approx(100 / 130)
    assert table.loc["model_offload", "memory_ratio"] == pytest.approx(0.4)
    assert table.loc["int8dq", "memory_source"] == "device"
    assert not table.loc["nf4", "fidelity_ok"]


def test_on_a_cpu_the_memory_compared_is_the_peak_host_memory(frame):
    table = lever_table(frame.assign(device="cpu", peak_mem_reserved_bytes=None))
    assert set(table["memory_source"]) == {"host RSS"}
    assert table.set_index("setting").loc["vae_slicing", "memory_ratio"] == pytest.approx(0.7)


def test_the_winners_on_speed_and_memory_are_chosen_among_settings_that_pass_fidelity(frame):
    summary = lever_summary(frame).iloc[0]
    assert summary["speed_setting"] == "int8dq" and summary["speed_speedup"] == 1.25
    assert summary["memory_setting"] == "model_offload"
    assert summary["memory_ref_rel_err"] == 0.01
    assert summary["failing_fidelity"] == 1 and summary["settings"] == 4


def test_two_step_counts_of_one_workload_are_two_summary_rows(frame):
    # At 50 steps the step cache wins on speed; at 20, int8dq as before.
    fifty = frame.assign(steps=50, cell_id=frame["cell_id"] + "/50")
    fifty.loc[fifty["quant"] == "int8dq", "median_ms"] = 120.0
    cached = _row(cache="deepcache:3", median=60.0, peak=1000) | {"steps": 50}
    both = pd.concat([frame, fifty, pd.DataFrame([cached])], ignore_index=True)
    summary = lever_summary(both).set_index("steps")
    assert sorted(summary.index) == [20, 50]
    assert summary.loc[20, "speed_setting"] == "int8dq" and summary.loc[20, "settings"] == 4
    assert summary.loc[50, "speed_setting"] == "deepcache:3" and summary.loc[50, "settings"] == 5
    assert summary.loc[50, "speed_speedup"] == pytest.approx(100 / 60)
    assert (summary["cfg"] == True).all()  # noqa: E712 (a column of booleans)
    from sdbench.report.sections import levers_section

    shown = levers_section(lever_table(both), lever_summary(both)).tables[0].frame
    assert shown["steps"].tolist() == [20, 50]  # the report tells the two rows apart
    # Rows without the columns (files older than them) still make one summary row.
    (old,) = lever_summary(frame.drop(columns=["cfg", "steps"])).to_dict("records")
    assert old["speed_setting"] == "int8dq" and pd.isna(old["steps"])


def test_rows_with_a_lever_do_not_answer_for_the_plain_workload(frame):
    workload = ImageWorkload("sd15", 512, 512, 2, "fp16", 20, "sdpa", "none", cfg=True)
    assert same_workload(frame, workload).tolist() == [True, False, False, False, False]


def test_best_measures_speedups_against_the_cell_with_every_lever_off(frame):
    best = fastest_settings(frame).iloc[0]
    assert best["quant"] == "int8dq" and best["default_median_ms"] == 100.0
    assert best["speedup"] == pytest.approx(1.25)


def test_rows_of_older_files_without_lever_columns_are_plain(frame):
    old = frame.iloc[:1].drop(columns=["memory", "quant", "cache"])
    assert lever_table(old)["setting"].tolist() == ["none"]


def test_quantised_weights_take_the_schemes_bytes_on_linear_layers_only():
    plain = component_weight_bytes("sd15", "fp16")
    int8 = component_weight_bytes("sd15", "fp16", "int8wo")
    # sd15's UNet: 270,049,280 of 859,520,964 counted parameters are linear weights.
    share = 270_049_280 / 859_520_964
    assert int8["unet"] == pytest.approx(plain["unet"] * (1 - share / 2), rel=1e-6)
    assert int8["vae"] == plain["vae"]
    nf4 = component_weight_bytes("sd15", "fp16", "nf4")
    assert nf4["text_encoder"] < int8["text_encoder"] < plain["text_encoder"]


def test_remedies_use_the_ratio_an_accelerator_measured_and_say_so(frame):
    measured = measured_memory_ratios(frame, "sd15")
    assert measured["model_offload"] == (pytest.approx(0.4), "NVIDIA H100, 1 cell")
    assert "nf4" not in measured  # its fidelity failed
    ways = ways_to_fit(ImageWorkload("sdxl", 1024, 1024, 1, "fp16"), 9 * GIB, measured=measured)
    offload = next(w for w in ways if w.startswith("model CPU offload"))
    assert "(measured: 0.40x the plain peak on NVIDIA H100, 1 cell)" in offload
    assert all("measured" not in w for w in ways if not w.startswith("model CPU offload"))


def test_the_report_has_a_levers_section_with_winners_and_a_marked_tradeoff_plot(frame):
    from sdbench.report.sections import levers_section

    section = levers_section(lever_table(frame), lever_summary(frame))
    winners = section.tables[0].frame.iloc[0]
    assert (winners["speed_setting"], winners["memory_setting"]) == ("int8dq", "model_offload")
    assert len(section.tables[1].frame) == 5  # every setting, the plain one included
    svg = section.plots[0].svg
    assert "nf4 (fidelity fails)" in svg and "model_offload" in svg


def test_a_report_without_lever_rows_has_no_levers_section(frame):
    from sdbench.report.sections import levers_section

    assert levers_section(lever_table(frame.iloc[:1]), pd.DataFrame()) is None


def test_best_by_lever_prints_the_winners_per_model_and_stage(frame, tmp_path, capsys):
    from sdbench.cli import main
    from sdbench.store.files import write_run

    path = write_run(frame.to_dict(orient="records"), tmp_path / "levers.parquet")
    assert main(["best", str(path), "--by", "lever", "--format", "json"]) == 0
    (answer,) = json.loads(capsys.readouterr().out)
    assert (answer["speed_setting"], answer["memory_setting"]) == ("int8dq", "model_offload")
    assert main(["best", str(path)]) == 0
    assert "int8dq" in capsys.readouterr().out


def test_best_by_lever_names_the_base_precision_only_when_it_varies(frame, tmp_path, capsys):
    from sdbench.cli import main
    from sdbench.store.files import write_run

    bf16 = frame.assign(precision="bf16", cell_id=frame["cell_id"] + "/bf16")
    for rows, name in ((frame, "fp16"), (pd.concat([frame, bf16]), "both")):
        path = write_run(rows.to_dict(orient="records"), tmp_path / f"{name}.parquet")
        assert main(["best", str(path), "--by", "lever", "--format", "markdown"]) == 0
        lines = capsys.readouterr().out.splitlines()
        workloads = [line.split(" | ")[3] for line in lines[2:]]
        expected = ["512x512 b2"] if name == "fp16" else ["512x512 b2 bf16", "512x512 b2 fp16"]
        assert workloads == expected
