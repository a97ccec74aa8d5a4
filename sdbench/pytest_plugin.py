"""pytest plugin: turn an sdbench suite into pytest-benchmark tests; inert unless --sdbench-suite is given."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sdbench", "sdbench: benchmark a suite through pytest-benchmark")
    group.addoption(
        "--sdbench-suite",
        metavar="SUITE",
        default=None,
        help="an sdbench suite (.toml): each of its cells becomes a benchmark test",
    )
