"""Conventions every verb shares: packaged suites by name, output formats, help, widths."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

from sdbench.cli import main


def test_run_quick_dry_run_works_from_a_folder_without_suites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "quick", "--dry-run", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "4 cells on cpu" in out.splitlines()
    assert "\nestimated duration on cpu (" in out  # the estimate closes the listing
    assert not (tmp_path / "results").exists()


def test_dry_run_lists_cells_the_device_cannot_run_apart_and_does_not_estimate_them(
    monkeypatch, capsys
):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["run", "flux", "--dry-run", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    cells = [line.split() for line in out.splitlines() if "@ cpu" in line]
    denoising = [cell for cell in cells if cell[2] in ("unet", "pipeline")]
    assert len(cells) == 9 and len(denoising) == 6  # FLUX's transformer: not on a CPU
    assert all(cell[-2] == "unsupported" and cell[-1].startswith("[") for cell in denoising)
    assert all(cell[-2] != "unsupported" for cell in cells if cell not in denoising)
    assert "[1] FLUX.1's 12B-parameter transformer needs 24 GB" in out  # the reason, below
    flat = " ".join(out.split())  # the estimate note wraps where its duration's length puts it
    assert "for 3 cells" in flat and "6 cells unsupported there, not estimated" in flat
    notes = [line for line in out.splitlines() if "@ cpu" not in line]
    assert [line for line in notes if len(line) > 100] == []  # reasons wrap under the list


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


def _verbs():
    from sdbench.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "run" in a.choices)
    return parser, subparsers.choices


def test_every_verb_has_a_description_and_two_or_three_examples_that_parse():
    import shlex

    parser, verbs = _verbs()
    assert {"run", "suites", "show", "recommend", "best"} <= set(verbs)
    for name, verb in verbs.items():
        assert verb.description and len(verb.description) > 20, name
        examples = [
            line.strip()
            for line in (verb.epilog or "").splitlines()
            if line.strip().startswith("sdbench ")
        ]
        assert 2 <= len(examples) <= 3, (name, verb.epilog)
        for example in examples:
            command = shlex.split(example.split("  ")[0])[1:]
            assert parser.parse_args(command).command == name, example


def test_building_the_parser_imports_no_heavy_library():
    # Every `sdbench` call builds the parser first: registering the verbs must stay cheap, so the
    # data and plotting libraries load only in the handler of a verb that needs them.
    probe = (
        "import sys; from sdbench.cli import build_parser; build_parser(); "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = {"pandas", "numpy", "pyarrow", "scipy", "matplotlib", "torch", "jinja2"}
    assert "sdbench" in loaded and heavy.isdisjoint(loaded), sorted(heavy & set(loaded))


def test_top_level_help_lists_the_exit_codes(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code, meaning in (
        ("0", "success"),
        ("1", "regression"),
        ("2", "bad input"),
        ("130", "interrupted"),
    ):
        assert any(line.split()[:1] == [code] and meaning in line for line in out.splitlines())


def test_every_verb_that_prints_data_takes_the_four_formats_and_json_shorthand():
    _, verbs = _verbs()
    printing = {"devices", "models", "flops", "compare", "history", "gpus", "predict", "recommend",
                "validate-model", "probe", "best", "suites", "show"}  # fmt: skip
    for name in printing:
        options = {o: a for a in verbs[name]._actions for o in a.option_strings}
        assert list(options["--format"].choices) == ["table", "markdown", "json", "csv"], name
        assert options["--json"].const == "json" and options["--json"].dest == "format", name
        assert "--wide" in options, name


def test_json_shorthand_and_format_json_print_the_same(capsys):
    assert main(["gpus", "--vendor", "amd", "--json"]) == 0
    shorthand = json.loads(capsys.readouterr().out)
    assert main(["gpus", "--vendor", "amd", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == shorthand
    assert {row["name"] for row in shorthand} >= {"Radeon RX 7900 XTX"}


def test_gpus_as_markdown_is_a_table_with_one_row_per_card(capsys):
    assert main(["gpus", "--vendor", "apple", "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| gpu | family |") and lines[1].startswith("|---|")
    assert len(lines) == 2 + 4


def test_verbs_that_read_results_default_to_dot_results(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for verb in (["best"], ["history"], ["show"], ["report", "--out", "site"]):
        assert main(verb) == 2, verb
        err = capsys.readouterr().err
        assert "./results does not exist" in err and "--results PATH" in err, verb


def _two_runs(folder):
    from report_fixtures import write_synthetic_run

    first = write_synthetic_run(folder, run_id="20261101T000000Z-quick-aaaaaa")
    second = write_synthetic_run(folder, run_id="20261102T000000Z-quick-bbbbbb")
    return first, second


def test_show_prints_the_latest_run_by_default_and_a_named_one_by_prefix(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "results").mkdir()
    _two_runs(tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    assert main(["show"]) == 0
    out = capsys.readouterr().out
    assert "20261102T000000Z-quick-bbbbbb · suite" in out and "cells: " in out
    assert main(["show", "20261101", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["run_id"] == "20261101T000000Z-quick-aaaaaa"
    assert shown["cells"] and "samples_ms" not in shown["cells"][0]


def test_show_of_an_ambiguous_or_unknown_run_exits_2_naming_runs(tmp_path, capsys):
    _two_runs(tmp_path)
    assert main(["show", "2026110", "--results", str(tmp_path)]) == 2
    assert "starts 2 run ids" in capsys.readouterr().err
    assert main(["show", "nope", "--results", str(tmp_path)]) == 2
    assert "The latest runs: 20261102T000000Z-quick-bbbbbb" in capsys.readouterr().err


def test_show_of_a_run_copied_into_a_second_folder_shows_it_once_with_a_warning(tmp_path, capsys):
    first, second = _two_runs(tmp_path / "node1")
    copy = tmp_path / "backup" / second.name
    copy.parent.mkdir()
    copy.write_bytes(second.read_bytes())
    for run in ([], ["20261102"]):  # the latest run, and the run named by its id
        assert main(["show", *run, "--results", str(tmp_path), "--format", "json"]) == 0
        captured = capsys.readouterr()
        shown = json.loads(captured.out)
        assert shown["run_id"] == "20261102T000000Z-quick-bbbbbb"
        warnings = [line for line in captured.err.splitlines() if "is a copy of" in line]
        assert len(warnings) == 1 and str(copy) in warnings[0] and str(second) in warnings[0]
        assert "the run is counted once" in warnings[0]


def test_text_the_older_name_of_table_still_works(tmp_path, capsys):
    first, second = _two_runs(tmp_path)
    assert main(["compare", str(first), str(second), "--format", "text"]) in (0, 1)
    assert "no regression" in capsys.readouterr().out
