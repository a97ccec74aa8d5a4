"""sdbench ingest: any pytest-benchmark JSON becomes results Parquet that compare and history read."""

from __future__ import annotations

import json

import pytest

from sdbench.analysis.compare import compare_runs
from sdbench.cli import main
from sdbench.ingest import ingest
from sdbench.store import read_results

pytest_plugins = ("pytester",)

PLAIN_BENCHMARKS = """
import time

def test_sleepy(benchmark):
    benchmark.pedantic(time.sleep, args=(0.002,), rounds=7, warmup_rounds=1, iterations=1)

def test_sum(benchmark):
    benchmark.extra_info["peak_rss_bytes"] = 1234
    benchmark(sum, range(1000))
"""


@pytest.fixture
def plain_json(pytester):
    """A real pytest-benchmark JSON file from two plain (non-sdbench) benchmarks."""
    pytester.makepyfile(test_plain=PLAIN_BENCHMARKS)
    result = pytester.runpytest(
        "-p", "no:sdbench", "--benchmark-json", "plain.json", "--benchmark-max-time=0.05"
    )
    result.assert_outcomes(passed=2)
    return pytester.path / "plain.json"


def test_plain_benchmarks_round_trip_into_parquet(plain_json, tmp_path):
    data = json.loads(plain_json.read_text())
    path, rows = ingest(plain_json, tmp_path)
    frame = read_results([path]).set_index("benchmark_name")
    sleepy = frame.loc["test_plain.py::test_sleepy"]
    source = next(b for b in data["benchmarks"] if b["name"] == "test_sleepy")
    assert sleepy["status"] == "ok" and sleepy["n_samples"] == 7 == source["stats"]["rounds"]
    assert list(sleepy["samples_ms"]) == pytest.approx([s * 1000 for s in source["stats"]["data"]])
    assert sleepy["median_ms"] == pytest.approx(source["stats"]["median"] * 1000)
    assert sleepy["median_ms"] >= 2.0  # it sleeps 2 ms per call
    assert sleepy["python"] == data["machine_info"]["python_version"]
    assert sleepy["started_at"] == __import__("pandas").Timestamp(data["datetime"])
    assert frame.loc["test_plain.py::test_sum", "peak_rss_bytes"] == 1234
    assert frame["cell_id"].nunique() == 2 and frame["model"].isna().all()


def test_reingesting_the_same_file_rewrites_the_same_run(plain_json, tmp_path):
    first, _ = ingest(plain_json, tmp_path)
    second, _ = ingest(plain_json, tmp_path)
    assert first == second and len(list(tmp_path.glob("*.parquet"))) == 1


def test_two_sessions_compare_by_test_name(plain_json, tmp_path, capsys):
    base_path, _ = ingest(plain_json, tmp_path / "base")
    data = json.loads(plain_json.read_text())
    for bench in data["benchmarks"]:  # the same tests, twice as slow
        bench["stats"]["data"] = [s * 2 for s in bench["stats"]["data"]]
    data["datetime"] = "2030-01-01T00:00:00+00:00"
    slower = tmp_path / "slower.json"
    slower.write_text(json.dumps(data))
    assert main(["ingest", str(slower), "--out", str(tmp_path / "cur")]) == 0
    result = compare_runs(read_results([base_path]), read_results([tmp_path / "cur"]))
    latency = result.table[result.table.metric == "median_ms"].set_index("label")
    assert latency.loc["test_plain.py::test_sum", "verdict"] == "slower"  # thousands of rounds
    assert latency.loc["test_plain.py::test_sum", "ratio"] == pytest.approx(2.0)
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "cur")]) == 1


def test_files_that_are_not_pytest_benchmark_json_exit_2(tmp_path, capsys):
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text("{")
    assert main(["ingest", str(tmp_path / "other.json"), "--out", str(tmp_path)]) == 2
    assert 'no "benchmarks" list' in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "broken.json"), "--out", str(tmp_path)]) == 2
    assert "not readable JSON" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "absent.json"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_ingested_rows_carry_their_machine_and_another_node_is_another_machine(
    plain_json, tmp_path, capsys
):
    data = json.loads(plain_json.read_text())
    here, rows = ingest(plain_json, tmp_path / "here")
    frame = read_results([here])
    host = data["machine_info"]["node"]
    assert {row["machine_id"] for row in rows} == set(frame["machine_id"]) and len(rows) == 2
    assert frame["machine"].iloc[0] == f"unknown-device·{host.split('.')[0]}"
    data["machine_info"]["node"] = "another-node"
    (tmp_path / "other.json").write_text(json.dumps(data))
    there, _ = ingest(tmp_path / "other.json", tmp_path / "there")
    assert main(["compare", str(here), str(there)]) == 2
    assert f"host {host} vs another-node" in capsys.readouterr().err
