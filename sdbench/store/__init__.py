"""Results storage: the Parquet schema, the per-run journal and atomic run files."""

from sdbench.store.files import write_run
from sdbench.store.journal import Journal, read_journal
from sdbench.store.read import read_results, results_files
from sdbench.store.schema import COLUMNS, SCHEMA_VERSION

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "Journal",
    "read_journal",
    "read_results",
    "results_files",
    "write_run",
]
