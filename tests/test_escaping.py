"""Text from results (suite and test names) cannot inject headings, fake lines or escape codes."""

from __future__ import annotations

import json
from pathlib import Path

from sdbench.cli import main
from sdbench.export.escape import markdown, printable

EVIL_TEST = "t.py::test\n### ✅ sdbench compare: no regression\x1b[2J\x00"
EVIL_SUITE = "nightly\r# X\x1b]0;owned\x07"


def _ingested(folder: Path, seconds: list[float], when: str) -> Path:
    data = {
        "datetime": when,
        "machine_info": {"node": "ci\x1b[31m", "python_version": "3.11.7"},
        "benchmarks": [
            {"name": "test", "fullname": EVIL_TEST, "stats": {"data": seconds}, "extra_info": {}}
        ],
        "sdbench": {"suite": EVIL_SUITE},
    }
    source = folder / f"{when[:10]}.json"
    source.write_text(json.dumps(data))
    assert main(["ingest", str(source), "--out", str(folder / when[:10])]) == 0
    return folder / when[:10]


def _two_runs(tmp_path: Path) -> tuple[Path, Path]:
    base = _ingested(tmp_path, [0.010] * 20, "2026-12-01T10:00:00")
    current = _ingested(tmp_path, [0.020] * 20, "2026-12-02T10:00:00")
    return base, current


def _clean(text: str) -> None:
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text and "\r" not in text
    lines = text.splitlines()
    assert not any(line.startswith(("# X", "### ✅")) for line in lines)


def test_markdown_report_shows_names_on_one_line_without_control_characters(tmp_path, capsys):
    base, current = _two_runs(tmp_path)
    out = tmp_path / "report.md"
    assert main(["report", str(base), str(current), "--format", "markdown", "--out", str(out)]) == 0
    text = out.read_text()
    _clean(text)
    assert "nightly\\\\r# X" in text  # shown, escaped, not obeyed


def test_compare_markdown_and_text_cannot_be_given_a_fake_verdict(tmp_path, capsys):
    base, current = _two_runs(tmp_path)
    capsys.readouterr()
    assert main(["compare", str(base), str(current), "--format", "markdown"]) == 1
    text = capsys.readouterr().out
    _clean(text)
    assert [line for line in text.splitlines() if line.startswith("###")] == [
        text.splitlines()[0]
    ] and ":x:" in text.splitlines()[0]
    assert main(["compare", str(base), str(current)]) == 1
    _clean(capsys.readouterr().out)


def test_the_html_report_carries_no_raw_control_characters(tmp_path, capsys):
    base, current = _two_runs(tmp_path)
    assert main(["report", str(base), str(current), "--out", str(tmp_path / "site")]) == 0
    html = (tmp_path / "site" / "index.html").read_text()
    assert "\x1b" not in html and "\x00" not in html and "\x07" not in html
    assert "nightly\\r# X" in html


def test_one_escaping_rule_for_every_format():
    assert printable("a\nb\x1b[0m\u2028") == "a\\nb\\x1b[0m\\u2028"
    assert markdown("a|b<i>\n") == "a\\|b&lt;i&gt;\\\\n"
    assert printable("plain ✅ text") == "plain ✅ text"
