"""Facts about the host and the project that every row of a run carries (no torch here)."""

from __future__ import annotations

import platform
import socket
import subprocess
from pathlib import Path

from sdbench import __version__


def git_sha() -> str | None:
    """The commit of the sdbench checkout that ran, with '-dirty' when it has local changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def host_environment() -> dict:
    return {
        "host": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sdbench_version": __version__,
        "git_sha": git_sha(),
    }
