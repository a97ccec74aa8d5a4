"""pytest plugin: turn an sdbench suite into pytest-benchmark tests; inert unless --sdbench-suite is given.

`pytest --sdbench-suite ci --benchmark-json out.json` collects the suite file as a test
module with one `test_cell[...]` per cell. Each cell is measured by `measure_cell`, as the worker
measures it, except that the timed repeats run through `benchmark.pedantic` with a call that ends
in a device synchronize (pytest-benchmark itself never synchronises a GPU). Every column the
worker writes (FLOPs, memory, telemetry, fidelity, the raw samples) goes into `extra_info`,
the software environment into `machine_info["sdbench"]`, and cells that did not finish ok
(unsupported, oom, error) into the JSON's `"sdbench"` section, so `sdbench ingest` can turn the
file into a results Parquet file with every outcome.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from sdbench.cell import Cell, Measure

SESSION_KEY = pytest.StashKey["SuiteSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sdbench", "sdbench: benchmark a suite through pytest-benchmark")
    group.addoption(
        "--sdbench-suite",
        metavar="SUITE",
        default=None,
        help="an sdbench suite, packaged (ci) or a .toml path: each cell becomes a benchmark test",
    )
    group.addoption(
        "--sdbench-device",
        metavar="DEVICE",
        default=None,
        help="run the suite's cells on this device only (cpu, cuda:0, ...), as `sdbench run --device`",
    )


@dataclass
class SuiteSession:
    """The suite being benchmarked, its cells, per-device worker state and the cells that did not finish ok."""

    path: Path
    suite: object
    cells: list[Cell]
    states: dict[str, object] = field(default_factory=dict)
    environments: dict[str, dict] = field(default_factory=dict)
    outcomes: list[dict] = field(default_factory=list)

    @property
    def measure(self) -> Measure:
        return self.suite.measure  # type: ignore[attr-defined]

    def state(self, device: str):
        """Models, references and telemetry kept across the cells of one device (built on first use)."""
        if device not in self.states:
            from sdbench.runner.measure import new_state
            from sdbench.runner.worker import configure_torch, environment

            configure_torch(self.suite.options["allocator"])  # type: ignore[attr-defined]
            self.states[device] = new_state(device)
            self.environments[device] = environment(device)
        return self.states[device]

    def record(self, cell: Cell, status: str, error: str) -> None:
        self.outcomes.append(
            {"cell": cell.to_dict(), "cell_id": cell.cell_id, "status": status, "error": error}
        )


def load_session(path: str, device: str | None) -> SuiteSession:
    """Load and expand the suite on this machine's devices (or `device` only)."""
    from sdbench.suite import expand, load_suite
    from sdbench.suite.load import parse_device

    suite = load_suite(path)  # before torch is imported, so a typo in the suite is reported at once
    if device is not None:
        suite = replace(
            suite, matrix={**suite.matrix, "device": (parse_device(device, "--sdbench-device"),)}
        )
    from sdbench.devices.detect import list_devices

    cells = expand(suite, [d["id"] for d in list_devices()])
    if not cells:
        raise pytest.UsageError(
            f"{path}: every cell is excluded; nothing to benchmark. Loosen the [[exclude]] rules."
        )
    return SuiteSession(Path(path), suite, cells)


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("sdbench_suite", None)
    if not path:
        return
    if not config.pluginmanager.hasplugin("benchmark"):
        raise pytest.UsageError(
            "--sdbench-suite needs the pytest-benchmark plugin: pip install pytest-benchmark."
        )
    from sdbench.errors import SdbenchError
    from sdbench.suite.packaged import resolve_suite

    try:
        path = str(resolve_suite(path))  # a packaged suite's name (ci) or a .toml path
        session = load_session(path, config.getoption("sdbench_device", None))
    except SdbenchError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(BenchmarkHooks(session), "sdbench-benchmark-hooks")
    # `pytest --sdbench-suite S` runs the suite alone; with explicit paths it runs beside them.
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        if path not in config.args:
            config.args.append(path)
    else:
        config.args[:] = [path]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    session = parent.config.stash.get(SESSION_KEY, None)
    if session is None or file_path.resolve() != session.path.resolve():
        return None
    return SuiteModule.from_parent(parent, path=file_path)


class SuiteModule(pytest.Module):
    """The suite file, collected as a module whose one test function is parametrised by cell."""

    def _getobj(self):
        module = types.ModuleType(f"sdbench_suite_{self.path.stem}")
        module.__file__ = str(self.path)
        module.test_cell = _test_cell  # type: ignore[attr-defined]
        return module


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sdbench_cell" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash.get(SESSION_KEY, None)
    if session is not None:
        # Plain dicts, so pytest-benchmark's JSON carries each cell's configuration under "params".
        params = [pytest.param(c.to_dict(), id=cell_test_id(c)) for c in session.cells]
        metafunc.parametrize("sdbench_cell", params)


def cell_test_id(cell: Cell) -> str:
    """A stable, readable test id: the axes that vary within a suite."""
    parts = [
        cell.model,
        cell.stage,
        f"{cell.width}x{cell.height}",
        f"bs{cell.batch_size}",
        cell.precision,
        cell.attention,
        cell.compile,
        cell.device,
    ]
    return "-".join(parts)


def _test_cell(benchmark, sdbench_cell: dict, request: pytest.FixtureRequest) -> None:
    benchmark_cell(benchmark, Cell.from_dict(sdbench_cell), request.config.stash[SESSION_KEY])


def benchmark_cell(benchmark, cell: Cell, session: SuiteSession) -> None:
    """Measure one cell with `measure_cell`, timed by pytest-benchmark; cells not ok are recorded.

    Unsupported and OOM cells are skipped; an error fails the test with its message.
    """
    from sdbench.runner.measure import measure_cell

    benchmark.group = f"{cell.model} {cell.stage} @ {cell.device}"
    state = session.state(cell.device)
    measurement = measure_cell(cell, session.measure, state, pedantic_sampler(benchmark))
    if measurement.status != "ok":
        session.record(cell, measurement.status, measurement.error or "")
        if measurement.status == "error":
            pytest.fail(f"error: {measurement.error}", pytrace=False)
        pytest.skip(f"{measurement.status}: {measurement.error}")
    columns = measurement.columns()
    del columns["status"], columns["error"]  # ingest sets them; skipped cells are recorded
    extra = {
        "cell_id": cell.cell_id,
        **cell.to_dict(),
        "warmup_ms": list(measurement.warmup_ms),
        **columns,
    }
    benchmark.extra_info.update({k: _json_safe(v) for k, v in extra.items()})
    benchmark.extra_info["device_name"] = session.environments[cell.device]["device_name"]
    benchmark.extra_info["suite"] = session.suite.name  # type: ignore[attr-defined]


def planned_rounds(measure: Measure, warmup_ms: list[float]) -> int:
    """Timed rounds: as many as fit in max_time_s at the warm-up's pace, within [min, max] repeats."""
    if not warmup_ms or min(warmup_ms) <= 0:
        return measure.min_repeats
    fit = int(measure.max_time_s * 1000.0 / min(warmup_ms))
    return max(measure.min_repeats, min(measure.max_repeats, fit))


def pedantic_sampler(benchmark):
    """The plugin's sampler for `measure_cell`: warm up with the device timer, then time
    `planned_rounds` calls through `benchmark.pedantic`, each ending in a device synchronize."""
    from sdbench.runner.timing import Timing

    def sample(call, timer, measure: Measure, on_window) -> Timing:
        warmup_ms = [timer(call) for _ in range(measure.warmup)]

        def synchronised_call() -> None:
            call()
            timer.synchronize()  # the timed interval ends when the device is done, not at launch

        on_window(True)
        try:
            benchmark.pedantic(
                synchronised_call,
                setup=timer.synchronize,
                rounds=planned_rounds(measure, warmup_ms),
                warmup_rounds=0,
                iterations=1,
            )
        finally:
            on_window(False)
        samples_ms = benchmark_samples_ms(benchmark)
        return Timing(samples_ms, warmup_ms, timed_s=sum(samples_ms) / 1000.0)

    return sample


def benchmark_samples_ms(benchmark) -> list[float]:
    """The raw per-round times pytest-benchmark recorded, in ms (empty under --benchmark-disable)."""
    metadata = getattr(benchmark, "stats", None)
    stats = getattr(metadata, "stats", None)
    return [float(s) * 1000.0 for s in getattr(stats, "data", None) or []]


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class BenchmarkHooks:
    """pytest-benchmark hooks, registered only when a suite is given (they need the plugin present)."""

    def __init__(self, session: SuiteSession):
        self.session = session

    def pytest_benchmark_update_machine_info(
        self, config: pytest.Config, machine_info: dict
    ) -> None:
        from sdbench.runner.environment import host_environment

        machine_info["sdbench"] = {
            **host_environment(),
            "suite": self.session.suite.name,  # type: ignore[attr-defined]
            "devices": self.session.environments,
        }

    def pytest_benchmark_update_json(
        self, config: pytest.Config, benchmarks: list, output_json: dict
    ) -> None:
        output_json["sdbench"] = {
            "suite": self.session.suite.name,  # type: ignore[attr-defined]
            "suite_path": str(self.session.path),
            "not_ok": self.session.outcomes,
            "devices": self.session.environments,
        }
