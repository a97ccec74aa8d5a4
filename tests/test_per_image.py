"""Per-image figures composed from stage rows, and their agreement with a measured pipeline call."""

from __future__ import annotations

import statistics
import time

import pandas as pd
import pytest

from sdbench.analysis.per_image import per_image_figures

BASE = dict(device="cpu", precision="bf16", height=256, width=256, status="ok", vae="taesd")


def _rows(model: str, batch: int, cfg: bool, stage_ms: dict, power_w=None, steps=4) -> list:
    return [
        dict(BASE, model=model, batch_size=batch, cfg=cfg, stage=stage, median_ms=ms,
             steps=steps, avg_power_w=power_w)
        for stage, ms in stage_ms.items()
    ]  # fmt: skip


def test_one_image_is_text_plus_usual_steps_denoiser_plus_decode_over_batch():
    stages = {"text_encoder": 40.0, "unet": 100.0, "vae_decode": 60.0}
    frame = pd.DataFrame(_rows("sd15", 2, True, stages) + _rows("lcm-sd15", 2, False, stages))
    figures = per_image_figures(frame).set_index("model")
    assert figures.at["sd15", "steps"] == 50 and figures.at["lcm-sd15", "steps"] == 4
    assert figures.at["sd15", "image_ms"] == pytest.approx((40 + 50 * 100 + 60) / 2)
    assert figures.at["lcm-sd15", "image_s"] == pytest.approx((40 + 4 * 100 + 60) / 2 / 1000)
    assert bool(figures.at["sd15", "usual_settings"]) and bool(
        figures.at["lcm-sd15", "usual_settings"]
    )
    assert figures.at["sd15", "energy_per_image_j"] is None  # no power reading: not measured


def test_rows_run_with_other_guidance_than_the_model_usual_are_flagged():
    frame = pd.DataFrame(_rows("sd15", 1, False, {"text_encoder": 1, "unet": 2, "vae_decode": 3}))
    assert not per_image_figures(frame)["usual_settings"].iloc[0]


def test_energy_per_image_uses_average_power_times_each_call():
    stages = {"text_encoder": 10.0, "unet": 20.0, "vae_decode": 30.0}
    figures = per_image_figures(pd.DataFrame(_rows("sdxl-turbo", 1, False, stages, 200.0)))
    # 200 W x (10 + 1 x 20 + 30) ms = 12 J
    assert figures["energy_per_image_j"].iloc[0] == pytest.approx(12.0)


def test_pipeline_cell_is_compared_at_its_own_step_count():
    stages = {"text_encoder": 10.0, "unet": 20.0, "vae_decode": 30.0, "pipeline": 125.0}
    figures = per_image_figures(pd.DataFrame(_rows("lcm-sd15", 1, False, stages, steps=4)))
    row = figures.iloc[0]
    assert row["pipeline_steps"] == 4
    assert row["composed_pipeline_image_ms"] == pytest.approx(120.0)
    assert row["pipeline_rel_err"] == pytest.approx(120 / 125 - 1)


def test_configurations_missing_a_stage_or_not_ok_are_left_out():
    rows = _rows("sd15", 1, True, {"text_encoder": 1, "unet": 2, "vae_decode": 3})
    rows[1]["status"] = "oom"
    assert per_image_figures(pd.DataFrame(rows)).empty
    assert per_image_figures(pd.DataFrame(rows[:0], columns=list(rows[0]))).empty


def test_steps_override_composes_any_step_count():
    frame = pd.DataFrame(_rows("sd15", 1, True, {"text_encoder": 1, "unet": 2, "vae_decode": 3}))
    assert per_image_figures(frame, steps=10)["image_ms"].iloc[0] == pytest.approx(24.0)


@pytest.mark.slow  # a timing comparison: needs a quiet CPU
def test_composed_figure_matches_a_measured_tiny_pipeline_within_ten_percent():
    import torch

    from sdbench.cell import Cell
    from sdbench.models.workload import ModelCache, build_workload

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cache = ModelCache()
        cells = {
            stage: Cell(model="tiny", stage=stage, device="cpu", height=256, width=256,
                        batch_size=1, precision="fp32", attention="sdpa", compile="none",
                        cfg=True, steps=4)
            for stage in ("text_encoder", "unet", "vae_decode", "pipeline")
        }  # fmt: skip
        workloads = {stage: build_workload(cell, cache) for stage, cell in cells.items()}
        samples_ms: dict[str, list[float]] = {stage: [] for stage in workloads}
        for _ in range(15):  # interleaved rounds, so slow drifts in machine load hit every stage
            for stage, workload in workloads.items():
                begin = time.perf_counter()
                workload.call()
                samples_ms[stage].append((time.perf_counter() - begin) * 1000)
    finally:
        torch.set_num_threads(threads)
    frame = pd.DataFrame(
        [dict(BASE, model="tiny", vae="default", precision="fp32", height=256, width=256,
              batch_size=1, cfg=True, steps=4, stage=stage, median_ms=statistics.median(ms[3:]))
         for stage, ms in samples_ms.items()]
    )  # fmt: skip
    assert abs(per_image_figures(frame)["pipeline_rel_err"].iloc[0]) < 0.10


@pytest.mark.slow  # the cpu-alternatives suite through the runner: ~80 s on a quiet 2-core CPU
def test_cpu_alternatives_suite_composed_figures_match_its_pipeline_cells_within_ten_percent(
    tmp_path,
):
    from rich.console import Console

    from sdbench.runner.run import run_suite
    from sdbench.store import read_results

    outcome = run_suite("cpu-alternatives", tmp_path, console=Console(quiet=True))
    checked = per_image_figures(read_results([outcome.path])).dropna(subset=["pipeline_rel_err"])
    assert set(checked["model"]) == {"lcm-sd15", "bk-sdm-tiny"}
    assert (checked["pipeline_rel_err"].abs() < 0.10).all(), checked["pipeline_rel_err"].tolist()


def test_a_run_with_channels_last_beside_older_files_without_it_still_composes():
    # Older files have no channels_last column: their text encoder rows read it as null, while a
    # newer run's rows (here on another device, without a text encoder) hold False.
    older = _rows("sd15", 1, True, {"text_encoder": 40.0, "unet": 100.0, "vae_decode": 60.0})
    older += [dict(r, height=384, width=384) for r in older if r["stage"] != "text_encoder"]
    newer = [
        dict(r, device="cuda:0", channels_last=False) for r in older if r["stage"] != "text_encoder"
    ]
    figures = per_image_figures(pd.DataFrame(older + newer))
    assert sorted(figures["height"]) == [256, 384]  # the older run's two sizes; newer lacks a TE
    assert figures["text_encoder_ms"].tolist() == [40.0, 40.0]
    assert figures["channels_last"].isna().all()


def test_a_text_encoder_row_at_one_size_serves_every_size():
    # quick.toml measures the text encoder at 256 px only: 77 tokens whatever the image size.
    rows = _rows("sd15", 1, True, {"text_encoder": 40.0, "unet": 100.0, "vae_decode": 60.0})
    rows += [dict(r, height=384, width=384) for r in rows if r["stage"] != "text_encoder"]
    figures = per_image_figures(pd.DataFrame(rows)).set_index("height")
    assert list(figures.index) == [256, 384]
    assert figures.at[384, "text_encoder_ms"] == pytest.approx(40.0)
