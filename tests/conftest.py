"""Test helpers: tiny suites, the CLI in a subprocess or in-process, finding our processes."""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Set before torch loads here or in any worker the tests start (they inherit it): OpenMP threads
# that spin at every barrier made tiny-model calls many times slower whenever another process
# shared the 2 CPUs (a worker beside pytest, a second xdist worker, a neighbour's job); sleeping
# threads do not. gpu-check's CPU dry run sets the same for the same reason.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_collection_finish(session) -> None:
    """Leave the ~570,000 objects that importing the tests built out of every later collection.

    The measuring code collects garbage before each cell (runner/memory.release); in this
    process each full collection walked all of them (0.7 s of CPU under load) for every cell a
    test measures in-process. The workers freeze theirs the same way (memory.freeze_start_up_objects).
    """
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(items) -> None:
    """`make test` runs the serial tests from the files that say `mark.serial` only: a test made
    serial any other way (a marker from a helper, a conftest) would never run there."""
    for item in items:
        if item.get_closest_marker("serial") and "mark.serial" not in item.path.read_text():
            raise pytest.UsageError(f"{item.nodeid} is serial but its file never says mark.serial")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tests probe devices into their own cache, never the user's ~/.cache/sdbench."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _nested_pytest_runs_are_not_xdist_workers(request, monkeypatch):
    """A pytester run is a session of its own: pytest-benchmark would see this process's
    PYTEST_XDIST_WORKER (make test runs files in xdist workers) and turn itself off."""
    if "pytester" in request.fixturenames:
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)


@pytest.fixture(scope="session")
def reference_cross_validation():
    """analysis.validate.cross_validate() of the shipped data (read-only: ~7 s of fits, shared)."""
    from sdbench.analysis.validate import cross_validate

    return cross_validate()


# The cheapest settings that still measure: one timed call, no warm-up.
FAST_MEASURE = {
    "warmup": 0,
    "min_repeats": 1,
    "max_repeats": 2,
    "max_time_s": 0.05,
    "cell_timeout_s": 300,
}
TINY_MATRIX = {
    "model": ["tiny"],
    "stage": ["text_encoder"],
    "device": ["cpu"],
    "resolution": [64],
    "batch_size": [1],
    "precision": ["fp32"],
    "attention": ["sdpa"],
}


def toml_value(value: object) -> str:
    """A Python value as TOML (str, int, float, bool and lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def suite_text(
    matrix: dict | None = None,
    options: dict | None = None,
    measure: dict | None = None,
    name: str = "test",
    excludes: list[dict] | None = None,
) -> str:
    """Suite TOML: the tiny matrix and fast measure settings, with `matrix`/`measure` overrides."""
    sections = {
        "suite": {"name": name},
        "matrix": {**TINY_MATRIX, **(matrix or {})},
        "options": options or {},
        "measure": {**FAST_MEASURE, **(measure or {})},
    }
    lines = []
    for section, table in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    for rule in excludes or []:
        lines.append("[[exclude]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in rule.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Callable[..., Path]:
    """tiny_suite(matrix=..., options=..., measure=..., filename=...) writes a suite file."""

    def write(filename: str = "suite.toml", **overrides) -> Path:
        path = tmp_path / filename
        path.write_text(suite_text(**overrides), encoding="utf-8")
        return path

    return write


def run_suite_text(folder: Path, name: str, text: str):
    """Write `text` as folder/NAME.toml, run it into folder/NAME: (its RunOutcome, its rows)."""
    from sdbench.runner.run import run_suite
    from sdbench.store import read_results

    suite = folder / f"{name}.toml"
    suite.write_text(text, encoding="utf-8")
    outcome = run_suite(str(suite), folder / name)
    return outcome, read_results([outcome.path])


def run_cli_process(
    *args: str, env: dict | None = None, timeout_s: float = 600
) -> tuple[int, str, str]:
    """`python -m sdbench ARGS` in a subprocess: (exit code, stdout, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "sdbench", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=timeout_s,
    )
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def run_cli() -> Callable[..., tuple[int, str, str]]:
    return run_cli_process


@pytest.fixture
def run_cli_in_process(capsys, monkeypatch) -> Callable[..., tuple[int, str, str]]:
    """run_cli_in_process(*ARGS, env=...): `sdbench ARGS` through cli.main in this process.

    (exit code, stdout, stderr) as run_cli gives them, without a new interpreter importing
    pandas and scipy (seconds) for each call; `env` holds for that call only.
    """
    from sdbench.cli import main

    def run(*args: object, env: dict | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        with monkeypatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            try:
                code = main([str(arg) for arg in args])
            except SystemExit as exit_:  # argparse's usage errors
                code = exit_.code
        stdout, stderr = capsys.readouterr()
        return code, stdout, stderr

    return run


def _processes_with_env(name: str, value: str) -> list[int]:
    """Pids of live (not zombie) processes whose environment has NAME=VALUE (Linux /proc)."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def processes_with_env() -> Callable[[str, str], list[int]]:
    """processes_with_env(NAME, VALUE): pids of live processes whose environment has NAME=VALUE."""
    return _processes_with_env
