"""Recommendations: VRAM fit, budget tiers, measured-beats-predicted, the CPU row and output formats."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from sdbench.analysis.predict import predict
from sdbench.analysis.recommend import recommend
from sdbench.analysis.workload import ImageWorkload
from sdbench.cli import main
from sdbench.gpus import find_gpu
from sdbench.store import read_results, write_run

GIB = 1024**3


def _row(**values) -> dict:
    base = {"status": "ok", "model": "sd15", "height": 512, "width": 512, "batch_size": 1, "precision": "fp16",
            "attention": "sdpa", "compile": "none", "cfg": True, "steps": 20, "device": "cuda:0",
            "device_name": "NVIDIA GeForce RTX 4090"}  # fmt: skip
    return {**base, **values}


@pytest.fixture
def results_of(tmp_path):
    def write(rows: list[dict]) -> pd.DataFrame:
        path = write_run(rows, tmp_path / "results" / "run.parquet")
        return read_results([path])

    return write


def test_measured_speed_wins_over_the_model_and_says_so(results_of):
    results = results_of([_row(stage="unet", it_per_s=123.0, median_ms=1000 / 123.0)])
    measured = predict(
        "4090", ImageWorkload.usual("sd15", 512, 512, 1, "fp16", 20), results=results
    )
    assert measured.source == "measured"
    assert measured.it_per_s == pytest.approx(123.0)
    other = predict("3090", ImageWorkload.usual("sd15", 512, 512, 1, "fp16", 20), results=results)
    assert other.source == "predicted"
    different_workload = predict(
        "4090", ImageWorkload.usual("sd15", 768, 768, 1, "fp16", 20), results=results
    )
    # The 4090's one measured cell corrects its other workloads (analysis.correction).
    assert different_workload.source == "calibrated on 1 measured cell"


def test_prediction_answers_the_contract_keys():
    answer = predict(
        "NVIDIA GeForce RTX 4090", ImageWorkload.usual("sdxl", 1024, 1024, 1, "fp16", 30)
    ).to_dict()
    for key in ("gpu", "it_per_s", "image_s", "peak_vram_bytes", "fits", "source"):
        assert key in answer
    assert (
        answer["gpu"] == "GeForce RTX 4090" and answer["fits"] and answer["source"] == "predicted"
    )
    assert 1.0 < answer["it_per_s"] < 30.0  # published 4090 SDXL figures are ~6-15 it/s
    assert answer["s_per_image_low"] < answer["s_per_image"] < answer["s_per_image_high"]


def test_an_8gb_card_is_never_offered_for_a_workload_measured_at_10gb(results_of):
    workload = {"model": "sd15", "height": 768, "width": 768, "batch_size": 4}
    results = results_of(
        [_row(stage="pipeline", median_ms=4000.0, peak_mem_reserved_bytes=10 * GIB, **workload)]
    )
    table = recommend(ImageWorkload.usual("sd15", 768, 768, 4, "fp16", 20), results=results).table
    picked = table.dropna(subset=["gpu"])
    assert not picked.empty
    for name in picked["gpu"]:
        assert find_gpu(name).vram_bytes >= 10 * GIB, name
    assert (picked["peak_vram_bytes"] == 10 * GIB).all()
    cheapest = table[table["tier"] == "<= $300"]
    assert "too small" in cheapest["note"].iloc[0] and "fits with" in cheapest["note"].iloc[0]


def test_every_pick_is_within_its_budget():
    table = recommend(
        ImageWorkload.usual("sd15", 512, 512, 1, "fp16", 20), budgets=[400, 1200]
    ).table
    assert list(table["tier"].unique()) == ["<= $400", "<= $1,200"]
    for budget in (400, 1200):
        picks = table[table["budget_usd"] == budget].dropna(subset=["gpu"])
        assert len(picks) == 3
        assert (picks["price_usd"] <= budget).all()


def test_default_tiers_and_criteria():
    table = recommend(ImageWorkload.usual("sdxl", 1024, 1024, 1, "fp16", 30)).table
    assert list(table["tier"].unique()) == [
        "<= $300",
        "<= $600",
        "<= $1,000",
        "<= $2,000",
        "<= $5,000",
        "any",
    ]
    assert set(table["criterion"]) == {"fastest", "best_value", "lowest_energy"}
    fastest = table[table["criterion"] == "fastest"].dropna(subset=["gpu"])
    # More money never buys a slower fastest pick.
    assert fastest["s_per_image"].is_monotonic_decreasing
    assert (table.dropna(subset=["gpu"])["fits"]).all()


def test_cloud_mode_costs_from_hourly_prices():
    table = recommend(ImageWorkload.usual("sd15", 512, 512, 1, "fp16", 20), cloud=True).table
    value = table[(table["criterion"] == "best_value") & (table["tier"] == "any")].iloc[0]
    gpu = find_gpu(value["gpu"])
    assert value["cost_per_1000_usd"] == pytest.approx(
        1000 * value["s_per_image"] / 3600 * gpu.cloud_usd_per_h
    )


def test_measured_cpu_becomes_a_row(results_of):
    results = results_of([_row(stage="pipeline", device="cpu", device_name="cpu", cpu_model="Test CPU 9000",
                               median_ms=90_000.0, precision="fp32")])  # fmt: skip
    table = recommend(ImageWorkload.usual("sd15", 512, 512, 1, "fp16", 20), results=results).table
    cpu = table[table["criterion"] == "cpu"].iloc[0]
    assert cpu["gpu"] == "CPU: Test CPU 9000"
    assert cpu["s_per_image"] == pytest.approx(90.0) and cpu["source"] == "measured"


def test_the_cpu_row_is_the_cpu_at_its_fastest_measured_setting(results_of):
    cpu_unet = {"stage": "unet", "device": "cpu", "device_name": "cpu", "cpu_model": "Test CPU"}
    results = results_of([
        _row(**cpu_unet, precision="fp32", attention="math", median_ms=5000.0, it_per_s=0.2),
        _row(**cpu_unet, precision="bf16", attention="sdpa", median_ms=1000.0, it_per_s=1.0),
    ])  # fmt: skip
    cpu = recommend(ImageWorkload.usual("sd15", 512, 512, 1, "fp16", 20), results=results).table
    cpu = cpu[cpu["criterion"] == "cpu"].iloc[0]
    assert cpu["s_per_image"] == pytest.approx(20.0)  # 20 steps at the bf16 sdpa row's 1 it/s


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown", "table"])
def test_recommend_cli_formats(fmt, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "recommend",
                "--model",
                "sd15",
                "--resolution",
                "512",
                "--batch-size",
                "1",
                "--format",
                fmt,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    if fmt == "json":
        rows = json.loads(out)
        assert len(rows) == 18 and {"gpu", "it_per_s", "images_per_s", "energy_per_image_j"} <= set(
            rows[0]
        )
    elif fmt == "csv":
        assert out.splitlines()[0].startswith("tier,budget_usd,criterion,gpu")
    elif fmt == "markdown":
        assert out.startswith("| tier | gpu | picked for | price |")
    else:  # one row per card and tier, the criteria it won as badges
        assert "fast" in out and "value" in out and "energy" in out and "<= $300" in out


def _markdown_cells(line: str) -> list[str]:
    assert line.startswith("| ") and line.endswith(" |")
    return line[2:-2].split(" | ")


def test_recommend_markdown_is_an_escaped_table_with_a_gpu_row_and_its_notes(
    capsys, tmp_path, monkeypatch
):
    from sdbench.gpus.catalogue import load_catalogue
    from sdbench.units import format_number

    monkeypatch.chdir(tmp_path)  # no results folder: predictions only
    args = ["recommend", "--model", "sdxl", "--resolution", "1024", "--batch-size", "4",
            "--budget", "300", "1000", "--format", "markdown"]  # fmt: skip
    assert main(args) == 0
    table, *notes = capsys.readouterr().out.split("\n\n")
    lines = table.splitlines()
    assert (
        lines[0]
        == "| tier | gpu | picked for | price | s/img | 80% band | GiB used | J/img | $/1k |"
    )
    assert lines[1] == "|" + "---|" * 3 + "---:|" * 6  # text, then right-aligned figures
    rows = [_markdown_cells(line) for line in lines[2:]]
    assert all(len(row) == 9 for row in rows)
    # "<=" escaped for HTML, as every markdown cell is; the tier points to its note.
    picked = [row for row in rows if row[0] == "&lt;= $1,000 [2]"]
    assert picked and {"fast", "value", "energy"} == {
        badge for row in picked for badge in row[2].split(", ")
    }
    catalogue = {card.name: card for card in load_catalogue()}
    for _, gpu_name, _, price, s_per_image, _, memory, *_ in picked:
        gpu = catalogue[gpu_name]
        assert gpu.street_price_usd <= 1000
        assert price == f"${format_number(gpu.street_price_usd)}"
        assert float(s_per_image) > 0
        used_gib, total_gib = (float(part) for part in memory.split("/"))
        assert used_gib <= total_gib == round(gpu.vram_gb)
    assert [note.split(" ", 1)[0] for note in notes] == ["[1]", "[2]"]
    assert notes[0].startswith("[1] no GPU in this tier holds the workload")


def test_a_tier_where_nothing_fits_is_one_row_pointing_to_its_note():
    from sdbench.commands.recommend import card_rows

    workload = ImageWorkload.usual("sdxl", 1024, 1024, 4, "fp16", 50)
    table = recommend(workload, budgets=[300, 1000]).table
    assert table[table["tier"] == "<= $300"]["gpu"].isna().all()  # no card under $300 holds it
    rows = card_rows(table, cloud=False)
    assert [row for row in rows if row[0].startswith("<= $300")] == [["<= $300 [1]"] + [None] * 8]


def test_predict_cli_unknown_gpu_exits_2_with_suggestions(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--gpu", "RTX 4099", "--model", "sd15"]) == 2
    err = capsys.readouterr().err
    assert "Unknown GPU" in err and "4090" in err


def test_predict_cli_json(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--gpu", "rtx4090", "--model", "sdxl", "--resolution", "1024", "--batch-size", "1",
                 "--precision", "fp16", "--json"]) == 0  # fmt: skip
    answer = json.loads(capsys.readouterr().out)
    assert answer["gpu"] == "GeForce RTX 4090" and answer["fits"] is True
    assert math.isfinite(answer["image_s"]) and answer["peak_vram_bytes"] > 5 * GIB


@pytest.mark.parametrize("budgets", [["0"], ["500", "-5"], ["500", "inf"]])
def test_a_budget_tier_not_above_zero_is_refused_by_the_parser_in_one_paragraph(capsys, budgets):
    with pytest.raises(SystemExit) as exit_:
        main(["recommend", "--model", "sd15", "--budget", *budgets])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == "" and "Traceback" not in err
    assert "\n\n" not in err.strip()  # argparse's usage and its one error line
    error_line = err.strip().splitlines()[-1]
    assert error_line.endswith(
        f"--budget: must be a number above 0 and at most 1e+09, got {budgets[-1]}"
    )
