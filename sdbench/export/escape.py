"""One escaping rule for text from results (suite names, test names, errors, hosts) in every format.

Control characters and line breaks are shown as visible escapes (`\\n`, `\\x1b`), so no value
can start a markdown heading, fake a line of `compare` output, or send a terminal an escape
sequence; markdown and HTML escaping are applied on top of that.
"""

from __future__ import annotations

SHOWN = {"\n": "\\n", "\r": "\\r", "\t": " "}


def printable(text: object) -> str:
    """`text` on one line: control characters and line/paragraph separators escaped visibly."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(
        c if c.isprintable() else SHOWN.get(c) or repr(c)[1:-1] or f"\\u{ord(c):04x}" for c in value
    )


def markdown(text: object) -> str:
    """Text safe anywhere in a markdown line or table cell: no breaks, pipes or raw HTML."""
    value = printable(text).replace("\\", "\\\\").replace("|", "\\|")
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
