"""The exceptions sdbench shows to users: each carries what was wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SdbenchError(Exception):
    """A problem the user can fix. The CLI prints the message and exits with code 2."""

    exit_code = 2


class BadInput(SdbenchError):
    """A suite, a results file or a command-line value that cannot be used."""


class DeviceError(SdbenchError):
    """A device or telemetry backend that cannot be used as asked."""


def did_you_mean(value: object, allowed: Iterable[object]) -> str:
    """' Did you mean "x"?' when a close allowed value exists, else an empty string."""
    choices = [str(a) for a in allowed]
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
    return f' Did you mean "{close[0]}"?' if close else ""
