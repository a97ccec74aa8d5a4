"""Real weights load from a diffusers folder of .safetensors files only, never from pickles."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from rich.console import Console
from safetensors.torch import save_file

from sdbench.errors import BadInput
from sdbench.models.build import WEIGHT_FILES, load_safetensors, materialise
from sdbench.models.registry import MODELS
from sdbench.runner.run import run_suite

TINY = MODELS["tiny"]


def _save_component(folder: Path, name: str, seed: int) -> dict[str, torch.Tensor]:
    """A diffusers-style folder holding one tiny component with weights different from seed 0."""
    module = materialise(TINY, name, "cpu", "fp32", seed=seed)
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    path = folder / WEIGHT_FILES[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return state


@pytest.fixture
def no_pickles(monkeypatch):
    """Fail the test if anything calls torch.load (which unpickles)."""

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)


def test_a_component_loads_from_a_safetensors_folder(tmp_path, no_pickles):
    saved = _save_component(tmp_path / "weights", "unet", seed=7)
    module = materialise(TINY, "unet", "cpu", "bf16", weights=str(tmp_path / "weights"))
    loaded = module.state_dict()
    assert loaded.keys() == saved.keys()
    for key, tensor in saved.items():
        assert loaded[key].dtype == torch.bfloat16
        assert torch.equal(loaded[key], tensor.to(torch.bfloat16)), key
    random = materialise(TINY, "unet", "cpu", "bf16").state_dict()
    assert any(not torch.equal(random[k], loaded[k]) for k in saved if saved[k].ndim > 1)


def test_a_symlink_leading_out_of_the_weights_folder_is_refused(tmp_path, no_pickles):
    elsewhere = tmp_path / "elsewhere"
    _save_component(elsewhere, "unet", seed=1)
    link = tmp_path / "weights" / WEIGHT_FILES["unet"]
    link.parent.mkdir(parents=True)
    link.symlink_to(elsewhere / WEIGHT_FILES["unet"])
    with pytest.raises(BadInput, match="outside the weights folder .* refusing to load it"):
        load_safetensors(str(tmp_path / "weights"), "unet", "cpu")


def _shard(state: dict[str, torch.Tensor], folder: Path, stem: str) -> None:
    """Write `state` as two shards and the index diffusers writes beside them."""
    import json

    keys = sorted(state)
    halves = {f"{stem}-00001-of-00002.safetensors": keys[: len(keys) // 2],
              f"{stem}-00002-of-00002.safetensors": keys[len(keys) // 2 :]}  # fmt: skip
    for name, part in halves.items():
        save_file({k: state[k] for k in part}, str(folder / name))
    weight_map = {key: name for name, part in halves.items() for key in part}
    (folder / f"{stem}.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def test_sharded_and_fp16_variant_weights_load(tmp_path, no_pickles):
    saved = _save_component(tmp_path / "single", "unet", seed=3)
    sharded = tmp_path / "sharded" / "unet"
    sharded.mkdir(parents=True)
    _shard(saved, sharded, "diffusion_pytorch_model")
    variant = tmp_path / "variant" / "unet"
    variant.mkdir(parents=True)
    save_file(saved, str(variant / "diffusion_pytorch_model.fp16.safetensors"))
    for folder in ("sharded", "variant"):
        loaded = load_safetensors(str(tmp_path / folder), "unet", "cpu")
        assert loaded.keys() == saved.keys()
        assert all(torch.equal(loaded[k], saved[k]) for k in saved), folder


def test_a_hugging_face_cache_snapshot_may_link_into_its_own_blobs_only(tmp_path, no_pickles):
    repo = tmp_path / "hub" / "models--org--model"
    saved = _save_component(tmp_path / "download", "unet", seed=4)
    (repo / "blobs").mkdir(parents=True)
    blob = repo / "blobs" / "5f1e2d"
    (tmp_path / "download" / WEIGHT_FILES["unet"]).rename(blob)
    snapshot = repo / "snapshots" / "abc123"
    link = snapshot / WEIGHT_FILES["unet"]
    link.parent.mkdir(parents=True)
    link.symlink_to(Path("../../../blobs/5f1e2d"))
    loaded = load_safetensors(str(snapshot), "unet", "cpu")
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    link.unlink()
    _save_component(tmp_path / "elsewhere", "unet", seed=1)
    link.symlink_to(tmp_path / "elsewhere" / WEIGHT_FILES["unet"])
    with pytest.raises(BadInput, match="outside the weights folder"):
        load_safetensors(str(snapshot), "unet", "cpu")


def test_a_shard_index_that_leaves_the_folder_or_is_malformed_is_refused(tmp_path, no_pickles):
    folder = tmp_path / "weights" / "unet"
    folder.mkdir(parents=True)
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    index.write_text('{"weight_map": {"a": "../../../secret.safetensors"}}')
    with pytest.raises(BadInput, match="outside the weights folder"):
        load_safetensors(str(tmp_path / "weights"), "unet", "cpu")
    index.write_text('{"weight_map": {"a": "model.bin"}}')
    with pytest.raises(BadInput, match="safetensors only"):
        load_safetensors(str(tmp_path / "weights"), "unet", "cpu")
    index.write_text("not json")
    with pytest.raises(BadInput, match="is not a safetensors shard index"):
        load_safetensors(str(tmp_path / "weights"), "unet", "cpu")


def test_a_pickled_checkpoint_is_never_loaded(tmp_path, no_pickles):
    folder = tmp_path / "weights"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04 a pickle")
    with pytest.raises(BadInput, match="with .safetensors weights only"):
        materialise(TINY, "unet", "cpu", "fp32", weights=str(folder))


def test_no_code_in_sdbench_unpickles():
    package = Path(__file__).resolve().parent.parent / "sdbench"
    pattern = re.compile(r"\btorch\.load\(|\bpickle\.loads?\(|weights_only\s*=\s*False")
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_a_suite_with_a_weights_folder_runs_on_those_weights(tiny_suite, tmp_path):
    folder = tmp_path / "weights"
    _save_component(folder, "text_encoder", seed=3)
    suite = tiny_suite(options={"weights": "weights"})  # relative to the suite file
    outcome = run_suite(str(suite), tmp_path / "out", console=Console(quiet=True))
    (row,) = pq.read_table(outcome.path).to_pylist()
    assert row["status"] == "ok", row["error"]
    assert row["weights"] == str(folder.resolve())
