"""One exporter per format: the commands' --format output and the report's markdown and CSV use
the same writers, so a value reads the same wherever it is printed."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from sdbench.commands.output import format_markdown
from sdbench.export import csv
from sdbench.export.json import frame_records
from sdbench.export.markdown import markdown_table
from sdbench.report.markdown import table_markdown
from sdbench.report.tables import Cell, Column, Table


def test_markdown_escapes_every_cell_and_right_aligns_numeric_columns():
    text = markdown_table(["name", "ms"], [["a|b <i>", "1.5"], ["line\nbreak", "2"]], [False, True])
    assert text.split("\n") == [
        "| name | ms |",
        "|---|---:|",
        "| a\\|b &lt;i&gt; | 1.5 |",
        "| line\\\\nbreak | 2 |",
    ]


def test_markdown_right_aligns_columns_of_figures_and_keeps_text_columns_left():
    rows = [
        [
            "sd15",
            "512x512 b2",
            "12.3 ms",
            "1.82x (1.70-1.95)",
            "$900",
            "-28/+6.3%",
            "4,367",
            "fp16",
        ],
        ["sdxl", "1024x1024 b1", "-", "-", "$1,599", "+25.0%", "2.0e-03", "-"],
    ]
    headers = ["model", "workload", "median", "speed-up", "price", "band", "J/img", "precision"]
    rule = markdown_table(headers, rows).split("\n")[1]
    assert rule == "|---|---|---:|---:|---:|---:|---:|---|"


def test_a_column_of_nulls_or_of_mixed_text_is_not_right_aligned():
    rows = [["-", "1.5 GiB", "**+30.0%**"], ["-", "sd15", "**slower**"]]
    assert markdown_table(["a", "b", "c"], rows).split("\n")[1] == "|---|---|---|"


def test_command_markdown_right_aligns_number_columns_as_the_text_table_does():
    rows = [["sd15", 1.5, "12.3 ms", None], ["sdxl", 12_000, "4.56 s", True]]
    lines = format_markdown(["model", "it/s", "median", "fits"], rows).split("\n")
    assert lines[1:] == [
        "|---|---:|---:|---|",
        "| sd15 | 1.50 | 12.3 ms | - |",
        "| sdxl | 12,000 | 4.56 s | ✓ |",
    ]


def test_the_command_and_the_report_write_the_same_markdown_table():
    rows = [["sd15 | unet", "12.3"], ["sdxl", "45.6"]]
    report_table = Table(
        "t",
        [Column("cell"), Column("median (ms)", numeric=True)],
        [[Cell(a), Cell(b)] for a, b in rows],
    )
    assert table_markdown(report_table) == format_markdown(["cell", "median (ms)"], rows)


def test_csv_writes_lists_and_mappings_as_json_and_nan_as_empty():
    stream = io.StringIO()
    records = [{"cell": "a", "samples_ms": np.array([1.0, 2.0]), "extra": {"k": 1}, "x": np.nan}]
    csv.write_records(stream, records)
    assert stream.getvalue().split("\n") == [
        "cell,samples_ms,extra,x",
        'a,"[1.0, 2.0]","{""k"": 1}",',
        "",
    ]


def test_the_reports_csv_keeps_every_column_with_lists_as_json():
    frame = pd.DataFrame({"cell_id": ["a", "b"], "warnings": [["slow", "hot"], None]})
    lines = csv.frame_csv(frame).decode().split("\n")
    assert lines[:3] == ["cell_id,warnings", 'a,"[""slow"", ""hot""]"', "b,"]
    assert json.loads(lines[1].split(",", 1)[1].strip('"').replace('""', '"')) == ["slow", "hot"]


def test_nan_inside_a_list_column_is_written_as_json_null():
    frame = pd.DataFrame(
        {"cell_id": ["a", "b"], "samples_ms": [np.array([1.5, np.nan]), [np.float32(2.0), np.inf]]}
    )
    written = pd.read_csv(io.BytesIO(csv.frame_csv(frame)))
    assert [json.loads(text) for text in written["samples_ms"]] == [[1.5, None], [2.0, None]]
    assert "NaN" not in csv.frame_csv(frame).decode()
    stream = io.StringIO()
    csv.write_records(stream, [{"samples_ms": [1.0, float("nan")]}])
    assert stream.getvalue().split("\n")[1] == '"[1.0, null]"'


def test_an_array_cell_is_written_as_the_json_of_the_same_values_in_a_list():
    frame = pd.DataFrame(
        {
            "samples_ms": [
                np.array([0.1, 2.0], dtype=np.float32),
                [np.float32(0.1), np.float32(2.0)],
                np.array([3, 4]),
                np.array([True, False]),
            ]
        }
    )
    lines = csv.frame_csv(frame).decode().split("\n")
    assert lines[1] == lines[2] == '"[0.10000000149011612, 2.0]"'
    assert lines[3:5] == ['"[3, 4]"', '"[true, false]"']


def test_json_records_are_plain_values():
    frame = pd.DataFrame({"n": [np.int64(3)], "v": [float("inf")], "s": [np.array([1, 2])]})
    assert frame_records(frame) == [{"n": 3, "v": None, "s": [1, 2]}]
