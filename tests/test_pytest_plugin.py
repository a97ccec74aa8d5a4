"""The pytest plugin: inert by default; with --sdbench-suite the tiny suite runs through pytest-benchmark,
and `sdbench ingest` turns its JSON into Parquet that `compare` accepts."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil

import pytest

from sdbench.analysis.compare import compare_runs
from sdbench.cell import Cell, Measure
from sdbench.cli import main
from sdbench.pytest_plugin import cell_test_id, planned_rounds
from sdbench.store import read_results
from sdbench.suite import expand, load_suite
from sdbench.suite.packaged import packaged_suites

pytest_plugins = ("pytester",)

TINY = packaged_suites()["tiny"]
# Two cells of the tiny suite keep this fast on a 2-core machine; -k filters the suite's own tests.
TWO_CELLS = "unet and bs1 and fp32"


@pytest.fixture(scope="module")
def torch_imported():
    """Import the measuring stack before pytester snapshots sys.modules (module scope runs first):
    pytester drops modules imported after its snapshot, and torch cannot be imported twice."""
    import sdbench.devices.detect  # noqa: F401
    import sdbench.runner.measure  # noqa: F401


def plugin_args() -> list[str]:
    """Load the plugin explicitly only where the installed entry point does not already load it."""
    installed = any(
        ep.name == "sdbench" for ep in importlib.metadata.entry_points(group="pytest11")
    )
    return [] if installed else ["-p", "sdbench.pytest_plugin"]


def test_plugin_does_nothing_without_the_option(pytester):
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest(
        *plugin_args(), "-p", "no:benchmark"
    )  # no pytest-benchmark: still fine
    result.assert_outcomes(passed=1)
    assert "test_cell" not in result.stdout.str()


def test_option_without_pytest_benchmark_is_a_usage_error(pytester):
    shutil.copy(TINY, pytester.path / "tiny.toml")
    result = pytester.runpytest(
        *plugin_args(), "-p", "no:benchmark", "--sdbench-suite", "tiny.toml"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sdbench-suite needs the pytest-benchmark plugin*"])


def test_a_bad_suite_is_a_usage_error_naming_the_key(pytester):
    (pytester.path / "bad.toml").write_text('[matrix]\nmodel = ["tiny"]\nstag = ["unet"]\n')
    result = pytester.runpytest(*plugin_args(), "--sdbench-suite", "bad.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert '[matrix.stag] unknown axis. Did you mean "stage"?' in result.stderr.str()


def test_collection_gives_one_test_per_cell_with_readable_ids(pytester, torch_imported):
    shutil.copy(TINY, pytester.path / "tiny.toml")
    result = pytester.runpytest(
        *plugin_args(), "--sdbench-suite", "tiny.toml", "--collect-only", "-q"
    )
    cells = expand(load_suite(TINY), ["cpu"])
    lines = [line for line in result.stdout.lines if "::test_cell[" in line]
    assert len(lines) == len(cells) == 32
    assert "tiny.toml::test_cell[tiny-unet-64x64-bs1-fp32-sdpa-none-cpu]" in lines


def test_test_ids_are_unique_over_the_tiny_suite():
    cells = expand(load_suite(TINY), ["cpu"])
    assert len({cell_test_id(c) for c in cells}) == len(cells)


def test_planned_rounds_fit_max_time_within_the_repeat_bounds():
    measure = Measure(warmup=2, min_repeats=5, max_repeats=30, max_time_s=1.0)
    assert planned_rounds(measure, [500.0, 100.0]) == 10  # 1 s at 100 ms per call
    assert planned_rounds(measure, [1.0]) == 30
    assert planned_rounds(measure, [5000.0]) == 5
    assert planned_rounds(measure, []) == 5


def test_tiny_suite_runs_through_pytest_benchmark_and_ingests_into_parquet(
    pytester, tmp_path, capsys, torch_imported, monkeypatch
):
    shutil.copy(TINY, pytester.path / "tiny.toml")
    monkeypatch.setenv("SDBENCH_INJECT", json.dumps({"tiny unet 64x64 bs1 fp32 math": "oom"}))
    result = pytester.runpytest(
        *plugin_args(),
        "--sdbench-suite",
        "tiny.toml",
        "-k",
        TWO_CELLS,
        "--benchmark-json",
        "out.json",
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*test_cell*tiny-unet-64x64-bs1-fp32-sdpa-none-cpu*"])
    data = json.loads((pytester.path / "out.json").read_text())

    (bench,) = data["benchmarks"]
    cell = Cell("tiny", "unet", "cpu", 64, 64, 1, "fp32", "sdpa", "none", steps=2)
    measure = load_suite(TINY).measure
    assert bench["extra_info"]["cell_id"] == cell.cell_id
    assert measure.min_repeats <= bench["stats"]["rounds"] <= measure.max_repeats
    assert bench["extra_info"]["samples_ms"] == pytest.approx(
        [s * 1000 for s in bench["stats"]["data"]]
    )
    assert len(bench["extra_info"]["warmup_ms"]) == measure.warmup
    assert bench["extra_info"]["flops"] > 0 and bench["extra_info"]["peak_rss_bytes"] > 0
    assert bench["extra_info"]["ref_rel_err"] < 1e-3  # fp32 against its own fp32 reference
    assert data["machine_info"]["sdbench"]["devices"]["cpu"]["torch"].startswith("2.")
    (oom,) = data["sdbench"]["not_ok"]
    assert oom["status"] == "oom" and "out of memory" in oom["error"]

    out = tmp_path / "results"
    assert main(["ingest", str(pytester.path / "out.json"), "--out", str(out)]) == 0
    assert re.search(r"\(2 cells on \S+: 1 ok, 1 oom\)", capsys.readouterr().out)
    frame = read_results([out]).set_index("status")
    ok = frame.loc["ok"]
    assert (
        ok["cell_id"] == cell.cell_id
        and ok["model"] == "tiny"
        and ok["n_samples"] == bench["stats"]["rounds"]
    )
    assert list(ok["samples_ms"]) == pytest.approx(bench["extra_info"]["samples_ms"])
    assert ok["median_ms"] == pytest.approx(bench["stats"]["median"] * 1000)
    assert ok["device_name"] and ok["torch"] and ok["python"]
    assert ok["allocator"] == "tuned"  # the suite's default, applied in the pytest process
    assert frame.loc["oom", "cell_id"] == Cell.from_dict(oom["cell"]).cell_id

    # compare accepts it: against itself nothing changed; against an all-ok baseline the OOM regresses.
    assert main(["compare", str(out), str(out)]) == 0
    both = read_results([out])
    baseline = both.assign(status="ok", error=None)
    regressions = compare_runs(baseline, both).regressions
    assert regressions["metric"].tolist() == ["status"]
    assert regressions["current_status"].tolist() == ["oom"]
