"""Results from several machines stay apart: machine identity, series keys, per-machine analysis.

The experiment from issue 15: one run copied as a second file whose rows say another host and
another device, slower; both in one folder. Every analysis must keep both machines.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from report_fixtures import START, synthetic_rows

from sdbench.analysis.fleet import Fleet
from sdbench.cli import main
from sdbench.machine import latest_per_series, machine_id, machine_label, with_machine_columns
from sdbench.store import read_results, write_run

OTHER_HOST, OTHER_DEVICE = "other-box", "Some Other CPU"


def copy_as_other_machine(source: Path, target: Path, run_id: str, slower: float) -> Path:
    """What a user does by hand: same rows, another host and device name, slower medians."""
    table = pq.read_table(source)
    rows = table.num_rows
    samples = table["samples_ms"].combine_chunks()
    replace = {
        "samples_ms": pa.ListArray.from_arrays(
            samples.offsets, pa.compute.multiply(samples.values, slower), mask=samples.is_null()
        ),
        "ci95_low_ms": pa.compute.multiply(table["ci95_low_ms"], slower),
        "ci95_high_ms": pa.compute.multiply(table["ci95_high_ms"], slower),
        "host": pa.array([OTHER_HOST] * rows),
        "device_name": pa.array([OTHER_DEVICE] * rows),
        "run_id": pa.array([run_id] * rows),
        "median_ms": pa.compute.multiply(table["median_ms"], slower),
        "it_per_s": pa.compute.divide(table["it_per_s"], slower),
    }
    for name, values in replace.items():
        table = table.set_column(table.schema.get_field_index(name), name, values)
    pq.write_table(table, target)
    return target


def write_cpu_run(folder: Path, run_id: str, started_at=START, scale: float = 1.0) -> Path:
    rows = synthetic_rows(run_id=run_id, started_at=started_at, scale=scale, devices=("cpu",))
    return write_run(rows, folder / f"{run_id}.parquet")


@pytest.fixture
def two_machines(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    first = write_cpu_run(folder, "run-here")
    copy_as_other_machine(first, folder / "run-there.parquet", "run-there", slower=1.5)
    return folder


def test_machine_id_is_stable_and_changes_with_host_device_and_software():
    row = {"device_name": "NVIDIA H100 80GB HBM3", "gpu_count": 8, "host": "node3.example"}
    row |= {"torch": "2.13.0", "cuda": "12.8", "driver": "580.1"}
    assert machine_id(row) == machine_id(dict(row))
    assert len(machine_id(row)) == 12
    assert machine_id(row | {"gpu_count": 8.0}) == machine_id(row)  # as pandas reads it back
    for name, other in [("host", "node4"), ("device_name", "NVIDIA A100"), ("driver", "590")]:
        assert machine_id(row | {name: other}) != machine_id(row)
    assert machine_label(row) == "h100-80gb-hbm3·node3"


def test_every_row_read_back_has_its_machine(two_machines: Path):
    frame = read_results([two_machines])
    assert frame["machine_id"].notna().all()
    assert frame.groupby("run_id")["machine_id"].nunique().tolist() == [1, 1]
    assert set(frame["machine"]) == {"test·testhost", "some-other·other-box"}


def test_a_version_one_file_gets_the_same_machine_id_a_new_run_would_write(tmp_path: Path):
    path = write_cpu_run(tmp_path, "run-new")
    table = pq.read_table(path)
    old = table.drop_columns(["machine_id", "machine"])
    old = old.set_column(0, "schema_version", pa.array([1] * old.num_rows))
    pq.write_table(old, tmp_path / "old.parquet")
    upgraded = read_results([tmp_path / "old.parquet"])
    assert set(upgraded["machine_id"]) == set(table["machine_id"].to_pylist())


def test_latest_per_series_keeps_every_machine(two_machines: Path):
    frame = read_results([two_machines])
    latest = latest_per_series(frame)
    assert len(latest) == len(frame)  # every cell appears once per machine
    assert latest.groupby("cell_id")["machine_id"].nunique().eq(2).all()


def test_best_keeps_both_machines(two_machines: Path, capsys):
    assert main(["best", str(two_machines), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(row["machine_id"] for row in rows)
    machines = {row["machine"] for row in rows}
    assert machines == {"test·testhost", "some-other·other-box"}
    here = {(r["model"], r["stage"], r["height"], r["batch_size"]): r for r in rows}
    assert len(rows) == 2 * len(here)  # each workload answered once per machine


def test_report_matrix_and_per_image_keep_both_machines(two_machines: Path, tmp_path: Path):
    from sdbench.analysis.analysis import analyse
    from sdbench.report.sections import build_page

    page = build_page(analyse(read_results([two_machines])), [], with_plots=False)
    matrix = next(s for s in page.sections if s.anchor == "matrix")
    shown = sum(len(table.rows) for table in matrix.tables)
    assert shown == len(read_results([two_machines]))
    labels = {c.label for table in matrix.tables for c in table.columns}
    assert "machine" in labels


@pytest.fixture
def switched_machine(tmp_path: Path) -> Path:
    """Three daily runs on one machine, then three on another 1.5x slower: the issue's switch."""
    folder = tmp_path / "history"
    for day in range(3):
        write_cpu_run(folder, f"here-{day}", START + timedelta(days=day))
    for day in range(3, 6):
        source = write_cpu_run(tmp_path, f"src-{day}", START + timedelta(days=day))
        copy_as_other_machine(source, folder / f"there-{day}.parquet", f"there-{day}", 1.5)
    return folder


def test_history_keeps_two_series_and_no_step_at_the_machine_switch(switched_machine, capsys):
    folder = switched_machine
    assert main(["history", str(folder), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    from sdbench.analysis.history import cell_series

    series = cell_series(read_results([folder]))
    per_cell = series.groupby("cell_id")["machine_id"].nunique()
    assert per_cell.eq(2).all()


def test_the_report_history_draws_a_line_per_machine_and_no_change_at_the_switch(switched_machine):
    from sdbench.analysis.analysis import analyse
    from sdbench.report.sections import build_page

    page = build_page(analyse(read_results([switched_machine])), [], with_plots=True)
    section = next(s for s in page.sections if s.anchor == "history")
    assert "No change points: every repeated cell stayed at one level." in section.notes
    assert [table.anchor for table in section.tables if table.anchor == "change-points"] == []
    svg = section.plots[0].svg
    assert svg.count(" on test·testhost") == svg.count(" on some-other·other-box") > 0


def two_hosts_one_gpu(folder: Path) -> Path:
    """Two hosts with the same GPU model: only the machine tells their rows apart."""
    for run_id, host, scale in (("run-a", "node-a", 1.0), ("run-b", "node-b", 1.5)):
        rows = synthetic_rows(run_id=run_id, scale=scale, devices=("cuda:0",))
        write_run([row | {"host": host} for row in rows], folder / f"{run_id}.parquet")
    return folder


def test_plots_draw_two_hosts_with_the_same_gpu_as_two_labelled_series(tmp_path: Path):
    from sdbench.report import plots

    latest = latest_per_series(read_results([two_hosts_one_gpu(tmp_path)]))
    here, there = "synthetic-gpu-24gb·node-a", "synthetic-gpu-24gb·node-b"
    for draw in (
        plots.latency_vs_resolution,
        plots.throughput_vs_batch,
        plots.memory_vs_resolution,
    ):
        svg = draw(latest).svg
        assert f"{here} · fp16" in svg and f"{there} · fp16" in svg, draw.__name__
    bars = plots.attention_precision_bars(latest).svg
    assert f"{here} · sd15 · unet" in bars and f"{there} · sd15 · unet" in bars
    roofline = plots.roofline(latest).svg
    assert here in roofline and there in roofline


def test_plots_of_one_host_still_name_devices(tmp_path: Path):
    from report_fixtures import write_synthetic_run

    from sdbench.report import plots

    write_synthetic_run(tmp_path)
    svg = plots.latency_vs_resolution(latest_per_series(read_results([tmp_path]))).svg
    assert "Synthetic GPU 24GB · fp16" in svg and "Test CPU · fp32" in svg
    assert "·testhost" not in svg


def test_recommend_keeps_a_measured_row_per_machine(two_machines: Path, capsys):
    args = ["recommend", "--model", "sd15", "--resolution", "512", "--format", "json"]
    assert main([*args, "--results", str(two_machines)]) == 0
    rows = json.loads(capsys.readouterr().out)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    measured = [r for r in rows if r["criterion"] == "cpu"]
    assert len(measured) == 2
    assert {r["note"].rsplit("(", 1)[-1] for r in measured} == {
        "test·testhost)",
        "some-other·other-box)",
    }
    slow, fast = sorted(measured, key=lambda r: r["s_per_image"], reverse=True)
    assert slow["s_per_image"] == pytest.approx(1.5 * fast["s_per_image"])


def test_with_machine_columns_recomputes_a_stale_id(two_machines: Path):
    frame = read_results([two_machines])
    stale = frame.assign(machine_id=frame["machine_id"].iloc[0])
    fixed = with_machine_columns(stale)
    assert fixed.groupby("run_id")["machine_id"].first().nunique() == 2
    assert isinstance(fixed, pd.DataFrame)


def test_compare_of_two_machines_exits_2_naming_the_differences(two_machines: Path, capsys):
    here, there = two_machines / "run-here.parquet", two_machines / "run-there.parquet"
    assert main(["compare", str(here), str(there)]) == 2
    err = capsys.readouterr().err
    assert "host testhost vs other-box" in err
    assert "device_name Test CPU vs Some Other CPU" in err
    assert "--across-machines" in err and "Traceback" not in err


def test_compare_across_machines_prints_a_ratio_per_shared_cell(two_machines: Path, capsys):
    here, there = two_machines / "run-here.parquet", two_machines / "run-there.parquet"
    args = ["compare", str(here), str(there), "--across-machines"]
    assert main([*args, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    frame = read_results([here])
    assert result["cells"] == frame["cell_id"].nunique()
    timed = [row for row in result["rows"] if row["ratio"] is not None]
    assert len(timed) == int((frame["status"] == "ok").sum())
    for row in timed:
        assert row["ratio"] == pytest.approx(1.5)
        assert row["ratio_ci_low"] <= 1.5 <= row["ratio_ci_high"]
        assert row["baseline_machine"] == "test·testhost"
    assert main([*args, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| cell | baseline | current |" in markdown and "1.50× slower" in markdown
    assert main(args) == 0
    assert "No regression verdict between machines" in capsys.readouterr().out


@pytest.fixture
def fleet_folder(tmp_path: Path) -> Path:
    from report_fixtures import write_fleet

    write_fleet(tmp_path / "fleet")
    return tmp_path / "fleet"


def test_a_report_over_three_machines_has_a_machines_section_near_the_top(fleet_folder: Path):
    from sdbench.analysis.analysis import analyse
    from sdbench.report.sections import build_page

    frame = read_results([fleet_folder])
    page = build_page(analyse(frame, baseline_machine="rtx-4090·secret-alpha"), [], with_plots=True)
    anchors = [section.anchor for section in page.sections]
    assert anchors.index("machines") < anchors.index("overview")
    machines = next(s for s in page.sections if s.anchor == "machines")
    table = machines.tables[0].frame.set_index("machine")
    assert list(table.index) == ["rtx-4090·secret-alpha", "a100-sxm4-80gb·secret-beta",
                                 "h100-80gb-hbm3·secret-gamma"]  # fmt: skip
    # Made-up latencies 1.0, 0.8 and 0.5 of the 4090's: 1.25x and 2x as fast.
    assert table["relative_speed"].tolist() == pytest.approx([1.0, 1.25, 2.0])
    shared = machines.tables[1]
    assert len(shared.columns) == 1 + 3  # the cell, then one column per machine
    assert any("· 2.00×" in cell.text for row in shared.rows for cell in row)
    predicted = machines.tables[2].frame
    assert predicted["machine"].nunique() == 3 and predicted["gpu"].nunique() == 3
    error = predicted["predicted_it_per_s"] / predicted["measured_it_per_s"] - 1
    assert (100 * error).tolist() == pytest.approx(predicted["error_pct"].tolist())
    assert machines.plots and machines.plots[0].svg.count("<svg") == 1


def test_the_machines_table_counts_every_run_of_a_machine_not_only_its_latest(tmp_path: Path):
    from sdbench.analysis.fleet import fleet

    folder = tmp_path / "results"
    first = write_cpu_run(folder, "run-here-1")
    write_cpu_run(folder, "run-here-2", started_at=START + timedelta(days=1))  # every cell again
    copy_as_other_machine(first, folder / "run-there.parquet", "run-there", slower=1.5)
    table = fleet(read_results([folder])).machines.set_index("host")
    assert table["runs"].to_dict() == {"testhost": 2, OTHER_HOST: 1}


def test_one_host_with_a_cpu_and_a_gpu_has_no_machines_section(tmp_path: Path):
    from report_fixtures import write_synthetic_run

    from sdbench.analysis.analysis import analyse
    from sdbench.report.sections import build_page

    write_synthetic_run(tmp_path)
    page = build_page(analyse(read_results([tmp_path])), [], with_plots=False)
    assert "machines" not in [section.anchor for section in page.sections]


def test_an_unknown_baseline_machine_exits_2_listing_the_machines(fleet_folder, tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["report", str(fleet_folder), "--out", str(out), "--baseline-machine", "h200"]) == 2
    err = capsys.readouterr().err
    assert "is not a machine in these results" in err and "h100-80gb-hbm3·secret-gamma" in err


def test_anonymise_hosts_leaves_no_hostname_in_any_file_written(fleet_folder, tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["report", str(fleet_folder), "--out", str(out), "--anonymise-hosts"]) == 0
    markdown = tmp_path / "report.md"
    args = ["report", str(fleet_folder), "--format", "markdown", "--anonymise-hosts"]
    assert main([*args, "--out", str(markdown)]) == 0
    written = [path for path in out.rglob("*") if path.is_file()] + [markdown]
    assert {path.name for path in written} >= {"index.html", "results.parquet", "results.csv"}
    for path in written:
        data = path.read_bytes()
        for secret in (b"secret-alpha", b"secret-beta", b"secret-gamma", b"corp.example"):
            assert secret not in data, (path.name, secret)
    # Parquet compresses its pages: read the values back too.
    table = pq.read_table(out / "results.parquet").to_pandas()
    assert table["host"].str.fullmatch(r"host-[0-9a-f]{6}").all()
    assert table["host"].nunique() == 3
    text = " ".join(map(str, table.astype(str).to_numpy().ravel()))
    assert "secret" not in text
    html = (out / "index.html").read_text()
    assert "Machines" in html and "host-" in html


@pytest.fixture
def ten_machines(tmp_path: Path) -> pd.DataFrame:
    """The latest rows of ten machines with one GPU each; node00 ran fewer cells ok."""
    for index in range(10):
        rows = synthetic_rows(run_id=f"run-{index}", devices=("cuda:0",))
        rows = [row | {"host": f"node{index:02d}"} for row in rows]
        if index == 0:  # the first machine ran fewer cells ok: it is left out of the lines
            rows = [row | {"status": "oom"} if row["height"] == 512 else row for row in rows]
        write_run(rows, tmp_path / f"run-{index}.parquet")
    return latest_per_series(read_results([tmp_path]))


def test_line_plots_of_a_large_fleet_draw_the_best_covered_machines_and_say_so(ten_machines):
    from sdbench.report import plots

    assert plots.MAX_PLOT_MACHINES == 8
    plot = plots.latency_vs_resolution(ten_machines)
    assert "8 of 10 machines drawn" in plot.caption
    assert "·node01 · fp16" in plot.svg and "·node00 " not in plot.svg


def test_panel_plots_of_a_large_fleet_are_bounded_and_say_what_they_left_out(ten_machines):
    from sdbench.report import plots

    roofline = plots.roofline(ten_machines)
    assert "6 of 10 machines drawn (those with the most ok cells)" in roofline.caption
    assert "·node01" in roofline.svg and "·node00" not in roofline.svg
    bars = plots.attention_precision_bars(ten_machines)
    panels = ten_machines.groupby(["machine_id", "model", "stage"]).ngroups
    assert f"6 of {panels} panels drawn" in bars.caption and panels > 6


def test_the_compile_scatter_labels_only_the_largest_gains_and_says_so():
    from sdbench.report import plots

    gains = pd.DataFrame(
        {"compile": "default", "compile_s": [30.0 + i for i in range(20)],
         "speedup": [1.0 + i / 10 for i in range(20)], "model": "sd15", "stage": "unet",
         "width": 512, "height": 512, "batch_size": list(range(20)), "precision": "fp16"}
    )  # fmt: skip
    plot = plots.compile_time_vs_gain(gains)
    assert "The 12 largest speed-ups of 20 points are labelled." in plot.caption
    assert "512×512 b19 fp16" in plot.svg and "512×512 b8 fp16" in plot.svg
    assert "512×512 b7 fp16" not in plot.svg


def hand_made_fleet(speeds: list[float]) -> Fleet:
    """Machines m00.. (m00 the baseline) whose made-up medians are 10 ms / speed on two cells."""
    names = [f"m{index:02d}" for index in range(len(speeds))]
    machines = pd.DataFrame(
        {
            "machine_id": names,
            "machine": names,
            "baseline": [i == 0 for i in range(len(names))],
            "relative_speed": speeds,
        }  # fmt: skip
    )
    shared = pd.DataFrame(
        [
            {
                "cell_id": cell,
                "label": f"cell {cell}",
                "machine_id": name,
                "machine": name,
                "median_ms": 10.0 / speed,
                "ci95_low_ms": 9.0 / speed,
                "ci95_high_ms": 11.0 / speed,
            }
            for cell in ("a", "b")
            for name, speed in zip(names, speeds, strict=True)
        ]  # fmt: skip
    )
    return Fleet(machines, shared, pd.DataFrame(), baseline="m00")


def test_a_large_fleet_shows_the_baseline_and_the_fastest_and_slowest_machines_and_says_so():
    from sdbench.report.machines_section import machine_bars, machines_section

    # m00 the baseline; m01..m11 at speeds 0.5, 0.6, ... 1.5 against it.
    view = hand_made_fleet([1.0] + [0.5 + 0.1 * i for i in range(11)])
    section = machines_section(view)
    shared = section.tables[1]
    header = [column.label for column in shared.columns]
    assert header == ["cell", "m00", "m11", "m10", "m09", "m08", "m04", "m03", "m02", "m01"]
    assert shared.rows[0][2].text == "6.67 [6.00–7.33] · 1.50×"  # m11 runs 1.5x the baseline
    assert any("9 of 12 machines shown" in note and "the other 3" in note for note in section.notes)
    bars = machine_bars(view)
    assert "9 of 12 machines shown" in bars.caption
    assert "m11" in bars.svg and "m01" in bars.svg and "m05" not in bars.svg


def test_a_small_fleet_shows_every_machine_in_the_machines_table_order():
    from sdbench.report.machines_section import machines_section

    section = machines_section(hand_made_fleet([1.0, 2.0, 0.5]))
    assert [column.label for column in section.tables[1].columns] == ["cell", "m00", "m01", "m02"]
    assert not any("machines shown" in note for note in section.notes)


def test_rows_without_a_cell_id_are_each_a_series_without_a_pandas_warning():
    import warnings

    frame = pd.DataFrame(
        {
            "cell_id": [float("nan")] * 3,  # an all-null column reads back as float
            "machine_id": ["m"] * 3,
            "machine": ["x·y"] * 3,
            "run_id": ["r1", "r2", "r3"],
            "started_at": pd.to_datetime(["2026-11-01", "2026-11-02", "2026-11-03"], utc=True),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        latest = latest_per_series(frame)
    assert latest["run_id"].tolist() == ["r1", "r2", "r3"]
