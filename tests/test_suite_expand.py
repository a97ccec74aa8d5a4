"""Expanding a suite is a pure, deterministic function: order, groups, excludes, stable ids."""

from __future__ import annotations

import itertools

import pytest
from conftest import suite_text

from sdbench.cell import Cell
from sdbench.errors import BadInput
from sdbench.suite import expand, load_suite, parse_suite
from sdbench.suite.packaged import packaged_suites


def _suite(excludes=None, **matrix):
    return parse_suite(suite_text(matrix=matrix, excludes=excludes), source="s.toml")


def test_cells_of_a_device_model_precision_group_are_contiguous_in_axis_order():
    suite = _suite(
        device=["cuda", "cpu"],
        resolution=[64, "96x64"],
        batch_size=[2, 1],
        precision=["fp32", "bf16"],
    )
    cells = expand(suite, ["cpu", "cuda:0", "cuda:1"])
    assert [c.label() for c in cells[:4]] == [
        "tiny text_encoder 64x64 bs2 fp32 sdpa @ cuda:0",
        "tiny text_encoder 64x64 bs1 fp32 sdpa @ cuda:0",
        "tiny text_encoder 96x64 bs2 fp32 sdpa @ cuda:0",
        "tiny text_encoder 96x64 bs1 fp32 sdpa @ cuda:0",
    ]
    groups = [c.group for c in cells]
    assert groups == sorted(groups, key=groups.index)  # each group appears in one block
    assert [g[0] for g in dict.fromkeys(groups)] == ["cuda:0"] * 2 + ["cuda:1"] * 2 + ["cpu"] * 2
    assert len(cells) == 24 and len({c.cell_id for c in cells}) == 24


def test_expansion_is_pure_and_repeatable():
    suite = _suite(batch_size=[1, 2], precision=["fp32", "bf16"])
    assert expand(suite, ["cpu"]) == expand(suite, ["cpu"])


def test_cell_ids_are_stable_across_versions():
    # compare and --resume match rows by cell_id: changing how it is computed orphans old results.
    cell = Cell("sd15", "unet", "cpu", 512, 512, 1, "fp32", "sdpa", "none")
    assert cell.cell_id == "27d556bd986ef168"
    assert Cell.from_dict(cell.to_dict()).cell_id == cell.cell_id
    assert Cell("sd15", "unet", "cpu", 512, 512, 2, "fp32", "sdpa", "none").cell_id != cell.cell_id


def test_excludes_drop_cells_matching_every_key_given():
    suite = _suite(
        excludes=[{"precision": "bf16", "batch_size": [2]}, {"device": "cuda", "resolution": 64}],
        device=["auto", "cpu"],
        resolution=[64, 72],
        batch_size=[1, 2],
        precision=["fp32", "bf16"],
    )
    cells = expand(suite, ["cpu", "cuda:0"])
    labels = {c.label() for c in cells}
    assert not any("bs2 bf16" in label for label in labels)
    assert not any("64x64" in label and "cuda:0" in label for label in labels)
    assert "tiny text_encoder 64x64 bs2 fp32 sdpa @ cpu" in labels
    assert "tiny text_encoder 72x72 bs1 bf16 sdpa @ cuda:0" in labels
    assert len(cells) == 16 - 4 - 3  # less 4 bf16 bs2, less the 3 other 64x64 cells on cuda


def test_auto_means_the_accelerators_else_the_cpu_and_duplicates_collapse():
    assert {c.device for c in expand(_suite(device=["auto"]), ["cpu"])} == {"cpu"}
    cells = expand(_suite(device=["auto", "cuda:1", "rocm"]), ["cpu", "cuda:0", "cuda:1"])
    assert [c.device for c in cells] == ["cuda:0", "cuda:1"]


def test_a_device_that_is_not_present_is_a_clear_error():
    with pytest.raises(BadInput, match='Device "cuda:3" is not present on this machine'):
        expand(_suite(device=["cuda:3"]), ["cpu", "cuda:0"])


def test_options_reach_every_cell():
    text = suite_text(options={"cfg": False, "steps": 4})
    cells = expand(parse_suite(text, source="s.toml"), ["cpu"])
    assert all(not c.cfg and c.steps == 4 and c.weights == "random" for c in cells)


def test_model_option_gives_each_model_its_usual_steps_and_guidance():
    suite = parse_suite(
        """
[matrix]
model = ["sd15", "sdxl-turbo"]
[options]
cfg = "model"
steps = "model"
"""
    )
    cells = {c.model: c for c in expand(suite, ["cpu"])}
    assert (cells["sd15"].steps, cells["sd15"].cfg) == (50, True)
    assert (cells["sdxl-turbo"].steps, cells["sdxl-turbo"].cfg) == (1, False)


def test_model_option_is_the_only_string_cfg_and_steps_accept():
    with pytest.raises(BadInput, match='"model"'):
        parse_suite('[options]\ncfg = "yes"')
    with pytest.raises(BadInput, match='"model"'):
        parse_suite('[options]\nsteps = "many"')


def _expand_one_combination_at_a_time(suite, devices):
    """The definition the pruned expansion must match: every combination, each rule tested."""
    from sdbench.suite.expand import (
        _COMBO_KEYS,
        _as_sets,
        _cell,
        _excluded,
        _grouped,
        _serve_cells,
        resolve_devices,
    )

    m = suite.matrix
    axes = [resolve_devices(m["device"], devices) if k == "device" else m[k] for k in _COMBO_KEYS]
    excludes, cells = _as_sets(suite.excludes), {}
    for combo in itertools.product(*axes):
        values = dict(zip(_COMBO_KEYS, combo, strict=True))
        if not _excluded(values, excludes):
            for cell in _serve_cells(_cell(values, suite.options), suite.serve):
                cells.setdefault(cell.cell_id, cell)
    return _grouped(list(cells.values()))


# gpu-check.toml (192,000 combinations) is left out: one at a time they take seconds; its 54
# cells are pinned exactly by tests/test_gpu_check.py.
@pytest.mark.parametrize("name", sorted(set(packaged_suites()) - {"gpu-check"}))
def test_pruned_expansion_keeps_exactly_the_cells_and_order_of_testing_every_combination(name):
    suite = load_suite(name)
    for devices in (["cpu"], ["cpu", "cuda:0", "cuda:1"]):
        assert expand(suite, devices) == _expand_one_combination_at_a_time(suite, devices)


def test_pruned_expansion_matches_on_device_rules_and_merged_rules_together():
    suite = _suite(
        device=["cuda", "cpu"],
        stage=["unet", "vae_decode"],
        batch_size=[1, 2, 4],
        precision=["fp32", "bf16"],
        excludes=[
            {"device": "cpu", "precision": "bf16"},
            {"stage": "vae_decode", "batch_size": [2, 4]},
            {"batch_size": 4, "precision": "fp32"},
        ],
    )
    devices = ["cpu", "cuda:0"]
    cells = expand(suite, devices)
    assert cells == _expand_one_combination_at_a_time(suite, devices)
    # cuda:0: unet bs 1/2 x fp32/bf16, unet bs 4 bf16, vae bs 1 x fp32/bf16; cpu: the fp32 three
    assert len(cells) == 7 + 3
