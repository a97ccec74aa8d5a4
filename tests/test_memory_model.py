"""The memory model: weights from parameter counts, activations fitted to measured peaks, what fits."""

from __future__ import annotations

import pytest

from sdbench.analysis.memory_model import (
    activation_bytes,
    activation_coefficients,
    attention_matrix_ratio,
    component_weight_bytes,
    estimate_memory,
    measured_activations,
    ways_to_fit,
)
from sdbench.analysis.workload import ImageWorkload
from sdbench.models.registry import MODELS

GIB = 1024**3


def test_weights_are_parameters_times_dtype_size():
    weights = component_weight_bytes("sdxl", "fp16")
    assert weights["unet"] == 2 * MODELS["sdxl"].components["unet"].published_params
    assert sum(component_weight_bytes("sd15", "fp32").values()) == 2 * sum(
        component_weight_bytes("sd15", "fp16").values()
    )


def test_activation_fit_reproduces_how_measured_peaks_grow_with_resolution():
    data = measured_activations()
    data = data[(data["batch_size"] == 1) & (data["stage"] != "text_encoder")]
    checked = 0
    for (model, stage, attention), rows in data.groupby(["model", "stage", "attention"]):
        if len(rows) < 2:
            continue
        small, large = rows.sort_values("height").iloc[0], rows.sort_values("height").iloc[-1]
        images = 1 if stage == "vae_decode" else 2
        fitted = [
            activation_bytes(
                model, stage, r["height"], r["width"], images, attention, r["precision"]
            )
            for r in (small, large)
        ]
        measured_growth = (
            large["activation_bytes"] - small["activation_bytes"]
        ) * 1.15  # allocator slack
        # Within 40%, and never below: a fit that under-reads memory would recommend cards that OOM.
        growth = fitted[1] - fitted[0]
        assert 0.95 * measured_growth <= growth <= 1.4 * measured_growth, (model, stage, attention)
        checked += 1
    assert checked >= 3


def test_activations_grow_with_resolution_batch_and_classic_attention():
    small = activation_bytes("sd15", "unet", 512, 512, 2, "sdpa", "fp16")
    assert activation_bytes("sd15", "unet", 1024, 1024, 2, "sdpa", "fp16") > 3 * small
    assert activation_bytes("sd15", "unet", 512, 512, 8, "sdpa", "fp16") == pytest.approx(
        4 * small, rel=0.01
    )
    assert activation_bytes("sd15", "unet", 1024, 1024, 2, "classic", "fp16") > activation_bytes(
        "sd15", "unet", 1024, 1024, 2, "sdpa", "fp16"
    )


@pytest.mark.parametrize(
    ("workload", "published_gb"),
    [
        # alexeigor/sd-benchmarks README: SD1.5 512x512 fp16 xformers, A100: 4.54 GB
        (
            {
                "model": "sd15",
                "height": 512,
                "width": 512,
                "batch_size": 1,
                "precision": "fp16",
                "attention": "xformers",
            },
            4.54,
        ),
        # huggingface/blog simple_sdxl_optimizations.md: SDXL 1024, 4 images, A100 40GB
        (
            {"model": "sdxl", "height": 1024, "width": 1024, "batch_size": 4, "precision": "fp16"},
            21.72,
        ),
        (
            {
                "model": "sdxl",
                "height": 1024,
                "width": 1024,
                "batch_size": 4,
                "precision": "fp16",
                "vae_slicing": True,
            },
            15.40,
        ),
        (
            {
                "model": "sdxl",
                "height": 1024,
                "width": 1024,
                "batch_size": 4,
                "precision": "fp32",
                "attention": "classic",
            },
            28.09,
        ),
    ],
)
def test_peaks_are_within_25_percent_of_published_gpu_peaks(workload, published_gb):
    workload = dict(workload)
    levers = {"vae_slicing": workload.pop("vae_slicing", False)}
    peak = estimate_memory(ImageWorkload(**workload), **levers).peak_bytes
    assert peak / 1e9 == pytest.approx(published_gb, rel=0.25)


def test_sdxl_attention_borrowed_from_sd15_is_scaled_to_its_smaller_attention_maps():
    # SDXL's first attention sits one level down (1/16 of the tokens^2) with 10 heads instead of 8.
    assert attention_matrix_ratio("sdxl", "sd15") == pytest.approx(10 / 8 / 16)


def test_offload_and_vae_slicing_lower_the_peak():
    sdxl = ImageWorkload("sdxl", 1024, 1024, 4, "fp16")
    base = estimate_memory(sdxl).peak_bytes
    assert estimate_memory(sdxl, vae_slicing=True).peak_bytes < base
    assert estimate_memory(sdxl, offload="model").peak_bytes < base
    assert (
        estimate_memory(sdxl, offload="sequential").peak_bytes
        < estimate_memory(sdxl, offload="model").peak_bytes
    )


def test_ways_to_fit_suggest_fp16_for_fp32_sdxl_on_12gb():
    usable = 12 * GIB
    sdxl = ImageWorkload("sdxl", 1024, 1024, 1, "fp32")
    assert estimate_memory(sdxl).peak_bytes > usable
    suggestions = ways_to_fit(sdxl, usable)
    assert suggestions and suggestions[0].startswith("fp16")


def test_nothing_fits_in_a_tiny_memory_except_sequential_offload_or_nothing():
    suggestions = ways_to_fit(ImageWorkload("sdxl", 1024, 1024, 1, "fp16"), 1 * GIB)
    assert all("sequential" in s for s in suggestions)


def test_when_no_single_remedy_suffices_a_combination_is_offered():
    # SDXL at batch 2 on 8 GiB: the fp32-upcast VAE decode of two images alone exceeds the card.
    sdxl = ImageWorkload("sdxl", 1024, 1024, 2, "fp16")
    suggestions = ways_to_fit(sdxl, 8 * GIB)
    assert len(suggestions) == 1 and "VAE slicing + " in suggestions[0]
    one = sdxl.but(batch_size=1)
    assert estimate_memory(one, vae_slicing=True, offload="model").peak_bytes <= 8 * GIB


def test_without_cfg_the_denoiser_holds_half_the_activations():
    lcm = ImageWorkload("lcm-sd15", 768, 768, 4, "fp16", attention="classic")
    guided = estimate_memory(lcm.but(cfg=True))
    unguided = estimate_memory(lcm.but(cfg=False))
    assert guided.peak_stage == unguided.peak_stage == "unet"
    assert unguided.weights_bytes == guided.weights_bytes
    assert unguided.activation_bytes == pytest.approx(guided.activation_bytes / 2, rel=0.01)
    # SDXL-Turbo's peak is its fp32-upcast VAE decode, which guidance does not touch.
    turbo = [
        estimate_memory(ImageWorkload("sdxl-turbo", 512, 512, 4, cfg=c)) for c in (True, False)
    ]
    assert turbo[0] == turbo[1] and turbo[0].peak_stage == "vae_decode"


def test_model_offload_of_sd35_keeps_its_transformer_and_t5_resident_in_their_stages():
    # With model offload only the running stage's components are on the GPU: for SD3.5 that is
    # the 8.1B transformer while denoising and the 4.8B T5 (with both CLIPs) while encoding.
    weights = component_weight_bytes("sd35-large", "fp16")
    peak = estimate_memory(ImageWorkload("sd35-large", 1024, 1024, 1, "fp16"), offload="model")
    assert peak.weights_bytes >= weights["transformer"]
    encoders = sum(weights[n] for n in ("text_encoder", "text_encoder_2", "text_encoder_3"))
    small = ImageWorkload("sd35-large", 64, 64, 1, "fp16")
    assert estimate_memory(small, offload="model").weights_bytes in (
        weights["transformer"],
        encoders,
    )


@pytest.mark.parametrize("model", ["ssd-1b", "vega"])
def test_an_unmeasured_model_borrows_the_activations_of_its_registry_family(model):
    # SSD-1B and Vega are distilled SDXLs: they run SDXL's two text encoders (sd15's one would
    # under-read their peak) and an SDXL-shaped UNet.
    sdxl = MODELS["sdxl"].components
    assert MODELS[model].components["text_encoder_2"] == sdxl["text_encoder_2"]
    assert activation_coefficients(model, "text_encoder") == activation_coefficients(
        "sdxl", "text_encoder"
    )
    assert activation_coefficients(model, "unet")[0] == activation_coefficients("sdxl", "unet")[0]


@pytest.mark.parametrize("model", ["sd21", "bk-sdm-tiny", "tiny"])
def test_a_model_with_no_measured_relative_borrows_sd15s_activations(model):
    for stage in ("text_encoder", "unet", "vae_decode"):
        assert activation_coefficients(model, stage) == activation_coefficients("sd15", stage)
