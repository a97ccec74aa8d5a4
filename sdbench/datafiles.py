"""The one reader of the CSV files shipped in sdbench/data (sources cited in data/README.md)."""

from __future__ import annotations

from importlib import resources

import pandas as pd


def read_data_csv(name: str, **options) -> pd.DataFrame:
    """sdbench/data/`name` from the installed package; `options` go to pandas.read_csv."""
    with resources.files("sdbench").joinpath("data", name).open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, **options)
