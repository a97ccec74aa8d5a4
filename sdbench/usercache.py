"""Where sdbench keeps what it can compute again: `$XDG_CACHE_HOME/sdbench` (default `~/.cache/sdbench`).

Standard library only, so any command can look here before deciding to do the expensive work an
entry saves. A cache entry is never the only copy of anything: a missing, damaged or unwritable
one means the work is done again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from sdbench.atomic import write_atomic


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sdbench"


@functools.cache
def package_digest() -> str:
    """A hash of every file of the installed sdbench package, code and data (bytecode left out).

    Any edit, upgrade or data change gives a new digest, so an entry keyed on it is never served
    to code that would compute it differently. About 170 files, 1.4 MB: ~10 ms.
    """
    return tree_digest(os.path.dirname(os.path.abspath(__file__)))


def tree_digest(root: str | Path) -> str:
    """SHA-256 over the names and bytes of the files under `root`, bytecode caches left out.

    OSError when `root` holds no file or one cannot be read: a caller keys no cache on it.
    """
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        files += [os.path.join(folder, n) for n in names if not n.endswith((".pyc", ".pyo"))]
    if not files:  # not a folder (a zipped install): nothing to key on, so nothing to trust
        raise FileNotFoundError(f"no files under {root}")
    digest = hashlib.sha256()
    for path in sorted(files):
        with open(path, "rb") as handle:
            data = handle.read()
        name = os.path.relpath(path, root).replace(os.sep, "/").encode()
        digest.update(b"%d:%s:%d:" % (len(name), name, len(data)))
        digest.update(data)
    return digest.hexdigest()


def read_entry(name: str, key: dict) -> dict | None:
    """The JSON entry `name` of the cache folder if it was stored with `key`; None when it is
    missing, damaged or another key's (the caller checks the fields it reads)."""
    try:
        stored = json.loads((cache_dir() / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) and stored.get("key") == key else None


def write_entry(name: str, key: dict, fields: dict, keep: int = 4) -> None:
    """Store `fields` with `key` as the JSON entry `name` (written atomically), and leave the
    newest `keep` entries of its kind (the name up to its first "-"): each edit or upgrade of
    sdbench makes a new one. An unwritable cache is left as it is."""
    path = cache_dir() / name
    try:
        write_atomic(path, json.dumps({"key": key, **fields}, indent=1).encode("utf-8"))
        keep_newest(path.parent.glob(f"{name.split('-')[0]}-*.json"), keep)
    except OSError:
        pass  # a read-only cache: the work is done again next time


def keep_newest(entries: Iterable[Path], keep: int) -> None:
    """Remove all but the `keep` most recently modified of `entries` (one kind of cache entry)."""
    by_age = sorted(entries, key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for stale in by_age[keep:]:
        stale.unlink(missing_ok=True)
