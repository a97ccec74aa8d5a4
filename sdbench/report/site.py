"""Write the static report site: index.html (jinja2, autoescaped) with the results beside it."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from markupsafe import Markup

from sdbench.report.sections import Page, build_page

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
    )


def render_html(page: Page) -> str:
    env = environment()
    # Only the SVGs matplotlib wrote (its XML writer escapes all text) and our own CSS/JS are trusted.
    env.filters["trusted_svg"] = Markup
    css = Markup(env.loader.get_source(env, "report.css")[0])
    script = Markup(env.loader.get_source(env, "sort.js")[0])
    return env.get_template("index.html.j2").render(page=page, css=css, script=script)


def write_downloads(frame: pd.DataFrame, out_dir: Path) -> None:
    """results.parquet (all columns, as read) and results.csv (list columns as JSON text)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, out_dir / "results.parquet")
    flat = frame.copy()
    for name in flat.columns:
        if flat[name].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any():
            flat[name] = flat[name].map(_json_list)
    flat.to_csv(out_dir / "results.csv", index=False)


def _json_list(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return json.dumps([v.item() if hasattr(v, "item") else v for v in list(value)])


def write_site(frame: pd.DataFrame, out_dir: str | Path, title: str | None = None) -> Path:
    """Write index.html, results.parquet and results.csv into out_dir; return the index path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_downloads(frame, out_dir)
    page = build_page(frame, list(DOWNLOADS), title)
    index = out_dir / "index.html"
    temporary = out_dir / ".index.html.tmp"
    temporary.write_text(render_html(page), encoding="utf-8")
    temporary.replace(index)
    return index
