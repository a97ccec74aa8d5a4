"""Recommendations for any registered model at its usual steps and guidance, CPU row included."""

from __future__ import annotations

import pandas as pd
import pytest

from sdbench.analysis.analysis import recommendations
from sdbench.analysis.costs import stage_cost
from sdbench.analysis.predict import predict
from sdbench.analysis.recommend import recommend
from sdbench.analysis.workload import ImageWorkload
from sdbench.cli import main
from sdbench.report.sections import which_gpu_section
from sdbench.store import read_results, write_run


def _cpu_row(**values) -> dict:
    base = {"status": "ok", "model": "lcm-sd15", "height": 256, "width": 256, "batch_size": 1,
            "precision": "bf16", "attention": "sdpa", "compile": "none", "cfg": False, "steps": 4,
            "device": "cpu", "device_name": "cpu", "cpu_model": "Test CPU", "vae": "taesd"}  # fmt: skip
    return {**base, **values}


def _stage_rows(unet_ms: float = 500.0, **values) -> list[dict]:
    return [
        _cpu_row(stage="text_encoder", median_ms=30.0, **values),
        _cpu_row(stage="unet", median_ms=unet_ms, it_per_s=1000.0 / unet_ms, **values),
        _cpu_row(stage="vae_decode", median_ms=70.0, **values),
    ]


@pytest.fixture
def results_of(tmp_path):
    def write(rows: list[dict]) -> pd.DataFrame:
        return read_results([write_run(rows, tmp_path / "results" / "run.parquet")])

    return write


def test_without_cfg_the_unet_and_text_encoder_do_half_the_work_and_the_vae_the_same():
    guided = stage_cost(ImageWorkload("sd15", 512, 512, 2, cfg=True), "unet")
    unguided = stage_cost(ImageWorkload("sd15", 512, 512, 2, cfg=False), "unet")
    assert unguided.flops == pytest.approx(
        stage_cost(ImageWorkload("sd15", 512, 512, 1), "unet").flops
    )
    assert unguided.flops == pytest.approx(guided.flops / 2, rel=0.01)
    encoder = stage_cost(ImageWorkload("sd15", 512, 512, 1, cfg=False), "text_encoder").flops
    assert encoder == pytest.approx(
        stage_cost(ImageWorkload("sd15", 512, 512, 1), "text_encoder").flops / 2
    )
    vae = stage_cost(ImageWorkload("sd15", 512, 512, 1, cfg=False), "vae_decode")
    assert vae == stage_cost(ImageWorkload("sd15", 512, 512, 1, cfg=True), "vae_decode")


@pytest.mark.parametrize(
    ("model", "steps", "cfg"),
    [
        ("sd15", 50, True),
        ("lcm-sd15", 4, False),
        ("sdxl-turbo", 1, False),
        ("sd35-medium", 28, True),
    ],
)
def test_steps_and_guidance_default_to_the_model_usual(model, steps, cfg):
    workload = ImageWorkload.usual(model, 512)
    assert (workload.steps, workload.cfg) == (steps, cfg)
    assert ImageWorkload.usual(model, 512, steps=7, cfg=not cfg).steps == 7


def test_a_few_step_model_without_cfg_is_predicted_faster_per_step_and_per_image():
    lcm = predict("4090", ImageWorkload.usual("lcm-sd15", 512))
    guided = predict("4090", ImageWorkload.usual("lcm-sd15", 512, cfg=True))
    assert (lcm.workload.steps, lcm.workload.cfg) == (4, False)
    # Half the UNet work per step; the fitted per-step launch overhead (~18 ms on a 4090) stays.
    assert lcm.it_per_s > 1.1 * guided.it_per_s
    assert lcm.s_per_image < predict("4090", ImageWorkload.usual("sd15", 512)).s_per_image / 4


def test_cpu_row_composes_one_image_from_stage_rows_at_the_workload_steps(results_of):
    results = results_of(_stage_rows(unet_ms=500.0))
    table = recommend(ImageWorkload.usual("lcm-sd15", 256, 256, 1, "fp16"), results=results).table
    cpu = table[table["criterion"] == "cpu"].iloc[0]
    assert cpu["s_per_image"] == pytest.approx((30 + 4 * 500 + 70) / 1000)
    assert cpu["source"] == "measured" and "composed" in cpu["note"]
    assert cpu["gpu"] == "CPU: Test CPU"
    # The GPU rows assume the full VAE; a TAESD-decoded CPU figure says what it is.
    assert "(decoded with taesd)" in cpu["note"]


def test_cpu_rows_with_other_guidance_or_pipeline_steps_do_not_answer(results_of):
    # Guided rows do not describe the unguided workload; a 2-step pipeline call is not a 4-step one.
    results = results_of(
        _stage_rows(cfg=True) + [_cpu_row(stage="pipeline", median_ms=900.0, steps=2)]
    )
    table = recommend(ImageWorkload.usual("lcm-sd15", 256, 256, 1, "fp16"), results=results).table
    assert "cpu" not in set(table["criterion"])
    guided = recommend(
        ImageWorkload.usual("lcm-sd15", 256, 256, 1, "fp16", cfg=True), results=results
    ).table
    assert guided[guided["criterion"] == "cpu"]["s_per_image"].iloc[0] == pytest.approx(2.1)


def test_a_measured_pipeline_call_wins_over_the_composed_one(results_of):
    results = results_of(_stage_rows() + [_cpu_row(stage="pipeline", median_ms=1800.0)])
    table = recommend(ImageWorkload.usual("lcm-sd15", 256, 256, 1, "fp16"), results=results).table
    cpu = table[table["criterion"] == "cpu"].iloc[0]
    assert cpu["s_per_image"] == pytest.approx(1.8) and "composed" not in cpu["note"]


def test_report_which_gpu_has_a_measured_cpu_row_per_distilled_workload(results_of):
    tiny = [dict(row, model="bk-sdm-tiny") for row in _stage_rows(unet_ms=250.0)]
    section = which_gpu_section(*recommendations(results_of(_stage_rows() + tiny)))
    names = [table.title for table in section.tables]
    assert names == [
        "bk-sdm-tiny 256×256 batch 1, 4 steps without cfg",
        "lcm-sd15 256×256 batch 1, 4 steps without cfg",
    ]
    for table in section.tables:
        cpu = table.frame[table.frame["criterion"] == "cpu"]
        assert list(cpu["gpu"]) == ["CPU: Test CPU"] and list(cpu["source"]) == ["measured"]


def test_recommend_cli_defaults_to_the_model_usual_steps(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["recommend", "--model", "sdxl-turbo", "--resolution", "512"]) == 0
    assert "1 step without cfg" in capsys.readouterr().out
    assert main(["predict", "--gpu", "4090", "--model", "lcm-sd15", "--cfg"]) == 0
    assert "4 steps, sdpa" in capsys.readouterr().out


def test_cpu_row_borrows_a_text_encoder_measured_at_another_size(results_of):
    # quick.toml measures the text encoder at 256 px only; a 384 px image still composes.
    rows = [dict(row, height=384, width=384) if row["stage"] != "text_encoder" else row
            for row in _stage_rows(unet_ms=500.0)]  # fmt: skip
    table = recommend(
        ImageWorkload.usual("lcm-sd15", 384, 384, 1, "fp16"), results=results_of(rows)
    ).table
    cpu = table[table["criterion"] == "cpu"].iloc[0]
    assert cpu["s_per_image"] == pytest.approx((30 + 4 * 500 + 70) / 1000)


def test_few_step_predictions_carry_the_few_step_cross_validated_error():
    from sdbench.analysis.predict import model_error_pct

    errors = model_error_pct()
    assert errors["few-step"] > errors["sd15"]  # the shipped file has the few-step row
    assert predict("4090", ImageWorkload.usual("lcm-sd15", 512)).model_error_pct == pytest.approx(
        errors["few-step"]
    )
    assert predict("4090", ImageWorkload.usual("sd15", 512)).model_error_pct == pytest.approx(
        errors["sd15"]
    )
