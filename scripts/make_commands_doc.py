"""Write docs/commands.md from sdbench's parser: `python scripts/make_commands_doc.py`."""

from __future__ import annotations

from pathlib import Path

from sdbench.commands.synopsis import commands_markdown

if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "docs" / "commands.md"
    path.write_text(commands_markdown(), encoding="utf-8")
    print(path)
