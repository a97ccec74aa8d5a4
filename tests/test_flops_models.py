"""FLOP counts on meta: the reference figures stay, new kinds count, and `sdbench flops` reports them."""

from __future__ import annotations

import json

import pytest

from sdbench.cli import main
from sdbench.models.flops import count_flops


def test_reference_unet_figures_are_unchanged():
    assert count_flops("sd15", "unet", 512, 512, 1, True, 20) == pytest.approx(1.607e12, rel=1e-3)
    assert count_flops("sdxl", "unet", 1024, 1024, 1, True, 20) == pytest.approx(1.352e13, rel=1e-3)


def test_pipeline_is_text_plus_steps_denoiser_steps_plus_decode():
    parts = {s: count_flops("tiny-sd3", s, 64, 64, 1, True, 3) for s in ("text_encoder", "unet")}
    decode = count_flops("tiny-sd3", "vae_decode", 64, 64, 1, True, 3)
    total = count_flops("tiny-sd3", "pipeline", 64, 64, 1, True, 3)
    assert total == parts["text_encoder"] + 3 * parts["unet"] + decode > 0


def test_taesd_decode_costs_a_small_fraction_of_the_kl_decoder():
    kl = count_flops("tiny", "vae_decode", 128, 128, 1, vae="default")
    tiny = count_flops("tiny", "vae_decode", 128, 128, 1, vae="taesd")
    assert 0 < tiny < kl


def test_guidance_doubles_the_denoiser_step():
    with_cfg = count_flops("tiny-sd3", "unet", 64, 64, 1, True)
    without = count_flops("tiny-sd3", "unet", 64, 64, 1, False)
    assert with_cfg == 2 * without


def test_flops_command_prints_json_with_the_flops_column(capsys):
    code = main(["flops", "--model", "tiny", "--stage", "denoiser", "--resolution", "64", "--json"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 0
    assert answer["stage"] == "unet" and answer["cfg"] is True
    assert answer["flops"] == count_flops("tiny", "unet", 64, 64, 1, True)


def test_flops_command_pipeline_defaults_to_the_model_usual_steps(capsys):
    main(["flops", "--model", "tiny", "--stage", "pipeline", "--resolution", "64x64",
          "--no-cfg", "--json"])  # fmt: skip
    answer = json.loads(capsys.readouterr().out)
    assert answer["steps"] == 4 and answer["cfg"] is False
    assert answer["flops"] == count_flops("tiny", "pipeline", 64, 64, 1, False, 4)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "sd16", "--stage", "unet", "--resolution", "512"], "Unknown model"),
        (["--model", "tiny", "--stage", "unet", "--resolution", "500"], "multiple of 8"),
        (["--model", "tiny", "--stage", "unet", "--resolution", "64", "--batch-size", "0"],
         "batch-size"),
        (["--model", "tiny", "--stage", "unet", "--resolution", "64", "--vae", "big"],
         "autoencoder"),
    ],
)  # fmt: skip
def test_flops_command_bad_input_exits_2_with_a_message(capsys, argv, message):
    try:
        code = main(["flops", *argv])
    except SystemExit as exit:  # a flag's bounded type refuses the value while parsing
        code = exit.code
    assert code == 2
    assert message in capsys.readouterr().err
