"""docs/commands.md is generated from the parser, and every command and flag the README and
docs show exists in it."""

from __future__ import annotations

import re
import shlex

import pytest

from sdbench.cli import build_parser
from sdbench.commands.synopsis import commands_markdown, verbs
from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# `sdbench VERB ...` as a reader would type it: in a code span or at the start of a code line.
COMMAND = re.compile(r"(?:^|`|\$ )(sdbench [a-z][a-z-]*(?: [^`#\n]*)?)", re.MULTILINE)


def test_docs_commands_md_is_the_parsers_current_help():
    page = (REPO / "docs" / "commands.md").read_text(encoding="utf-8")
    assert page == commands_markdown(), "run: python scripts/make_commands_doc.py"


def _shown_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for match in COMMAND.finditer(page.read_text(encoding="utf-8")):
            found.append((page.name, match.group(1).strip()))
    return found


def test_the_docs_show_commands_at_all():
    names = {command.split()[1] for _, command in _shown_commands()}
    assert {"run", "report", "recommend", "predict", "compare"} <= names


@pytest.mark.parametrize(("page", "command"), _shown_commands(), ids=lambda v: str(v)[:60])
def test_every_command_and_flag_the_docs_show_exists(page, command):
    parser = build_parser()
    known = verbs(parser)
    words = command.split()
    verb = words[1]
    if verb not in known:  # prose such as "sdbench answers two questions"
        assert not any(w.startswith("--") for w in words), (page, command)
        return
    options = {o for action in known[verb]._actions for o in action.option_strings}
    try:
        flags = [w.split("=")[0] for w in shlex.split(command) if w.startswith("--")]
    except ValueError:
        flags = [w.split("=")[0] for w in words if w.startswith("--")]
    flags = [re.sub(r"[^a-z0-9-]+$", "", f) for f in flags]
    unknown = [f for f in flags if f not in options]
    assert not unknown, f"{page}: `{command}` uses {unknown}, which `sdbench {verb}` lacks"
