"""The Ray executor: groups on a local Ray cluster give the same rows as the local executor."""

from __future__ import annotations

import importlib.util
import json
import sys

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from sdbench.cell import Cell, Measure
from sdbench.errors import BadInput
from sdbench.runner import ray_executor
from sdbench.runner.run import run_suite

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason='ray is not installed (pip install "sdbench[ray]")',
)


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    # One pretend GPU of a made-up type, to check scheduling constraints (no cell runs on it).
    ray.init(
        num_cpus=2,
        num_gpus=1,
        resources={"accelerator_type:FAKE": 1},
        include_dashboard=False,
        log_to_driver=False,
        logging_level="warning",
    )
    yield ray
    ray.shutdown()


def _rows(path) -> dict[str, dict]:
    return {row["cell_id"]: row for row in pq.read_table(path).to_pylist()}


@needs_ray
@pytest.mark.ray
def test_ray_runs_two_groups_at_once_and_matches_the_local_executor_cell_for_cell(
    ray_cluster, tiny_suite, tmp_path, monkeypatch
):
    # Two groups (fp32, bf16); xformers is unsupported on the CPU; one worker is killed mid-cell.
    suite = tiny_suite(
        matrix={
            "precision": ["fp32", "bf16"],
            "batch_size": [1, 2],
            "attention": ["xformers", "sdpa"],
        }
    )
    monkeypatch.setenv("SDBENCH_INJECT", json.dumps({"bs2 bf16 sdpa": "kill"}))
    executors: list[ray_executor.RayExecutor] = []

    class Recorded(ray_executor.RayExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            executors.append(self)

    monkeypatch.setattr(ray_executor, "RayExecutor", Recorded)
    quiet = Console(quiet=True)
    local = run_suite(str(suite), tmp_path / "local", console=quiet)
    on_ray = run_suite(str(suite), tmp_path / "ray", executor="ray", console=quiet)

    local_rows, ray_rows = _rows(local.path), _rows(on_ray.path)
    assert len(ray_rows) == 8
    assert {k: r["status"] for k, r in ray_rows.items()} == {
        k: r["status"] for k, r in local_rows.items()
    }
    statuses = sorted(r["status"] for r in ray_rows.values())
    assert statuses == ["error"] + ["ok"] * 3 + ["unsupported"] * 4
    killed = next(r for r in ray_rows.values() if r["status"] == "error")
    assert (killed["precision"], killed["batch_size"], killed["attention"]) == ("bf16", 2, "sdpa")
    assert "worker killed by SIGKILL" in killed["error"]
    for row in ray_rows.values():
        assert row["run_id"] == on_ray.run_id and row["host"] and row["torch"]
        if row["status"] == "ok":
            assert row["median_ms"] > 0 and row["n_samples"] >= 1
    # The two groups were in flight on the cluster at the same time.
    (group_a, sent_a, back_a), (group_b, sent_b, back_b) = sorted(
        executors[-1].timeline
    )  # [0] planned the run
    assert {group_a[2], group_b[2]} == {"fp32", "bf16"}
    assert sent_a < back_b and sent_b < back_a


@needs_ray
@pytest.mark.ray
def test_a_lost_actor_is_retried_once_then_recorded_and_the_group_goes_on(ray_cluster, monkeypatch):
    cells = [
        Cell("tiny", "text_encoder", "cpu", 64, 64, batch, "fp32", "sdpa", "none")
        for batch in (1, 2)
    ]
    monkeypatch.setenv("SDBENCH_INJECT", json.dumps({"bs1 ": ray_executor.ACTOR_KILL}))
    measure = Measure(warmup=0, min_repeats=1, max_repeats=1, max_time_s=0.05)
    results: list[tuple[Cell, dict, dict]] = []
    pool = ray_executor.RayExecutor(measure)
    pool.run(cells, lambda cell, result, env: results.append((cell, result, env)))

    assert [cell.batch_size for cell, _, _ in results] == [1, 2]
    (_, lost, lost_env), (_, measured, env) = results
    assert lost["status"] == "error"
    # The node the actor died on is unknown: its host facts are null, not the driver's.
    assert lost_env and set(lost_env.values()) == {None} and "host" in lost_env
    assert "failed 2 times, each on a fresh actor" in lost["error"]
    assert "ActorDiedError" in lost["error"]
    assert measured["status"] == "ok" and measured["median_ms"] > 0
    assert env["host"] and env["cpu_threads"] >= 1  # the node's host facts and the worker's hello
    assert ray_cluster.is_initialized()  # a cluster the caller started is left running


@needs_ray
@pytest.mark.ray
def test_a_gpu_type_no_node_has_is_refused_before_anything_runs(ray_cluster):
    gpu_cell = Cell("tiny", "unet", "cuda:0", 64, 64, 1, "fp16", "sdpa", "none")
    pool = ray_executor.RayExecutor(Measure(), gpu_type="H100")
    with pytest.raises(BadInput, match="has GPUs of type H100; GPU types there: FAKE"):
        pool.run([gpu_cell], lambda *args: pytest.fail("no cell may run"))
    assert pool.devices() == ["cpu"]
    assert ray_executor.RayExecutor(Measure(), gpu_type="FAKE").devices() == ["cpu", "cuda:0"]
    assert ray_cluster.is_initialized()


def test_without_ray_the_executor_is_a_user_error_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(BadInput, match=r'pip install "sdbench\[ray\]"'):
        ray_executor.RayExecutor(Measure())


def test_without_ray_the_cli_exits_2_with_the_install_hint(run_cli, tiny_suite, tmp_path):
    shadow = tmp_path / "no_ray"
    (shadow / "ray").mkdir(parents=True)
    (shadow / "ray" / "__init__.py").write_text("raise ImportError('ray is not installed')\n")
    code, _, stderr = run_cli(
        "run", tiny_suite(), "--executor", "ray", "--out", tmp_path / "out",
        env={"PYTHONPATH": str(shadow)},
    )  # fmt: skip
    assert code == 2
    assert 'pip install "sdbench[ray]"' in stderr
    assert "Traceback" not in stderr


def test_cells_map_to_the_one_device_ray_gives_an_actor():
    assert ray_executor.node_device("cuda:3") == "cuda:0"
    assert ray_executor.node_device("rocm:1") == "cuda:0"
    assert ray_executor.node_device("cpu") == "cpu"
    with pytest.raises(BadInput, match="--executor local"):
        ray_executor.node_device("mps")
