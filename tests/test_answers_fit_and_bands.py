"""Issue 18 items 5 and 7: terminal output fits 100 columns; predicted figures carry an 80%
interval from the cross-validated errors; uncalibrated GPU families are never a silent pick."""

from __future__ import annotations

import json

import pytest

from sdbench.analysis.predict import model_interval80_pct, predict
from sdbench.analysis.recommend import recommend
from sdbench.analysis.validate import summarise
from sdbench.analysis.workload import ImageWorkload
from sdbench.cli import main
from sdbench.gpus import find_gpu
from sdbench.units import GIB

RUN = "docs/runs/20261126T015114Z-cpu-alternatives-18e543.parquet"
VERBS = [
    ["gpus"],
    ["models"],
    ["suites"],
    ["recommend", "--model", "sdxl", "--results"],
    ["recommend", "--model", "sd15", "--cloud", "--results"],
    ["predict", "--gpu", "arc b580", "--model", "sdxl", "--results"],
    ["flops", "--model", "sd15", "--stage", "unet", "--resolution", "512"],
    ["best", "--results", "docs/runs"],
    ["best", "--by", "precision", "--results", "docs/runs"],
    ["history", "--results", "docs/runs"],
    ["show", "--results", "docs/runs"],
    ["compare", RUN, RUN],
    ["capacity", "--model", "sd15", "--rate", "2000/h", "--p99", "30", "--results"],
    ["run", "quick", "--dry-run", "--device", "cpu"],
    ["--help"],
    ["recommend", "--help"],
]


@pytest.mark.parametrize("argv", VERBS, ids=lambda argv: " ".join(argv[:2]))
def test_every_verb_fits_100_columns(argv, capsys, monkeypatch):
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "100")
    try:
        code = main(argv)
    except SystemExit as leaving:  # --help
        code = leaving.code
    out = capsys.readouterr().out
    assert code == 0 and out.strip()
    too_wide = [line for line in out.splitlines() if len(line) > 100]
    assert not too_wide, too_wide[:3]


def test_wide_keeps_every_column(capsys):
    assert main(["gpus", "--wide"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "family" in header and "launch $" in header and len(header) > 100


def test_recommend_prints_one_row_per_card_per_tier_with_its_badges(capsys):
    assert main(["recommend", "--model", "sdxl", "--results"]) == 0
    table, _, below = capsys.readouterr().out.partition("\n\n")
    tiers: dict[str, list[str]] = {}
    tier = ""
    for line in table.splitlines()[2:]:
        if line.startswith("  "):
            tiers[tier].append(line[2:].split("  ")[0])
        else:
            tier = line
            tiers[tier] = []
    assert len(tiers) == 6 and all(len(cards) == len(set(cards)) for cards in tiers.values())
    assert sum(len(cards) for cards in tiers.values()) < 3 * len(tiers)  # one card wins several
    badges = " ".join(table.splitlines()[3:])
    assert "fast" in badges and "value" in badges and "energy" in badges
    # each tier's note is printed once below the table, not on every row
    assert "too small" not in table and below.count("[1] ") == 1


def test_cards_without_a_street_price_are_not_purchase_picks_unless_asked():
    table = recommend(ImageWorkload.usual("sdxl", 1024, 1024, 1, "fp16", 50)).table
    picked = {find_gpu(g) for g in table["gpu"].dropna()}
    assert picked and all(gpu.street_price_usd is not None for gpu in picked)
    wider = recommend(ImageWorkload.usual("sdxl", 1024, 1024, 1, "fp16", 50), datacenter=True).table
    fastest = wider[(wider["tier"] == "any") & (wider["criterion"] == "fastest")].iloc[0]
    assert find_gpu(fastest["gpu"]).street_price_usd is None  # a B200 or H100 class part


def test_an_uncalibrated_family_is_never_a_tiers_pick_and_the_note_says_why():
    assert predict("Intel Arc B580", ImageWorkload.usual("sd15", 512)).calibrated is False
    table = recommend(ImageWorkload.usual("sdxl", 1024, 1024, 1, "fp16", 50)).table
    picked = table["gpu"].dropna()
    assert not any(find_gpu(g).vendor == "Intel" for g in picked)
    notes = " ".join(table["note"].dropna())
    assert "Intel Arc" in notes and "uncalibrated" in notes


def test_the_band_is_the_80_percent_interval_of_the_cross_validated_errors(
    reference_cross_validation,
):
    cv = reference_cross_validation
    families = {f.model_family: f for f in summarise(cv)}
    sd15 = cv[cv["model_family"] == "sd15"]
    ratio = sd15["measured_s_per_image_step"] / sd15["predicted_s_per_image_step"]
    low, high = families["sd15"].interval80_low_pct, families["sd15"].interval80_high_pct
    inside = ((ratio >= 1 + low / 100 - 1e-9) & (ratio <= 1 + high / 100 + 1e-9)).mean()
    assert 0.75 <= inside <= 0.85  # 80% of held-out predictions, where the median band held ~50%
    median = families["sd15"].median_abs_pct_error
    assert ((ratio - 1).abs() * 100 <= median + 1e-9).mean() == pytest.approx(0.5, abs=0.05)
    shipped = model_interval80_pct()["sd15"]
    assert shipped == pytest.approx((min(low, 0), max(high, 0)), abs=0.05)


def test_predict_shows_the_interval_and_its_bounds(capsys):
    answer = predict("GeForce RTX 4090", ImageWorkload.usual("sdxl", 1024))
    low, high = model_interval80_pct()["sdxl"]
    assert answer.s_per_image_low == pytest.approx(answer.s_per_image * (1 + low / 100))
    assert answer.s_per_image_high == pytest.approx(answer.s_per_image * (1 + high / 100))
    assert main(["predict", "--gpu", "rtx 4090", "--model", "sdxl", "--results"]) == 0
    assert "80% interval -" in capsys.readouterr().out
    assert main(["predict", "--gpu", "rtx 4090", "--model", "sdxl", "--results", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["interval80_high_pct"] == pytest.approx(high)
    assert shown["vram_bytes"] <= 24 * GIB


def test_predict_text_is_written_from_the_predictions_fields_not_its_json_dict(capsys, monkeypatch):
    from sdbench.analysis.predict import Prediction

    answer = predict("GeForce RTX 4090", ImageWorkload.usual("sdxl", 1024))

    def no_dict(self):
        raise AssertionError("the text table reads the frozen Prediction's fields")

    monkeypatch.setattr(Prediction, "to_dict", no_dict)
    assert main(["predict", "--gpu", "rtx 4090", "--model", "sdxl", "--results"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "GeForce RTX 4090: sdxl 1024x1024, batch 1, fp16, 50 steps, sdpa"
    assert lines[1].startswith(
        f"  speed     {answer.it_per_s:.2f} it/s, {answer.image_s:.2f} s per call, "
    )


def _summary_row(**overrides) -> dict:
    """A run row as the worker writes it, with the summary table's columns filled."""
    row = {
        "model": "sd15", "stage": "text_encoder", "width": 512, "height": 512, "batch_size": 1,
        "precision": "bf16", "attention": "sdpa", "compile": "none", "status": "ok",
        "fidelity_ok": True, "median_ms": 12.345, "it_per_s": None, "images_per_s": 81.0,
        "tflops_per_s": 12.3, "peak_mem_reserved_bytes": 1.5 * GIB, "samples_ms": [12.3] * 6,
    }  # fmt: skip
    return {**row, **overrides}


def test_run_summary_in_a_log_fits_100_columns_and_keeps_every_figure(capsys):
    from sdbench.runner.run import RunOutcome, print_summary

    rows = [
        _summary_row(),
        _summary_row(stage="unet", median_ms=4420.1, it_per_s=0.226, images_per_s=None),
        _summary_row(
            model="bk-sdm-small",
            stage="text_encoder",
            width=1024,
            height=1024,
            batch_size=16,
            compile="max-autotune",
            status="ok",
            fidelity_ok=False,
            median_ms=12345.6,
            images_per_s=0.00123,
            peak_mem_reserved_bytes=123.4 * GIB,
        ),  # fmt: skip
        _summary_row(
            model="sd35-medium-no-t5",
            stage="pipeline",
            status="unsupported",
            median_ms=None,
            images_per_s=None,
            peak_mem_reserved_bytes=None,
        ),  # fmt: skip
    ]
    print_summary(RunOutcome("r", None, rows))  # captured: stdout is not a terminal
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if len(line) > 100] == []
    assert "sd15:" in lines and "bk-sdm-small:" in lines  # rows grouped under their model
    encoder = next(line for line in lines if " 512x512 " in line and " 81.0 " in line)
    assert "text_encoder" in encoder and "12.3 ms" in encoder and "1.50 GiB" in encoder
    unet = next(line for line in lines if " unet " in line)
    assert "4.42 s" in unet and " 0.23 " in unet
    widest = next(line for line in lines if "1024x1024" in line)
    assert "text_encoder" in widest and "ok (fidelity" in widest and "sdpa+max-auto" in widest
    assert "12.3 s" in widest and "0.0012" in widest and "123 GiB" in widest and " 16 " in widest
    assert any(
        line.split()[:2] == ["pipeline", "512x512"] and "unsupported" in line for line in lines
    )
