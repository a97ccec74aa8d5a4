"""The HTML report and markdown summary, without a browser: sections, escaping, plots, downloads."""

from __future__ import annotations

import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest
from report_fixtures import HOSTILE, synthetic_rows, write_history, write_synthetic_run

from sdbench import units
from sdbench.cli import main
from sdbench.report.markdown import markdown_report
from sdbench.report.site import render_table, write_site
from sdbench.report.tables import Cell, Column, Table
from sdbench.store import read_results, write_run


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[str, object]:
    """A report of three runs of the same cells plus one run whose suite name is hostile."""
    folder = tmp_path_factory.mktemp("results")
    write_history(folder)
    write_synthetic_run(folder, "hostile", suite=HOSTILE, devices=("cuda:0",))
    out = tmp_path_factory.mktemp("site")
    index = write_site(read_results([folder]), out)
    return index.read_text(encoding="utf-8"), out


def test_writes_page_and_downloads(site):
    html, out = site
    assert (out / "index.html").is_file()
    table = pq.read_table(out / "results.parquet")
    assert table.num_rows == 4 * 106 + 73
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == table.num_rows
    warned = csv["warnings"].dropna().map(json.loads)
    assert any("high spread" in w[0] for w in warned if w)
    assert 'href="results.parquet"' in html and 'href="results.csv"' in html


def test_every_section_is_present(site):
    html, _ = site
    for anchor in ("overview", "matrix", "plots", "fastest", "which-gpu", "history", "downloads"):
        assert f'<section id="{anchor}">' in html


def test_hostile_suite_name_is_escaped(site):
    html, _ = site
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert html.count("<script>") == 1  # only the sorting script
    # Error text with markup stays text too.
    assert "synthetic &lt;b&gt;failure&lt;/b&gt; &amp; more" in html


def test_every_plot_is_inline_svg_with_unique_ids(site):
    html, _ = site
    for anchor in (
        "plot-latency-resolution",
        "plot-throughput-batch",
        "plot-memory",
        "plot-attention-precision",
        "plot-roofline",
        "plot-energy",
        "plot-compile",
        "plot-history",
    ):
        block = html.split(f'id="{anchor}"', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in block and "<path" in block, anchor
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def test_nothing_loads_from_the_network(site):
    html, _ = site
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<link" not in html and "@import" not in html


def test_matrix_shows_status_units_and_warnings(site):
    html, _ = site
    matrix = html.split('<section id="matrix">', 1)[1].split("</section>", 1)[0]
    for status in ("ok", "oom", "error", "timeout", "unsupported"):
        assert f'class="status status-{status}"' in matrix
    assert "latency (ms)" in matrix and "peak memory (GiB)" in matrix and "MFU (%)" in matrix
    assert "high spread: IQR/median 12%" in matrix
    assert "CUDA out of memory" in matrix
    assert "fail (rel err 0.40)" in matrix


def test_a_table_cell_shows_its_text_sort_key_badge_and_lines_as_escaped_text():
    table = Table(
        "Cells <1>",
        [Column("status"), Column("latency (ms)", numeric=True), Column("warnings")],
        [[
            Cell("oom", "oom", "status status-oom", "out of <memory>", ("out of <memory>",)),
            Cell("12.5", 12.5),
            Cell("", 2, "warnings", "", ("high spread", "bell\x07 & <b>")),
        ]],
        caption="Click a header.",
        anchor="cells",
    )  # fmt: skip
    html = render_table(table)
    assert html.startswith('<figure class="table-block" id="cells">\n  <h3>Cells &lt;1&gt;</h3>')
    assert '<th scope="col" class="num" tabindex="0" aria-sort="none">latency (ms)</th>' in html
    assert (
        '<td class="status status-oom" data-sort="oom" title="out of &lt;memory&gt;">'
        '<span class="badge">oom</span><div class="reason">out of &lt;memory&gt;</div>        </td>'
    ) in html
    assert '<td class=" num" data-sort="12.5">12.5        </td>' in html
    assert (
        '<td class="warnings" data-sort="2"><ul class="cell-lines"><li>high spread</li>'
        "<li>bell\\x07 &amp; &lt;b&gt;</li></ul>        </td>"
    ) in html
    assert html.endswith("<figcaption>Click a header.</figcaption></figure>\n")


def test_overview_counts_statuses(site):
    html, _ = site
    overview = html.split('<section id="overview">', 1)[1].split("</section>", 1)[0]
    assert "<dt>runs</dt><dd>5</dd>" in overview
    assert "<dt>oom</dt><dd>5</dd>" in overview
    assert "<dt>timeout</dt><dd>4</dd>" in overview


def test_single_run_has_no_history_section(tmp_path):
    path = write_synthetic_run(tmp_path / "results", devices=("cpu",))
    html = write_site(read_results([path]), tmp_path / "site").read_text()
    assert '<section id="history">' not in html
    # No energy on a CPU-only run: the plot is skipped with its reason, not drawn empty.
    assert 'id="plot-energy"' not in html
    assert "Energy per image: not drawn. No energy was measured" in html


def test_hostile_device_name_in_plots_stays_text(tmp_path):
    rows = synthetic_rows(devices=("cuda:0",))
    for row in rows:
        row["device_name"] = "<img src=x onerror=alert(1)> $GPU$"
    html = write_site(pd.DataFrame(rows), tmp_path).read_text()
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; $GPU$" in html


def test_markdown_summary(tmp_path):
    write_synthetic_run(tmp_path, "hostile", suite=HOSTILE)
    text = markdown_report(read_results([tmp_path]))
    assert text.startswith("# sdbench report · &lt;script&gt;alert(1)&lt;/script&gt;")
    assert "<script>" not in text
    assert "## Fastest settings" in text
    assert "| Synthetic GPU 24GB | sd15 | unet | 512 | 512 | 1 | fp16 | sdpa | default |" in text


def test_cli_report_html_and_markdown(tmp_path, capsys):
    path = write_synthetic_run(tmp_path / "results", devices=("cpu",))
    assert main(["report", str(path), "--out", str(tmp_path / "site")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "site" / "index.html")
    assert (
        main(["report", str(path), "--out", str(tmp_path / "summary.md"), "--format", "markdown"])
        == 0
    )
    assert (tmp_path / "summary.md").read_text().startswith("# sdbench report · quick")


def test_cli_report_without_results_is_bad_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "site")]) == 2
    assert "No result files" in capsys.readouterr().err


def test_empty_run_file_renders(tmp_path):
    rows = synthetic_rows(devices=("cpu",))[:1]
    rows[0]["status"], rows[0]["median_ms"] = "error", None
    path = write_run(rows, tmp_path / "one.parquet")
    html = write_site(read_results([path]), tmp_path / "site").read_text()
    assert "Latency vs resolution, per precision: not drawn." in html


@pytest.mark.parametrize(
    ("chooser", "values", "label", "shown"),
    [
        (units.time_unit, [0.2, 0.5], "µs", "500"),
        (units.time_unit, [20.0, 500.0], "ms", "500"),
        (units.time_unit, [20_000.0, 60_000.0, 10.0], "s", "60.0"),
        # An even count: by the median of the middle two (0.85 ms, 8.5 s), not the upper one.
        (units.time_unit, [0.5, 1.2], "µs", "1,200"),
        (units.time_unit, [5_000.0, 12_000.0], "ms", "12,000"),
        (units.bytes_unit, [2 * units.GIB], "GiB", "2.00"),
        (units.bytes_unit, [300 * units.MIB], "MiB", "300"),
        (units.energy_unit, [0.5], "mJ", "500"),
        (units.flop_rate_unit, [0.25], "GFLOP/s", "250"),
    ],
)
def test_units_follow_the_values(chooser, values, label, shown):
    unit = chooser(values)
    assert unit.label == label
    assert unit.show(max(values)) == shown


def test_missing_values_show_blank():
    assert units.Unit("ms").show(None) == ""
    assert units.Unit("ms").show(float("nan")) == ""
    assert units.COUNT.show(1234.0) == "1,234"


def test_history_marks_the_step_and_compares_with_the_previous_run(site):
    html, _ = site
    history = html.split('<section id="history">', 1)[1].split("</section>", 1)[0]
    changes = history.split('id="change-points"', 1)[1].split("</figure>", 1)[0]
    assert "run-2" in changes and "25.0" in changes  # every ok cell stepped up 25% at run-2
    compare = history.split('id="compare"', 1)[1].split("</figure>", 1)[0]
    assert "Run run-3 against the previous run" in compare


def test_a_run_where_every_cell_is_ok_lists_no_failed_cells(tmp_path):
    from sdbench.report.sections import not_ok_table

    rows = synthetic_rows(devices=("cpu",))
    ok_rows = [row for row in rows if row["status"] == "ok"]
    write_run(ok_rows, tmp_path / "ok" / "all-ok.parquet")
    write_run(rows, tmp_path / "mixed" / "mixed.parquet")
    assert len(not_ok_table(read_results([tmp_path / "ok"])).rows) == 0
    failed = sum(row["status"] != "ok" for row in rows)
    assert failed > 0 and len(not_ok_table(read_results([tmp_path / "mixed"])).rows) == failed


def test_per_image_section_composes_one_image_from_the_stage_rows(tmp_path):
    config = {
        "schema_version": 1,
        "run_id": "r",
        "suite": "s",
        "started_at": "2026-11-25T10:00:00+00:00",
        "model": "sd15",
        "device": "cpu",
        "device_name": "Test CPU",
        "height": 256,
        "width": 256,
        "batch_size": 1,
        "precision": "bf16",
        "attention": "sdpa",
        "compile": "none",
        "cfg": True,
        "steps": 20,
        "weights": "random",
        "status": "ok",
    }
    medians = {"text_encoder": 50.0, "unet": 800.0, "vae_decode": 850.0}
    rows = [
        {**config, "cell_id": stage, "stage": stage, "median_ms": ms, "samples_ms": [ms]}
        for stage, ms in medians.items()
    ]
    write_run(rows, tmp_path / "results" / "r.parquet")
    index = write_site(read_results([tmp_path / "results"]), tmp_path / "site")
    html = index.read_text()
    assert 'id="per-image"' in html
    section = html.split('id="per-image"', 1)[1]
    # SD1.5's usual 50 steps: 50 + 50 x 800 + 850 ms = 40.9 s for one image.
    assert "40.9" in section.split("</table>", 1)[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (units.bytes_text(1.5 * 1024**3), "1.50 GiB"),
        (units.bytes_text(512 * 1024**2), "512 MiB"),
        (units.bytes_text(None), "-"),
        (units.time_text(12_345.0), "12.3 s"),
        (units.time_text(0.5), "500 µs"),
        (units.number_text(1234567.0), "1,234,567"),
        (units.number_text(0.123456), "0.12"),
        (units.band_text(-12.0, 12.0), "±12%"),
        (units.band_text(-8.0, 15.0), "-8.0% / +15%"),
        (units.check_text(True), "✓"),
        (units.check_text(False), "✗"),
        (units.check_text(None), "-"),
    ],
)
def test_one_formatter_for_units(text, expected):
    assert text == expected


def test_a_panel_title_wider_than_its_column_breaks_at_its_separators_and_a_short_one_does_not():
    from sdbench.report import plots

    long = "h100-80gb-hbm3·node062.cluster.example · sdxl · text_encoder · 1024×1024 · batch 4"

    @plots._styled
    def titles() -> list[str]:
        _, axes = plots._grid(2)
        plots._set_title(axes[0], long)
        plots._set_title(axes[1], "sd15 · unet · 512×512")
        return [axis.get_title() for axis in axes]

    wrapped, short = titles()
    assert wrapped == long.replace(" · 1024×1024", " ·\n1024×1024")
    assert short == "sd15 · unet · 512×512"
