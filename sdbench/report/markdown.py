"""The markdown summary of results for READMEs and pull requests: overview, fastest settings, failures."""

from __future__ import annotations

import pandas as pd

from sdbench.analysis.analysis import Analysis, as_analysis
from sdbench.export.escape import markdown as escape
from sdbench.export.markdown import markdown_table
from sdbench.report.sections import Page, Section
from sdbench.report.tables import Table


def table_markdown(table: Table) -> str:
    return markdown_table(
        [c.label for c in table.columns],
        [[_cell_text(cell) for cell in row] for row in table.rows],
        [c.numeric for c in table.columns],
    )


def _cell_text(cell) -> str:
    if cell.lines and not cell.text:
        return "; ".join(cell.lines)
    if cell.lines and cell.css.startswith("status"):
        return f"{cell.text}: {cell.lines[0]}"
    return cell.text


def section_markdown(section: Section, include_tables: bool = True) -> list[str]:
    out = [f"## {escape(section.title)}", ""]
    if section.intro:
        out += [escape(section.intro), ""]
    if section.facts:
        out += [", ".join(f"**{escape(v)}** {escape(k)}" for k, v in section.facts), ""]
    out += [f"> {escape(note)}" for note in section.notes]
    if section.notes:
        out.append("")
    for table in section.tables if include_tables else []:
        out += [f"### {escape(table.title)}", "", table_markdown(table), ""]
    return out


def render_markdown(page: Page) -> str:
    """Overview, fastest settings and history tables; the matrix stays in the HTML report."""
    lines = [f"# {escape(page.title)}", ""]
    if page.subtitle:
        lines += [escape(page.subtitle), ""]
    for section in page.sections:
        if section.anchor in ("plots", "matrix"):
            continue
        lines += section_markdown(section)
    return "\n".join(lines).rstrip() + "\n"


def markdown_report(
    results: pd.DataFrame | Analysis,
    title: str | None = None,
    baseline_machine: str | None = None,
) -> str:
    """The markdown summary of a results frame (analysed here) or of its `Analysis`."""
    from sdbench.report.sections import build_page

    page = build_page(as_analysis(results, baseline_machine), [], title, with_plots=False)
    return render_markdown(page)
