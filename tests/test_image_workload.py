"""ImageWorkload, CostAssumptions and the frozen answers predict and recommend return."""

from __future__ import annotations

import dataclasses

import pytest

from sdbench.analysis.costs import stage_cost
from sdbench.analysis.memory_model import estimate_memory
from sdbench.analysis.predict import predict
from sdbench.analysis.workload import CostAssumptions, ImageWorkload
from sdbench.errors import BadInput


def test_an_alias_costs_and_weighs_what_its_registered_model_does():
    sd14, sd15 = ImageWorkload("sd14", 512, 512), ImageWorkload("sd15", 512, 512)
    assert sd14.registered_model == "sd15" and sd14.family == "sd15"
    assert stage_cost(sd14, "unet") == stage_cost(sd15, "unet")
    assert estimate_memory(sd14) == estimate_memory(sd15)


def test_the_family_comes_from_the_registry_for_distilled_models():
    assert ImageWorkload("bk-sdm-tiny", 512, 512).family == "sd15"
    assert ImageWorkload("ssd-1b", 1024, 1024).family == "sdxl"


def test_usual_fills_steps_and_guidance_and_refuses_an_unknown_model():
    turbo = ImageWorkload.usual("sdxl-turbo", 512)
    assert (turbo.width, turbo.steps, turbo.cfg) == (512, 1, False)
    with pytest.raises(BadInput, match="Unknown model"):
        ImageWorkload.usual("sd99", 512)


def test_a_workload_is_frozen_and_changed_by_copy():
    workload = ImageWorkload("sd15", 512, 512, batch_size=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        workload.batch_size = 4  # type: ignore[misc]
    assert workload.but(batch_size=4).batch_size == 4 and workload.batch_size == 2
    assert workload.guided_batch == 4 and workload.but(cfg=False).guided_batch == 2


def test_cost_per_1000_images_is_the_purchase_share_plus_electricity():
    costs = CostAssumptions(electricity_usd_per_kwh=0.2, lifetime_years=2, hours_per_day=10)
    # 2 years x 365 days x 10 h = 7300 h = 26.28 M seconds: 2.628 M images at 10 s each.
    purchase = 1000 * 1000 / 2.628e6
    electricity = 1000 * 3.6e6 / 3.6e6 * 0.2  # 3.6 MJ per image is 1 kWh
    assert costs.per_1000_images_usd(10.0, 3.6e6, 1000.0) == pytest.approx(purchase + electricity)
    assert costs.per_1000_images_usd(10.0, None, 1000.0) is None
    assert costs.per_1000_images_usd(10.0, 100.0, float("nan")) is None


def test_a_prediction_is_frozen_and_its_dict_keeps_the_contract_keys_in_order():
    answer = predict("4090", ImageWorkload.usual("sd15", 512))
    with pytest.raises(dataclasses.FrozenInstanceError):
        answer.fits = False  # type: ignore[misc]
    record = answer.to_dict()
    assert list(record)[:14] == [
        "gpu", "model", "height", "width", "batch_size", "precision", "steps", "cfg",
        "attention", "compile", "it_per_s", "image_s", "s_per_image", "images_per_s",
    ]  # fmt: skip
    assert record["s_per_image"] == answer.image_s and record["ways_to_fit"] == []
    assert {"peak_vram_bytes", "fits", "source", "correction_factor"} <= set(record)
