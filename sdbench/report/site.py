"""Write the static report site: index.html (jinja2, autoescaped) with the results beside it."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from markupsafe import Markup, escape

from sdbench.analysis.analysis import Analysis, as_analysis
from sdbench.atomic import write_atomic
from sdbench.export.csv import frame_csv
from sdbench.export.escape import printable
from sdbench.report.sections import Page, build_page
from sdbench.report.tables import Cell, Table
from sdbench.store.files import output_error
from sdbench.store.schema import REPORT_COPY_KEY

DOWNLOADS = (
    ("results.parquet", "Parquet, every column"),
    ("results.csv", "CSV, list columns as JSON"),
)


def environment() -> jinja2.Environment:
    """Templates from the package; autoescape on for everything, so suite and host text stays text."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("sdbench.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_visible,
    )


def _visible(value: object) -> object:
    """Every value a template prints shows control characters as escapes (trusted markup aside)."""
    return printable(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def _html(value: object) -> str:
    """`value` as the templates print it: control characters visible, then HTML-escaped.

    markupsafe.escape's replacements, without a Markup object per table cell.
    """
    if hasattr(value, "__html__"):  # trusted markup stays as it is
        return str(escape(value))
    text = printable(value) if isinstance(value, str) else str(value)
    return (
        text.replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


def render_table(table: Table) -> Markup:
    """A table as the page's sortable table block, the same HTML a Jinja macro would write.

    Built in Python: a fleet's tables hold ~100,000 cells, and a macro looked up and escaped
    each of their parts through Jinja's runtime (seconds per report).
    """
    numeric = [column.numeric for column in table.columns]
    parts = [
        f'<figure class="table-block" id="{_html(table.anchor)}">\n'
        f"  <h3>{_html(table.title)}</h3>\n"
        '  <div class="table-scroll">\n  <table class="sortable">\n    <thead><tr>\n',
        *(
            f'      <th scope="col" class="{"num" if column.numeric else ""}" tabindex="0" '
            f'aria-sort="none">{_html(column.label)}</th>\n'
            for column in table.columns
        ),
        "    </tr></thead>\n    <tbody>\n",
    ]
    for row in table.rows:
        parts.append("      <tr>\n")
        parts.extend(_cell_html(cell, numeric[index]) for index, cell in enumerate(row))
        parts.append("      </tr>\n")
    parts.append("    </tbody>\n  </table>\n  </div>\n")
    if table.caption:
        parts.append(f"<figcaption>{_html(table.caption)}</figcaption>")
    parts.append("</figure>\n")
    return Markup("".join(parts))


def _cell_html(cell: Cell, numeric: bool) -> str:
    """One <td>: its text (a badge for a status), then its lines (a reason under a status)."""
    status = cell.css.startswith("status")
    opening = f'<td class="{_html(cell.css)}{" num" if numeric else ""}"'
    if cell.sort is not None:
        opening += f' data-sort="{_html(cell.sort)}"'
    if cell.title:
        opening += f' title="{_html(cell.title)}"'
    body = f'<span class="badge">{_html(cell.text)}</span>' if status else _html(cell.text)
    if cell.lines and status:
        body += f'<div class="reason">{_html(cell.lines[0])}</div>'
    elif cell.lines:
        body += f'<ul class="cell-lines">{"".join(f"<li>{_html(line)}</li>" for line in cell.lines)}</ul>'
    return f"        {opening}>{body}        </td>\n"


def render_html(page: Page) -> str:
    env = environment()
    # Only the SVGs matplotlib wrote (its XML writer escapes all text) and our own CSS/JS are trusted.
    env.filters["trusted_svg"] = Markup
    env.globals["render_table"] = render_table
    css = Markup(env.loader.get_source(env, "report.css")[0])
    script = Markup(env.loader.get_source(env, "sort.js")[0])
    return env.get_template("index.html.j2").render(page=page, css=css, script=script)


def downloads(frame: pd.DataFrame) -> dict[str, bytes]:
    """results.parquet (all columns, as read; marked as a report's copy) and results.csv."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), REPORT_COPY_KEY: b"1"})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return {"results.parquet": sink.getvalue().to_pybytes(), "results.csv": frame_csv(frame)}


def write_site(
    results: pd.DataFrame | Analysis,
    out_dir: str | Path,
    title: str | None = None,
    baseline_machine: str | None = None,
) -> Path:
    """Write index.html, results.parquet and results.csv into out_dir; return the index path.

    `results` is a results frame (analysed here, against `baseline_machine`) or its `Analysis`.
    Everything is rendered before anything is written, and each file is replaced atomically,
    so a failure (a full disk, an --out that is a file) leaves the folder as it was.
    """
    out_dir = Path(out_dir)
    analysis = as_analysis(results, baseline_machine)
    page = build_page(analysis, list(DOWNLOADS), title)
    files = downloads(analysis.frame) | {"index.html": render_html(page).encode("utf-8")}
    for name, data in files.items():
        written = out_dir / name
        try:
            write_atomic(written, data)
        except OSError as error:
            raise output_error(written, error) from None
    return out_dir / "index.html"
