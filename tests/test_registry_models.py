"""The registry builds every model's published architecture: parameter counts within 1%."""

from __future__ import annotations

import json

import pytest

from sdbench.errors import BadInput
from sdbench.models.build import count_parameters
from sdbench.models.registry import MODELS, TINY_VAES, get_model, vae_component

PUBLISHED = sorted(
    {
        (json.dumps(c.config, sort_keys=True, default=str), c.kind, c.published_params): (
            f"{name}.{component}"
        )
        for name, spec in MODELS.items()
        for component, c in spec.components.items()
        if c.published_params
    }.items(),
    key=lambda item: item[1],
)


@pytest.mark.parametrize(
    "config_json, kind, published",
    [key for key, _ in PUBLISHED],
    ids=[label for _, label in PUBLISHED],
)
def test_built_component_matches_published_parameter_count_within_one_percent(
    config_json, kind, published
):
    from sdbench.models.registry import Component

    counted = count_parameters(Component(kind, json.loads(config_json)))
    assert abs(counted - published) / published < 0.01


def test_every_real_model_states_published_counts_for_all_its_components():
    for name, spec in MODELS.items():
        if name.startswith("tiny"):
            continue
        missing = [c for c, comp in spec.components.items() if not comp.published_params]
        assert not missing, f"{name}: {missing}"


def test_distilled_unets_are_smaller_than_their_teachers_by_the_published_ratios():
    sd15 = count_parameters(MODELS["sd15"].components["unet"])
    bk_tiny = count_parameters(MODELS["bk-sdm-tiny"].components["unet"])
    assert 0.37 < bk_tiny / sd15 < 0.38  # 323.4M / 859.5M
    sdxl = count_parameters(MODELS["sdxl"].components["unet"])
    vega = count_parameters(MODELS["vega"].components["unet"])
    assert 0.28 < vega / sdxl < 0.30  # "more than 70% reduced"


def test_usual_step_counts_and_guidance_follow_the_model_cards():
    usual = {name: (spec.default_steps, spec.default_cfg) for name, spec in MODELS.items()}
    assert usual["sd15"] == (50, True)
    assert usual["sdxl-turbo"] == (1, False)
    assert usual["lcm-sd15"] == usual["lcm-sdxl"] == (4, False)
    assert usual["sd35-medium"] == usual["sd35-large"] == (28, True)
    assert MODELS["sdxl-turbo"].native_resolution == 512


def test_sd35_without_t5_keeps_everything_but_the_t5_encoder():
    full, lean = MODELS["sd35-medium"], MODELS["sd35-medium-no-t5"]
    assert set(full.components) - set(lean.components) == {"text_encoder_3"}
    assert lean.denoiser == "transformer" and lean.latent_channels == 16


def test_taesd_follows_the_model_family():
    assert vae_component(get_model("bk-sdm-tiny"), "taesd") is TINY_VAES["sd15"]
    assert vae_component(get_model("ssd-1b"), "taesd") is TINY_VAES["sdxl"]
    assert vae_component(get_model("sd35-medium"), "taesd").config["latent_channels"] == 16
    assert vae_component(get_model("sd15")) is MODELS["sd15"].components["vae"]
    assert abs(count_parameters(TINY_VAES["sd15"]) - 2_450_000) / 2_450_000 < 0.01


def test_unknown_autoencoder_is_a_user_error_naming_the_choices():
    with pytest.raises(BadInput, match="taesd"):
        vae_component(get_model("sd15"), "consistency-decoder")
