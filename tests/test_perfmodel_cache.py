"""The reference calibration kept on disk: read back bit for bit, refitted whenever it is not valid."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sdbench
from sdbench.analysis import perfmodel
from sdbench.usercache import tree_digest

# Prints the reference calibration exactly (float.hex) and whether the fit's libraries were loaded.
REFERENCE = """
import json, sys
from sdbench.analysis.perfmodel import reference_calibration
calibration = reference_calibration()
print(json.dumps({
    "params": {name: float(value).hex() for name, value in calibration.params.items()},
    "families": sorted(calibration.families),
    "fit_imported": sorted({"scipy.optimize", "threadpoolctl"} & sys.modules.keys()),
}))
"""


def _reference_in_a_new_process() -> dict:
    done = subprocess.run(
        [sys.executable, "-c", REFERENCE], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder, and a count of the fits made from here on."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fits = []
    fit = perfmodel.calibrate

    def counted(observations):
        fits.append(len(observations))
        return fit(observations)

    monkeypatch.setattr(perfmodel, "calibrate", counted)
    return tmp_path / "sdbench", fits


def _uncached_in_process():
    return perfmodel.reference_calibration.__wrapped__()


def _exactly(calibration) -> tuple:
    params = [(name, type(value), float(value).hex()) for name, value in calibration.params.items()]
    return params, calibration.families, calibration.regimes


def test_a_second_process_reads_the_fit_bit_for_bit_without_importing_scipy_optimize(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = _reference_in_a_new_process()
    assert first["fit_imported"] == ["scipy.optimize", "threadpoolctl"]
    assert len(list((tmp_path / "sdbench").glob("calibration-*.json"))) == 1
    second = _reference_in_a_new_process()
    assert second["fit_imported"] == []
    fitted = perfmodel.calibrate(list(perfmodel.reference_observations()))
    assert second["params"] == {name: float(v).hex() for name, v in fitted.params.items()}
    assert second["params"] == first["params"]
    assert second["families"] == sorted(fitted.families)


def test_the_cached_calibration_equals_the_fit_in_values_types_and_families(cache):
    folder, fits = cache
    fitted = _uncached_in_process()
    cached = _uncached_in_process()
    assert fits == [len(perfmodel.reference_observations())]
    assert _exactly(cached) == _exactly(fitted)
    assert all(type(v) is np.float64 for v in cached.params.values())
    assert {"ada", "ampere"} <= cached.families


def test_a_changed_package_or_library_version_refits(cache, monkeypatch):
    folder, fits = cache
    _uncached_in_process()
    monkeypatch.setattr(perfmodel, "package_digest", lambda: "f" * 64)
    _uncached_in_process()
    _uncached_in_process()
    assert len(fits) == 2  # the new key's fit is then cached in its own file
    monkeypatch.setattr(np, "__version__", "0.0.1")
    _uncached_in_process()
    assert len(fits) == 3
    assert len(list(folder.glob("calibration-*.json"))) == 2  # same digest: the file is replaced


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: "\x00not json",
        lambda text: text[: len(text) // 2],
        lambda text: "{}",
        lambda text: text.replace('"families": [', '"families": [1, '),
        lambda text: json.dumps({**json.loads(text), "params": {"compute": "0.1"}}),
        lambda text: json.dumps({**json.loads(text), "params": {"compute": 0.1}}),
    ],
    ids=[
        "garbage",
        "truncated",
        "empty",
        "family-not-a-string",
        "param-a-string",
        "params-missing",
    ],
)
def test_a_damaged_cache_file_is_refitted_and_rewritten(cache, damage):
    folder, fits = cache
    fitted = _uncached_in_process()
    (path,) = folder.glob("calibration-*.json")
    path.write_text(damage(path.read_text()))
    refitted = _uncached_in_process()
    assert len(fits) == 2
    assert _exactly(refitted) == _exactly(fitted)
    assert _exactly(_uncached_in_process()) == _exactly(fitted)  # rewritten whole
    assert len(fits) == 2


def test_an_unwritable_cache_still_gives_the_fit(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("the cache folder cannot be made under a file")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert "compute" in _uncached_in_process().params


def test_the_package_digest_follows_every_file_but_not_bytecode(tmp_path):
    package = Path(sdbench.__file__).parent
    copy = tmp_path / "sdbench"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    original = tree_digest(copy)
    (copy / "analysis" / "__pycache__").mkdir(exist_ok=True)
    (copy / "analysis" / "__pycache__" / "perfmodel.cpython-312.pyc").write_bytes(b"bytecode")
    assert tree_digest(copy) == original
    with (copy / "data" / "reference_results.csv").open("a") as handle:
        handle.write("\n")
    assert tree_digest(copy) != original


def test_a_package_that_is_not_a_folder_of_files_gives_no_digest(tmp_path):
    with pytest.raises(OSError):
        tree_digest(tmp_path / "sdbench.zip")
