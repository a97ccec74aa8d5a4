"""Per-GPU corrections: measured rows of a GPU pull its predictions at other workloads, shrunk."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest

import sdbench.analysis.recommend as recommend_module
import sdbench.analysis.validate as validate_module
from sdbench.analysis.correction import (
    SHRINKAGE_CELLS,
    fit_corrections,
    leave_one_out,
    measured_cells,
    shrunk_factor,
    summarise_leave_one_out,
)
from sdbench.analysis.perfmodel import predict_stage_seconds, reference_calibration
from sdbench.analysis.predict import Prediction, predict
from sdbench.analysis.recommend import recommend
from sdbench.analysis.workload import ImageWorkload
from sdbench.cli import main
from sdbench.gpus import find_gpu
from sdbench.store import read_results, write_run

SLOWER = 1.2  # the synthetic card runs 20% slower than the model says
CELLS = list(itertools.product((512, 640, 768), (1, 2, 4)))  # (resolution, batch) on a 4090


def _model_it_per_s(gpu: str, resolution: int, batch: int) -> float:
    """What `predict` says without results: the reference model's sd15 it/s on `gpu`."""
    workload = ImageWorkload.usual("sd15", resolution, resolution, batch, "fp16", 20)
    return (
        1.0 / predict_stage_seconds(find_gpu(gpu), workload, reference_calibration())["unet_step"]
    )


def _unet_row(resolution: int, batch: int, slower: float = SLOWER, **values) -> dict:
    """A measured sd15 UNet row on an RTX 4090, `slower` times the model's predicted seconds."""
    it_per_s = _model_it_per_s("4090", resolution, batch) / slower
    return {
        "status": "ok", "stage": "unet", "model": "sd15", "height": resolution, "width": resolution,
        "batch_size": batch, "precision": "fp16", "attention": "sdpa", "compile": "none", "cfg": True,
        "steps": 20, "device": "cuda:0", "device_name": "NVIDIA GeForce RTX 4090",
        "it_per_s": it_per_s, "median_ms": 1000.0 / it_per_s, **values,
    }  # fmt: skip


@pytest.fixture
def results_of(tmp_path):
    def write(rows: list[dict]) -> pd.DataFrame:
        path = write_run(rows, tmp_path / f"results{len(rows)}" / "run.parquet")
        return read_results([path])

    return write


def _sdxl(gpu: str, results: pd.DataFrame | None = None) -> Prediction:
    return predict(gpu, ImageWorkload.usual("sdxl", 1024, 1024, 1, "fp16", 30), results=results)


def test_slower_measured_cells_pull_the_gpus_other_workloads_towards_them(results_of):
    model_only = _sdxl("4090")
    factors = []
    for count in (1, 3, 9):
        answer = _sdxl("4090", results_of([_unet_row(*cell) for cell in CELLS[:count]]))
        factor = answer.image_s / model_only.image_s
        assert 1.0 < factor < SLOWER
        assert factor == pytest.approx(SLOWER ** (count / (count + SHRINKAGE_CELLS)), rel=1e-6)
        assert answer.it_per_s == pytest.approx(model_only.it_per_s / factor)
        assert answer.energy_per_image_j == pytest.approx(model_only.energy_per_image_j * factor)
        assert answer.source == f"calibrated on {count} measured cell{'s' if count > 1 else ''}"
        assert answer.correction_factor == pytest.approx(factor)
        factors.append(factor)
    assert factors[0] < factors[1] < factors[2]  # more cells, closer to the measured 20%


def test_other_gpus_and_measured_workloads_are_left_alone(results_of):
    results = results_of([_unet_row(*cell) for cell in CELLS])
    other = _sdxl("3090", results)
    assert other.source == "predicted" and other.correction_factor is None
    assert other.image_s == pytest.approx(_sdxl("3090").image_s, rel=1e-9)
    same_family = _sdxl("4080", results)  # one user's card does not move its whole family
    assert same_family.image_s == pytest.approx(_sdxl("4080").image_s, rel=1e-9)
    measured = predict(
        "4090", ImageWorkload.usual("sd15", 512, 512, 1, "fp16", 20), results=results
    )
    assert measured.source == "measured"
    assert measured.it_per_s == pytest.approx(_unet_row(512, 1)["it_per_s"])


def test_lever_cpu_and_tiny_model_rows_do_not_correct_a_gpu(results_of):
    results = results_of([
        _unet_row(512, 1, quant="int8wo"),
        _unet_row(640, 1, device="cpu", device_name="AMD EPYC 7B13"),
        _unet_row(768, 1, slower=1.0),
        {**_unet_row(512, 2), "model": "tiny", "height": 64, "width": 64},
    ])  # fmt: skip
    corrections = fit_corrections(results, reference_calibration())
    assert list(corrections) == ["GeForce RTX 4090"]
    assert corrections["GeForce RTX 4090"].cells == 1
    assert corrections["GeForce RTX 4090"].factor == pytest.approx(1.0, abs=1e-9)


@pytest.mark.filterwarnings("error")  # pandas deprecates & between booleans and strings
def test_results_with_no_gpu_row_have_no_measured_cells_and_raise_no_warning(results_of):
    cpu_only = results_of([_unet_row(512, 1, device="cpu", device_name="AMD EPYC 7B13")])
    cells = measured_cells(cpu_only)
    assert cells.empty and "catalogue_gpu" in cells.columns


def test_the_correction_is_the_shrunk_median_so_one_odd_cell_does_not_swing_it():
    assert shrunk_factor([]) == 1.0
    log_slower = [0.2, 0.2, 0.2, 2.0]  # one cell ran 7x slow (a throttled run, say)
    assert shrunk_factor(log_slower) == pytest.approx(2.718281828 ** (0.2 * 4 / 5))


def test_recommend_fits_the_corrections_once_and_ranks_on_them(results_of, monkeypatch):
    results = results_of([_unet_row(*cell) for cell in CELLS])
    calls = []

    def counting(*args):
        calls.append(args)
        return fit_corrections(*args)

    monkeypatch.setattr(recommend_module, "fit_corrections", counting)
    cards = (find_gpu("4090"), find_gpu("3090"), find_gpu("4080"))
    monkeypatch.setattr(recommend_module, "load_catalogue", lambda: cards)
    workload = ImageWorkload.usual("sdxl", 1024, 1024, 1, "fp16", 30)
    table = recommend(workload, results=results, budgets=[1e9]).table
    assert len(calls) == 1
    fastest = table[table["criterion"] == "fastest"].iloc[0]
    assert fastest["gpu"] == "GeForce RTX 4090"
    assert fastest["source"] == "calibrated on 9 measured cells"
    assert fastest["s_per_image"] == pytest.approx(_sdxl("4090", results).s_per_image)
    assert fastest["s_per_image"] > _sdxl("4090").s_per_image * 1.15


# A 4090 measured 15-25% slower than modelled and a 3090 measured as modelled, give or take 3%.
SLOW_4090 = [1.15, 1.25, 1.2, 1.18, 1.22, 1.2]
FAIR_3090 = [(512, 1, 0.97), (640, 2, 1.03), (768, 1, 1.0)]


def _two_gpus(results_of) -> pd.DataFrame:
    rows = [_unet_row(*cell, slower=s) for cell, s in zip(CELLS, SLOW_4090, strict=False)]
    rows += [
        _unet_row(r, b, slower=1.0, device_name="NVIDIA GeForce RTX 3090",
                  it_per_s=_model_it_per_s("3090", r, b) / s)
        for r, b, s in FAIR_3090
    ]  # fmt: skip
    return results_of(rows)


def test_leaving_each_cell_out_the_correction_shrinks_a_biased_gpus_error(results_of):
    loo = leave_one_out(_two_gpus(results_of))
    assert (
        len(loo) == 9
        and (
            loo["other_cells"] == loo["gpu"].map({"GeForce RTX 4090": 5, "GeForce RTX 3090": 2})
        ).all()
    )
    errors = {e.gpu: e for e in summarise_leave_one_out(loo)}
    slow = errors["GeForce RTX 4090"]
    assert slow.median_abs_pct_error == pytest.approx(100 * (1 - 1 / 1.2), abs=0.5)
    assert slow.corrected_median_abs_pct_error < 5.0
    assert slow.measured_over_predicted == pytest.approx(1.2)
    fair = errors["GeForce RTX 3090"]  # nothing to correct: the correction stays near 1
    assert fair.median_abs_pct_error < 4.0 and fair.corrected_median_abs_pct_error < 4.0
    assert errors["all"].cells == 9
    assert errors["all"].corrected_median_abs_pct_error < errors["all"].median_abs_pct_error
    # the held-out cell never corrects itself: alone on its GPU, a cell gets no correction
    lone = leave_one_out(results_of([_unet_row(512, 1)]))
    assert lone["correction_factor"].tolist() == [1.0] and lone["other_cells"].tolist() == [0]


def _tiny_cross_validation() -> pd.DataFrame:
    """Stands in for the minutes-long leave-one-GPU-out run of the reference data."""
    return pd.DataFrame({
        "gpu": ["A", "A", "B"], "model": ["sd15"] * 3, "model_family": ["sd15"] * 3,
        "batch_size": [1] * 3, "precision": ["fp16"] * 3, "attention": ["sdpa"] * 3,
        "compile": ["none"] * 3, "metric": ["it_per_s"] * 3, "steps": [20] * 3,
        "measured": [10.0, 12.0, 8.0], "predicted": [11.0, 11.0, 9.0], "abs_pct_error": [10.0, 8.3, 12.5],
        "measured_s_per_image_step": [0.1, 0.083, 0.125], "predicted_s_per_image_step": [0.09, 0.09, 0.11],
    })  # fmt: skip


def test_validate_model_reports_the_error_on_measured_cells_in_every_format(
    results_of, tmp_path, monkeypatch, capsys
):
    _two_gpus(results_of)
    folder = str(tmp_path / "results9")
    monkeypatch.setattr(validate_module, "cross_validate", _tiny_cross_validation)
    assert main(["validate-model", "--results", folder, "--format", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["cross_validation"][0]["model_family"] == "sd15"
    measured = {e["gpu"]: e for e in answer["measured"]}
    assert measured["GeForce RTX 4090"]["median_abs_pct_error"] > 15.0
    assert measured["GeForce RTX 4090"]["corrected_median_abs_pct_error"] < 5.0
    assert len(answer["cells"]) == 9
    assert main(["validate-model", "--results", folder, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("gpu,cells,median_abs_pct_error,corrected_median_abs_pct_error")
    assert [line.split(",")[0] for line in lines[1:]] == [
        "GeForce RTX 3090",
        "GeForce RTX 4090",
        "all",
    ]
    for output_format in ("table", "markdown"):
        assert main(["validate-model", "--results", folder, "--format", output_format]) == 0
        text = capsys.readouterr().out
        assert "GeForce RTX 4090" in text and "with correction" in text and "sd15" in text
        assert max(len(line) for line in text.splitlines()) <= 100
    assert main(["validate-model", "--results", folder, "--rows"]) == 0
    lines = capsys.readouterr().out.splitlines()
    held_out = [line.split() for line in lines if line.startswith("GeForce") and " unet " in line]
    assert [" ".join(line[:3]) for line in held_out].count("GeForce RTX 4090") == 6
    assert {line[5] for line in held_out} == {"512x512", "640x640", "768x768"}


def test_validate_model_with_a_bad_results_folder_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(validate_module, "cross_validate", _tiny_cross_validation)
    assert main(["validate-model", "--results", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    cpu_only = write_run([_unet_row(512, 1, device="cpu", device_name="AMD EPYC 7B13")],
                         tmp_path / "cpu" / "run.parquet")  # fmt: skip
    assert main(["validate-model", "--results", str(cpu_only)]) == 2
    assert "measured on a catalogue GPU" in capsys.readouterr().err


def test_recommend_tables_mark_a_corrected_gpu_and_say_why(
    results_of, tmp_path, monkeypatch, capsys
):
    results_of([_unet_row(*cell) for cell in CELLS])
    cards = (find_gpu("4090"), find_gpu("3090"))
    monkeypatch.setattr(recommend_module, "load_catalogue", lambda: cards)
    for output_format in ("table", "markdown"):
        arguments = ["recommend", "--model", "sdxl", "--results", str(tmp_path / "results9")]
        assert main([*arguments, "--budget", "1e6", "--format", output_format]) == 0
        text = capsys.readouterr().out
        assert "GeForce RTX 4090 *" in text and "GeForce RTX 3090 *" not in text
        assert "GeForce RTX 4090: calibrated on 9 measured cells of that GPU" in text
        assert max(len(line) for line in text.splitlines()) <= 100 or output_format == "markdown"
