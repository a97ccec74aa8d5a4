"""The report leads with its answers: an image here, the fastest passing setting, GPUs, budgets."""

from __future__ import annotations

import pandas as pd
import pytest
from report_fixtures import scale_cell, synthetic_rows, with_text_encoder

from sdbench.analysis.analysis import analyse, flagged_outliers
from sdbench.analysis.answers import answers
from sdbench.report.sections import build_page, warning_folds
from sdbench.report.site import render_html

CPU_UNET_512_MS = 900.0 * 4  # the fixtures' CPU UNet at 512 px, batch 1, fp32 sdpa


def _frame(rows=None) -> pd.DataFrame:
    return pd.DataFrame(with_text_encoder(rows if rows is not None else synthetic_rows()))


def _cpu(found):
    return next(a for a in found if a.device == "cpu")


@pytest.fixture(scope="module")
def page():
    return build_page(analyse(_frame()), [], with_plots=False)  # recommend per workload: seconds


@pytest.fixture(scope="module")
def cpu(page):
    return _cpu(answers(_frame()))


def test_answers_are_the_first_section(page):
    assert page.sections[0].anchor == "answers"
    assert [s.anchor for s in page.sections[1:3]] == ["overview", "matrix"]


def test_an_image_is_composed_at_the_models_usual_steps_on_the_largest_size(cpu):
    assert (cpu.model, cpu.height, cpu.batch_size, cpu.steps) == ("sd15", 512, 1, 50)
    vae_ms, text_ms = CPU_UNET_512_MS * 0.6, 900.0 * 0.6 / 20
    expected_s = (text_ms + 50 * CPU_UNET_512_MS + vae_ms) / 1000
    assert cpu.default.seconds == pytest.approx(expected_s)
    assert set(cpu.default.settings.values()) == {"fp32 sdpa"}
    assert cpu.default.energy_j is None  # the fixtures' CPU rows have no power reading


def test_the_fastest_passing_setting_and_its_gain(cpu):
    assert set(cpu.fastest.settings.values()) == {"bf16 sdpa"}
    assert cpu.gain == pytest.approx(1 / 0.55)
    speedup, low, high = cpu.unet_speedup
    assert speedup == pytest.approx(1 / 0.55)
    assert low < speedup < high


def test_an_outlier_default_withholds_the_gain():
    rows = synthetic_rows()
    # fp32 UNet at 512, batch 1: four times slow, slower than batch 2
    scale_cell(rows, ("cpu", "unet", 512, 1, "fp32", "sdpa", "none"), 4.0)
    cpu = _cpu(answers(_frame(rows)))
    assert cpu.default is None and cpu.gain is None
    assert cpu.fastest is not None  # bf16 still answers "how fast can it be"
    assert "no gain is claimed" in cpu.notes[0]


def test_three_purchasable_gpus_sorted_by_price_and_a_pick_per_budget(cpu):
    prices = [pick["price_usd"] for pick in cpu.gpu_picks]
    assert len(prices) == 3 and prices == sorted(prices) and None not in prices
    tiers = [tier["tier"] for tier in cpu.budget_picks]
    assert tiers[0] == "<= $300" and tiers[-1] == "any"
    assert all(tier["fastest"]["s_per_image"] > 0 for tier in cpu.budget_picks)


def test_warnings_fold_into_one_line_per_kind_with_a_count():
    folds = warning_folds(_frame(), flagged_outliers(_frame()))
    summaries = [fold.summary for fold in folds]
    # 14 ok CPU cells at 512 px carry "high spread: IQR/median 12%...", 2 compiled cells recompiles.
    assert summaries == ["14 cells: high spread", "2 cells: N recompiles during timing"]
    assert len(folds[0].table.rows) == 14


def test_the_page_opens_with_answer_cards_and_collapsed_warnings(page):
    html = render_html(page)
    assert html.index('<section id="answers">') < html.index('<section id="overview">')
    assert html.count('class="answer"') == 6  # three questions for each of two devices
    assert '<details class="fold"><summary>14 cells: high spread</summary>' in html
    assert "GeForce RTX 5060 · predicted" in html  # source beside the GPU's name
    assert 'id="precision-gains"' in html and "yes: 1.82x faster" in html
