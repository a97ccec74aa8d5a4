"""The GPU catalogue: coverage, citations, loose name matching and the `sdbench gpus` verb."""

from __future__ import annotations

import json

import pytest

from sdbench.cli import main
from sdbench.errors import BadInput
from sdbench.gpus import find_gpu, load_catalogue, normalise_name
from sdbench.gpus.match import tokens


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
        # the telling words (memory size, Ti, Super, form factor) pick one card
        ("4060 ti 8gb", "GeForce RTX 4060 Ti 8GB"),
        ("RTX 4060 Ti 16 GB", "GeForce RTX 4060 Ti 16GB"),
        ("a100 pcie 80gb", "A100 PCIe 80GB"),
        ("h100 sxm", "H100 SXM5 80GB"),
        ("7900xtx", "Radeon RX 7900 XTX"),
        ("7900 xt", "Radeon RX 7900 XT"),
        ("4070s", "GeForce RTX 4070 Super"),
        ("rtx 4090 24gb", "GeForce RTX 4090"),
        ("Intel(R) Arc(TM) A770 Graphics", "Intel Arc A770 16GB"),
    ],
)
def test_driver_short_and_telling_names_find_the_right_card(written, expected):
    assert find_gpu(written).name == expected


def test_every_catalogue_name_and_alias_finds_its_own_card():
    for gpu in load_catalogue():
        for spelling in (gpu.name, *gpu.aliases):
            assert find_gpu(spelling).name == gpu.name, spelling


def _variant_groups() -> list[list]:
    """Catalogue cards that share a model number and differ only in variant words, memory size,
    form factor or core count (3080 / 3080 Ti, 4060 Ti 8GB / 16GB, A100 PCIe / SXM4, ...)."""
    groups: dict[frozenset, list] = {}
    for gpu in load_catalogue():
        groups.setdefault(tokens(gpu.name).core, []).append(gpu)
    return [group for group in groups.values() if len(group) > 1]


def test_the_catalogue_has_the_variant_pairs_people_confuse():
    names = {frozenset(g.name for g in group) for group in _variant_groups()}
    assert frozenset({"GeForce RTX 3080", "GeForce RTX 3080 Ti"}) in names
    assert frozenset({"GeForce RTX 4060 Ti 8GB", "GeForce RTX 4060 Ti 16GB"}) <= set().union(*names)
    assert len(names) >= 12


@pytest.mark.parametrize("group", _variant_groups(), ids=lambda g: g[0].name)
def test_each_card_of_a_variant_group_is_found_only_by_its_own_words(group):
    for gpu in group:
        assert find_gpu(gpu.name).name == gpu.name
        others = [g for g in group if g is not gpu]
        # The card's own words with one telling word left out never silently give another card.
        for word in sorted(tokens(gpu.name).variants | tokens(gpu.name).details):
            shorter = " ".join(w for w in gpu.name.split() if w.lower() != word)
            try:
                found = find_gpu(shorter)
            except BadInput as error:
                assert gpu.name in str(error) or any(g.name in str(error) for g in others)
                continue
            assert tokens(found.name).variants <= tokens(gpu.name).variants | {word}


def test_3080_ti_is_the_3080_ti_and_3080_is_the_3080():
    assert find_gpu("3080 ti").name == "GeForce RTX 3080 Ti"
    assert find_gpu("RTX 3080 Ti").name == "GeForce RTX 3080 Ti"
    assert find_gpu("3080ti").name == "GeForce RTX 3080 Ti"
    assert find_gpu("3080").name == "GeForce RTX 3080"


@pytest.mark.parametrize(
    ("written", "candidates"),
    [
        ("4060 ti", ["GeForce RTX 4060 Ti 8GB", "GeForce RTX 4060 Ti 16GB"]),
        ("5060 Ti", ["GeForce RTX 5060 Ti 8GB", "GeForce RTX 5060 Ti 16GB"]),
        ("A100", ["A100 PCIe 40GB", "A100 SXM4 40GB", "A100 PCIe 80GB", "A100 SXM4 80GB"]),
        ("A100 80GB", ["A100 PCIe 80GB", "A100 SXM4 80GB"]),
        ("H100", ["H100 PCIe 80GB", "H100 SXM5 80GB"]),
        ("7900", ["Radeon RX 7900 XT", "Radeon RX 7900 XTX"]),
    ],
)
def test_an_ambiguous_name_is_refused_naming_every_candidate(written, candidates):
    with pytest.raises(BadInput) as caught:
        find_gpu(written)
    message = str(caught.value)
    assert f"could mean {len(candidates)} GPUs" in message
    for name in candidates:
        assert name in message


def test_a_memory_size_the_card_does_not_have_is_not_that_card():
    with pytest.raises(BadInput, match='Unknown GPU "4090 48gb".*GeForce RTX 4090'):
        find_gpu("4090 48gb")


def test_a_card_missing_from_the_catalogue_is_not_its_ti_sibling():
    with pytest.raises(BadInput, match=r'Unknown GPU "2080"\. Did you mean: GeForce RTX 2080 Ti'):
        find_gpu("2080")


def test_predict_with_an_ambiguous_gpu_exits_2_naming_both_cards(capsys):
    assert main(["predict", "--gpu", "4060 ti", "--model", "sd15", "--results"]) == 2
    captured = capsys.readouterr()
    assert "GeForce RTX 4060 Ti 8GB" in captured.err and "GeForce RTX 4060 Ti 16GB" in captured.err
    assert captured.out == "" and "Traceback" not in captured.err


def test_predict_answers_with_the_full_catalogue_name(capsys):
    assert main(["predict", "--gpu", "3080 ti", "--model", "sd15", "--results"]) == 0
    assert capsys.readouterr().out.startswith("GeForce RTX 3080 Ti: sd15 512x512")


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
