"""Conventions every verb shares: packaged suites by name, output formats, help, widths."""

from __future__ import annotations

import csv
import io
import json

from sdbench.cli import main


def test_run_quick_dry_run_works_from_a_folder_without_suites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "quick", "--dry-run", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "4 cells on cpu" in lines
    assert lines[-1].startswith("estimated duration on cpu (")
    assert not (tmp_path / "results").exists()


def test_suites_lists_every_packaged_suite_with_its_cell_counts(capsys):
    assert main(["suites", "--json"]) == 0
    suites = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert {"quick", "tiny", "ci", "gpu-check", "sd15-matrix"} <= set(suites)
    assert suites["tiny"]["cells_cpu"] == 32
    assert suites["ci"]["description"].startswith("SD1.5 UNet step and VAE decode")


def test_suites_as_csv_has_a_header_and_one_row_per_suite(capsys):
    assert main(["suites", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert "quick" in [row["name"] for row in rows]
    assert all(row["path"].endswith(f"{row['name']}.toml") for row in rows)
