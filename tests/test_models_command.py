"""`sdbench models`: every registered model with parameter counts from the built models."""

from __future__ import annotations

import json

import pytest

from sdbench.cli import main
from sdbench.models.registry import MODELS


@pytest.fixture(scope="module")
def listing() -> list[dict]:
    from sdbench.commands.models import model_rows

    return model_rows()


def test_lists_every_registered_model_with_counts_near_the_published_ones(listing):
    assert [row["name"] for row in listing] == list(MODELS)
    for row in listing:
        for component, count in row["params"].items():
            published = MODELS[row["name"]].components[component].published_params
            if published:
                assert abs(count - published) / published < 0.01, (row["name"], component)


def test_rows_say_family_usual_steps_and_denoiser(listing):
    rows = {row["name"]: row for row in listing}
    assert rows["sd35-large"]["denoiser"] == "transformer"
    assert set(rows["sd35-large"]["params"]) == {
        "transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"
    }  # fmt: skip
    assert (rows["sdxl-turbo"]["steps"], rows["sdxl-turbo"]["cfg"]) == (1, False)
    assert rows["bk-sdm-small"]["taesd"] == "TAESD" and rows["vega"]["taesd"] == "TAESDXL"
    assert rows["bk-sdm-small"]["taesd_params"] == pytest.approx(2.45e6, rel=0.01)


def test_models_json_and_table_output(capsys, monkeypatch, listing):
    monkeypatch.setattr("sdbench.commands.models.model_rows", lambda: listing)
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["name"] == "sd15" and data[0]["params"]["unet"] == 859_520_964
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "bk-sdm-tiny" in table and "323.4M" in table and "2,469.7M" in table


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "sdbench"


@pytest.fixture
def counted(listing, monkeypatch) -> list[int]:
    """Stands in for building every model (~15 s); the list grows by one per count."""
    from sdbench.commands import models

    counts: list[int] = []
    monkeypatch.setattr(models, "_counted_rows", lambda: counts.append(1) or listing)
    return counts


def test_the_listing_is_counted_once_then_read_from_the_user_cache(listing, private_cache, counted):
    from sdbench.commands.models import model_rows

    assert model_rows() == listing
    assert model_rows() == listing
    assert counted == [1]
    assert len(list(private_cache.glob("models-*.json"))) == 1


def test_a_damaged_cache_or_another_sdbench_counts_again(
    listing, private_cache, counted, monkeypatch
):
    from sdbench import usercache
    from sdbench.commands.models import model_rows

    model_rows()
    (entry,) = private_cache.glob("models-*.json")
    entry.write_text('{"key": "not this one"')
    assert model_rows() == listing and counted == [1, 1]
    monkeypatch.setattr(usercache, "package_digest", lambda: "f" * 64)  # an edited sdbench
    assert model_rows() == listing and counted == [1, 1, 1]
