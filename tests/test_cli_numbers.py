"""Numbers on the command line: NaN, infinity, negatives and absurd sizes exit 2 before anything runs."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sdbench.cli import build_parser, main

# (verb and its required arguments, flag, lowest allowed, highest allowed, integer?)
FLAGS = [
    (["predict", "--gpu", "4090"], "--batch-size", 1, 4096, True),
    (["predict", "--gpu", "4090"], "--steps", 1, 1000, True),
    (["recommend"], "--budget", 0, 1e9, False),
    (["recommend"], "--electricity", 0, 10, False),
    (["recommend"], "--lifetime-years", 0, 50, False),
    (["recommend"], "--hours-per-day", 0, 24, False),
    (["compare", "a", "b"], "--threshold", 0, 1000, False),
    (["compare", "a", "b"], "--memory-threshold-mib", 0, 1e9, False),
    (["history", "a"], "--threshold", 0, 1000, False),
    (
        ["flops", "--model", "tiny", "--stage", "unet", "--resolution", "64"],
        "--batch-size",
        1,
        4096,
        True,
    ),
    (
        ["flops", "--model", "tiny", "--stage", "unet", "--resolution", "64"],
        "--steps",
        1,
        1000,
        True,
    ),
]
PARSER = build_parser()
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.sampled_from(["nan", "inf", "-inf", "-0", "1e300", "0x10", "", "five"]),
)


@settings(max_examples=400, deadline=None)
@given(case=st.sampled_from(FLAGS), text=NUMBERS)
def test_a_number_flag_accepts_only_finite_values_in_its_range(case, text):
    verb, flag, low, high, integer = case
    try:
        args = PARSER.parse_args([*verb, flag, text])
    except SystemExit as exit:
        assert exit.code == 2
        return
    value = getattr(args, flag.lstrip("-").replace("-", "_"))
    value = value[0] if isinstance(value, list) else value
    assert math.isfinite(value) and low <= value <= high
    assert isinstance(value, int) if integer else True


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "--gpu", "4090", "--batch-size", "-1"],
        ["predict", "--gpu", "4090", "--steps", "0"],
        ["predict", "--gpu", "4090", "--resolution", "100000"],
        ["recommend", "--budget", "nan"],
        ["recommend", "--electricity", "-1"],
        ["recommend", "--lifetime-years", "0"],
        ["recommend", "--hours-per-day", "25"],
        ["compare", "a", "b", "--memory-threshold-mib", "nan"],
        ["compare", "a", "b", "--memory-threshold-mib", "-5"],
        ["history", "a", "--threshold", "inf"],
        [
            "flops",
            "--model",
            "tiny",
            "--stage",
            "unet",
            "--resolution",
            "64",
            "--batch-size",
            "5000",
        ],
    ],
)
def test_an_impossible_number_exits_2_naming_the_flag(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("--" in err or "Resolution" in err)


def test_counting_flops_of_a_huge_call_never_allocates_its_inputs(monkeypatch):
    from sdbench.models.flops import count_flops

    real_randn = torch.randn

    def randn(*args, **kwargs):
        shape = args[0] if args and isinstance(args[0], tuple | list) else args
        assert math.prod(shape) < 10**8, f"allocated a {shape} tensor to count FLOPs"
        return real_randn(*args, **kwargs)

    monkeypatch.setattr(torch, "randn", randn)
    count_flops.cache_clear()
    small = count_flops("tiny", "unet", 64, 64, 1)
    huge = count_flops("tiny", "unet", 8192, 8192, 4096)
    assert huge > small * 4096 * 1000  # 16384x the pixels, 4096x the batch (attention grows faster)
