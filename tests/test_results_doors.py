"""Results-side doors: ingest checks every field, reports write atomically, readers skip strangers."""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdbench.cli import main
from sdbench.errors import BadInput
from sdbench.ingest import ingest
from sdbench.store import read_results, write_run

CELL = {
    "model": "tiny",
    "stage": "unet",
    "device": "cpu",
    "height": 64,
    "width": 64,
    "batch_size": 1,
    "precision": "fp32",
    "attention": "sdpa",
    "compile": "none",
}


def benchmark(name: str, seconds: list[float], extra: dict | None = None) -> dict:
    return {
        "name": name,
        "fullname": f"tests/t.py::{name}",
        "stats": {"data": seconds, "rounds": len(seconds), "median": sorted(seconds)[0]},
        "options": {"warmup": False},
        "extra_info": extra or {},
    }


def document(*benchmarks: dict, when: str = "2026-12-01T10:00:00") -> dict:
    """A pytest-benchmark JSON document as `pytest --benchmark-json` writes it (fields used)."""
    return {
        "datetime": when,
        "machine_info": {"node": "ci-1", "python_version": "3.11.7", "cpu": {"brand_raw": "EPYC"}},
        "commit_info": {"id": "abc123", "dirty": False},
        "benchmarks": list(benchmarks)
        or [
            benchmark("test_a", [0.001, 0.0012, 0.0011]),
            benchmark("test_cell", [0.002, 0.0021], {**CELL, "warmup": 1}),
        ],
    }


def write_json(path: Path, data: object) -> Path:
    path.write_text(
        json.dumps(data), encoding="utf-8"
    )  # allow_nan: NaN/Infinity as Python writes them
    return path


def parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet")) if folder.exists() else []


def test_plain_pytest_benchmarks_ingest_then_report_without_error(tmp_path, capsys):
    source = write_json(tmp_path / "plain.json", document(benchmark("test_a", [0.001, 0.002])))
    assert main(["ingest", str(source), "--out", str(tmp_path / "results")]) == 0
    assert main(["report", str(tmp_path / "results"), "--out", str(tmp_path / "site")]) == 0
    html = (tmp_path / "site" / "index.html").read_text()
    assert "pytest-benchmark" in html and not list((tmp_path / "site").glob(".*"))


def test_a_report_inside_its_input_folder_is_never_read_back_as_a_run(tmp_path, capsys):
    source = write_json(tmp_path / "b.json", document())
    results = tmp_path / "results"
    main(["ingest", str(source), "--out", str(results)])
    for _ in range(3):
        assert main(["report", str(results), "--out", str(results / "site")]) == 0
    assert len(read_results([results])) == 2
    assert "a report's copy" in capsys.readouterr().err


def test_a_parquet_file_of_another_tool_is_skipped_with_a_warning(tmp_path, capsys):
    main(["ingest", str(write_json(tmp_path / "b.json", document())), "--out", str(tmp_path)])
    pq.write_table(pa.table({"height": [64.0], "latency": [1.0]}), tmp_path / "other.parquet")
    frame = read_results([tmp_path])
    assert len(frame) == 2 and frame["cell_id"].notna().all()
    assert 'skipped "' in capsys.readouterr().err
    assert main(["best", str(tmp_path)]) == 0
    assert "64.0x64.0" not in capsys.readouterr().out


BAD_FIELDS = [
    ("stats.data", lambda d: d["benchmarks"][0]["stats"].update(data=["a"]), "stats.data"),
    ("height text", lambda d: d["benchmarks"][1]["extra_info"].update(height="64"), "height"),
    ("machine_info list", lambda d: d.update(machine_info=[]), "machine_info"),
    ("warmup 1e300", lambda d: d["benchmarks"][1]["extra_info"].update(warmup=1e300), "warmup"),
    ("unknown model", lambda d: d["benchmarks"][1]["extra_info"].update(model="sd99"), "model"),
    ("height -1", lambda d: d["benchmarks"][1]["extra_info"].update(height=-1), "height"),
    ("negative sample", lambda d: d["benchmarks"][0]["stats"].update(data=[-1.0]), "stats.data"),
    ("inf sample", lambda d: d["benchmarks"][0]["stats"].update(data=[math.inf]), "stats.data"),
    ("nan sample", lambda d: d["benchmarks"][0]["stats"].update(data=[math.nan]), "stats.data"),
    (
        "unknown status",
        lambda d: d.update(sdbench={"not_ok": [{"cell": CELL, "status": "great"}]}),
        "status",
    ),
    (
        "rss text",
        lambda d: d["benchmarks"][0]["extra_info"].update(peak_rss_bytes="1G"),
        "peak_rss",
    ),
    ("commit list", lambda d: d.update(commit_info=["x"]), "commit_info"),
    ("name number", lambda d: d["benchmarks"][0].update(fullname=7, name=7), "fullname"),
]


@pytest.mark.parametrize(("case", "damage", "field"), BAD_FIELDS, ids=[c[0] for c in BAD_FIELDS])
def test_ingest_of_a_bad_field_exits_2_naming_file_and_field_and_writes_nothing(
    tmp_path, capsys, case, damage, field
):
    data = document()
    damage(data)
    source = write_json(tmp_path / "bench.json", data)
    assert main(["ingest", str(source), "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert str(source) in err and field in err and "Traceback" not in err
    assert parquet_files(tmp_path / "results") == []


def test_ingest_checks_every_file_before_writing_any(tmp_path, capsys):
    good = write_json(tmp_path / "good.json", document())
    bad = write_json(tmp_path / "bad.json", document(benchmark("test_x", ["slow"])))
    assert main(["ingest", str(good), str(bad), "--out", str(tmp_path / "results")]) == 2
    assert parquet_files(tmp_path / "results") == []


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), value=JSON)
def test_any_damaged_ingest_file_is_refused_or_stored_whole(tmp_path_factory, data, value):
    folder = tmp_path_factory.mktemp("ingest")
    doc = document()
    doc["sdbench"] = {"suite": "s", "not_ok": [{"cell": CELL, "status": "oom", "error": "x"}]}
    doc = copy.deepcopy(doc)
    path = data.draw(st.sampled_from(_paths(doc)))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    source = write_json(folder / "bench.json", doc)
    try:
        written, rows = ingest(source, folder / "results")
    except BadInput as error:
        assert str(source) in str(error) or "datetime" in str(error) or "benchmarks" in str(error)
        assert parquet_files(folder / "results") == []
        return
    frame = read_results([written])
    assert len(frame) == len(rows) and set(frame["status"]) <= {"ok", "oom"}
    samples = frame["samples_ms"].dropna()
    assert all(math.isfinite(s) and s >= 0 for run in samples for s in run)


@pytest.mark.parametrize("verb", ["ingest", "report", "report-markdown"])
def test_an_out_that_is_a_file_exits_2_and_leaves_no_temporary(tmp_path, capsys, verb):
    source = write_json(tmp_path / "b.json", document())
    main(["ingest", str(source), "--out", str(tmp_path / "results")])
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    out = str(blocker / "site")
    args = {
        "ingest": ["ingest", str(source), "--out", out],
        "report": ["report", str(tmp_path / "results"), "--out", out],
        "report-markdown": [
            "report",
            str(tmp_path / "results"),
            "--format",
            "markdown",
            "--out",
            out,
        ],
    }[verb]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Cannot write" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "blocker", "results"]


def test_a_full_disk_during_a_report_leaves_the_old_site_and_no_temporary(
    tmp_path, monkeypatch, capsys
):
    source = write_json(tmp_path / "b.json", document())
    main(["ingest", str(source), "--out", str(tmp_path / "results")])
    site = tmp_path / "site"
    assert main(["report", str(tmp_path / "results"), "--out", str(site)]) == 0
    before = {p.name: p.read_bytes() for p in site.iterdir()}
    real_write = os.write
    calls = {"n": 0}

    def disk_fills(fd, data):
        calls["n"] += 1
        if calls["n"] > 1:  # the first file lands, the second finds the disk full
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", disk_fills)
    assert main(["report", str(tmp_path / "results"), "--out", str(site)]) == 2
    monkeypatch.undo()
    assert "No space left" in capsys.readouterr().err
    assert sorted(p.name for p in site.iterdir()) == sorted(before)  # no .tmp left
    assert (site / "index.html").read_bytes() == before["index.html"]


def test_compare_of_two_runs_with_no_cell_in_common_exits_2(tmp_path, capsys):
    first = write_json(tmp_path / "a.json", document(benchmark("test_a", [0.001, 0.002])))
    second = write_json(tmp_path / "b.json", document(benchmark("test_b", [0.001, 0.002])))
    main(["ingest", str(first), "--out", str(tmp_path / "base")])
    main(["ingest", str(second), "--out", str(tmp_path / "cur")])
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "cur")]) == 2
    assert "No cells in common" in capsys.readouterr().err


def test_write_run_refuses_nothing_it_is_given_and_reads_back_whole(tmp_path):
    rows = [{"run_id": "r", "cell_id": "c", "status": "ok", "started_at": "2026-12-01T00:00:00Z"}]
    frame = read_results([write_run(rows, tmp_path / "r.parquet")])
    assert frame.loc[0, "started_at"] == pd.Timestamp("2026-12-01", tz="UTC")
