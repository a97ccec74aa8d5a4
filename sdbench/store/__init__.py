"""Results storage: the Parquet schema, the per-run journal and atomic run files.

Its names load with their module on first use: a worker that only needs `store.schema` (the
allocator list) would otherwise import pandas through the reader, ~1 s of every worker start.
"""

from importlib import import_module

_HOMES = {
    "COLUMNS": "sdbench.store.schema",
    "SCHEMA_VERSION": "sdbench.store.schema",
    "Journal": "sdbench.store.journal",
    "read_journal": "sdbench.store.journal",
    "read_results": "sdbench.store.read",
    "results_files": "sdbench.store.read",
    "write_run": "sdbench.store.files",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'sdbench.store' has no attribute {name!r}")
