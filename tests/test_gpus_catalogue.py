"""The GPU catalogue: coverage, citations, loose name matching and the `sdbench gpus` verb."""

from __future__ import annotations

import json

import pytest

from sdbench.cli import main
from sdbench.errors import BadInput
from sdbench.gpus import find_gpu, load_catalogue, normalise_name


def test_catalogue_has_at_least_40_gpus_each_with_a_dated_source():
    gpus = load_catalogue()
    assert len(gpus) >= 40
    for gpu in gpus:
        assert gpu.spec_source and gpu.spec_source_date, gpu.name
        assert gpu.vram_gb > 0 and gpu.mem_bandwidth_gbs > 0 and gpu.fp16_tensor_tflops > 0, (
            gpu.name
        )
        if gpu.street_price_usd is not None:
            assert gpu.street_price_date and gpu.price_source, gpu.name
        if gpu.cloud_usd_per_h is not None:
            assert gpu.cloud_date and gpu.cloud_source, gpu.name


def test_catalogue_covers_the_lines_people_choose_between():
    names = {g.name for g in load_catalogue()}
    for expected in ("GeForce RTX 4090", "GeForce RTX 5090", "Tesla T4", "A100 SXM4 80GB", "H100 SXM5 80GB",
                     "Radeon RX 7900 XTX", "Instinct MI300X", "Apple M2 Ultra (76-core GPU)", "Intel Arc B580"):  # fmt: skip
        assert expected in names


def test_names_are_unique_after_normalising():
    keys = [normalise_name(g.name) for g in load_catalogue()]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "written", ["4090", "rtx4090", "RTX 4090", "NVIDIA GeForce RTX 4090", "geforce rtx-4090"]
)
def test_loose_names_find_the_rtx_4090(written):
    assert find_gpu(written).name == "GeForce RTX 4090"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("NVIDIA A100-SXM4-80GB", "A100 SXM4 80GB"),
        ("NVIDIA H100 80GB HBM3", "H100 SXM5 80GB"),
        ("Tesla T4", "Tesla T4"),
        ("A10G", "A10G"),
        ("A10", "A10"),
        ("4070 ti super", "GeForce RTX 4070 Ti Super"),
        ("4070 Ti", "GeForce RTX 4070 Ti"),
        ("m2 max", "Apple M2 Max (38-core GPU)"),
    ],
)
def test_driver_and_short_names_find_the_right_card(written, expected):
    assert find_gpu(written).name == expected


def test_unknown_gpu_names_suggestions():
    with pytest.raises(BadInput, match=r'Unknown GPU "RTX 4099".*Did you mean:.*4090'):
        find_gpu("RTX 4099")


def test_ambiguous_name_lists_the_candidates():
    with pytest.raises(BadInput, match="7900 XT.*7900 XTX"):
        find_gpu("7900")


def test_gpus_json_lists_every_row_with_sources(capsys):
    assert main(["gpus", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == len(load_catalogue())
    assert all(row["spec_source"] for row in listed)


def test_gpus_table_shows_a_known_row(capsys):
    assert main(["gpus", "--vendor", "AMD"]) == 0
    out = capsys.readouterr().out
    assert "Radeon RX 7900 XTX" in out and "GeForce" not in out
