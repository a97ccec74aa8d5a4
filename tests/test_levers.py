"""The lever axes memory, quant and cache: spelling, validation, cell ids, schema, capability."""

from __future__ import annotations

import pandas as pd
import pytest

from sdbench.cell import Cell
from sdbench.errors import BadInput
from sdbench.levers import CacheSetting, LeverError, normalise, parse_cache, parse_memory
from sdbench.runner.capability import unsupported_reason
from sdbench.store.files import write_run
from sdbench.store.read import read_results
from sdbench.suite import expand, parse_suite


def _cells(matrix: str) -> list[Cell]:
    return expand(parse_suite(f"[matrix]\nmodel = ['tiny']\n{matrix}", "s.toml"), ["cpu"])


def _error(matrix: str) -> str:
    with pytest.raises(BadInput) as failure:
        parse_suite(f"[matrix]\n{matrix}", source="s.toml")
    return str(failure.value)


def test_memory_combinations_have_one_spelling_whatever_the_order():
    assert parse_memory("vae_tiling+model_offload") == "model_offload+vae_tiling"
    assert parse_memory(" vae_slicing + vae_tiling ") == "vae_slicing+vae_tiling"
    assert parse_memory("none") == "none"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("vae_tilling", 'Did you mean "vae_tiling"?'),
        ("none+vae_tiling", "'none' cannot be combined"),
        ("vae_tiling+vae_tiling", "repeated"),
        ("model_offload+sequential_offload", "exclude each other"),
    ],
)
def test_bad_memory_settings_say_what_is_allowed(value, message):
    with pytest.raises(LeverError, match=message):
        parse_memory(value)


def test_cache_values_parse_to_their_parameter():
    assert parse_cache("deepcache:3") == CacheSetting("deepcache", interval=3)
    assert parse_cache("fbcache:0.12") == CacheSetting("fbcache", threshold=0.12)
    assert normalise("cache", "fbcache:.120") == "fbcache:0.12"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("deepcache", "integer from 2"),
        ("deepcache:1", "integer from 2"),
        ("deepcache:2.5", "integer from 2"),
        ("fbcache:0", "between 0 and 1"),
        ("fbcache:1.0", "between 0 and 1"),
        ("fbcache:nan", "between 0 and 1"),
        ("deepcach:3", 'Did you mean "deepcache"?'),
        (3, "a cache setting is a string"),
    ],
)
def test_bad_cache_values_are_refused_with_the_allowed_forms(value, message):
    with pytest.raises(LeverError, match=message):
        parse_cache(value)


def test_suite_errors_on_levers_name_the_file_key_and_fix():
    assert _error("cache = ['deepcache:1']").startswith("s.toml: [matrix.cache] 'deepcache:1': ")
    assert 'Try "deepcache:3"' in _error("cache = ['deepcache:1']")
    assert 'Did you mean "int8wo"?' in _error("quant = ['int8w']")
    assert "unknown memory mode 'swap'" in _error("[[exclude]]\nmemory = 'swap'")
    assert 'add "fp8dq" to quant' in _error("precision = ['fp8']\nquant = ['int8wo']")


def test_levers_are_axes_of_the_matrix_in_canonical_spelling():
    cells = _cells(
        "stage = ['pipeline']\nmemory = ['none', 'vae_tiling+vae_slicing']\n"
        "quant = ['none', 'int8wo']\ncache = ['none', 'deepcache:02']"
    )
    assert len(cells) == 8
    assert {c.memory for c in cells} == {"none", "vae_slicing+vae_tiling"}
    assert {c.quant for c in cells} == {"none", "int8wo"}
    assert {c.cache for c in cells} == {"none", "deepcache:2"}
    assert len({c.cell_id for c in cells}) == 8


def test_a_cell_with_every_lever_off_keeps_the_id_it_had_before_the_levers():
    cell = Cell("sd15", "unet", "cpu", 512, 512, 1, "fp32", "sdpa", "none")
    assert cell.cell_id == "27d556bd986ef168"  # the id sdbench gave this cell before issue 20
    assert (
        Cell("sd15", "unet", "cpu", 512, 512, 1, "fp32", "sdpa", "none", quant="int8wo").cell_id
        != cell.cell_id
    )


def test_precision_fp8_is_fp8dq_on_bf16_and_one_cell_with_its_spelled_out_twin():
    cells = _cells("precision = ['fp8', 'bf16']\nquant = ['none', 'fp8dq']")
    assert [(c.precision, c.quant) for c in cells] == [("bf16", "fp8dq"), ("bf16", "none")]


def test_rows_of_files_written_before_the_levers_read_as_none(tmp_path):
    row = {"run_id": "r", "cell_id": "c", "model": "tiny", "status": "ok", "schema_version": 1}
    path = write_run([row], tmp_path / "old.parquet")
    frame = read_results([path])
    assert list(frame[["memory", "quant", "cache"]].iloc[0]) == ["none", "none", "none"]
    assert isinstance(frame, pd.DataFrame)


def _cell(stage="pipeline", model="tiny", **levers) -> Cell:
    return Cell(model, stage, "cpu", 64, 64, 1, "fp32", "sdpa", "none", **levers)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        (_cell(cache="deepcache:3", stage="unet"), "deepcache reuses work across denoising steps"),
        (_cell(cache="fbcache:0.1"), "fbcache applies to DiT (transformer) models"),
        (_cell(model="tiny-sd3", cache="deepcache:3"), "deepcache applies to UNet models"),
    ],
)
def test_cache_settings_outside_their_models_and_stage_are_unsupported(cell, reason):
    assert unsupported_reason(cell).startswith(reason)


def test_a_wide_matrix_narrowed_by_excludes_loads_and_one_that_is_not_is_refused():
    wide = (
        "[matrix]\nmodel = ['tiny']\nresolution = [64, 128, 256, 512, 1024]\n"
        f"batch_size = {list(range(1, 21))}\nquant = ['none', 'int8wo', 'int8dq', 'fp8dq', 'nf4']\n"
        "memory = ['none', 'vae_slicing', 'vae_tiling', 'attention_slicing', 'model_offload']\n"
        "cache = ['none', 'deepcache:2', 'deepcache:3', 'deepcache:4']\n"
        "precision = ['fp32', 'bf16', 'fp16']\nattention = ['sdpa', 'math', 'flash']\n"
        "stage = ['unet', 'pipeline']\ncompile = ['none', 'default']\n"
    )  # 5 x 20 x 5 x 5 x 4 x 3 x 3 x 2 x 2 = 360,000 cells before excludes
    assert "expands to 360000 cells" in _error(wide.removeprefix("[matrix]\n"))
    narrowed = wide + "[[exclude]]\nbatch_size = " + str(list(range(2, 21))) + "\n"
    assert len(parse_suite(narrowed, "s.toml").excludes) == 1  # 18,000 cells remain
