"""Suites: TOML files that declare a benchmark matrix, and their pure expansion into cells."""

from sdbench.suite.expand import expand
from sdbench.suite.load import Suite, load_suite, parse_suite

__all__ = ["Suite", "expand", "load_suite", "parse_suite"]
