"""`sdbench capacity`: rates, GPUs needed within a p99 SLO, measured curves first, bad input."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from sdbench.analysis.workload import ImageWorkload
from sdbench.cli import main
from sdbench.errors import BadInput
from sdbench.gpus import find_gpu
from sdbench.serving.capacity import Costs, Policy, capacity, gpus_needed, parse_rate
from sdbench.serving.simulate import LatencyCurve, simulate


@pytest.mark.parametrize(
    ("text", "per_second", "unit"),
    [("2000/h", 2000 / 3600, "h"), ("30/min", 0.5, "min"), ("0.5/s", 0.5, "s"), ("2", 2.0, "s"),
     ("86400/day", 1.0, "day"), ("1e3 / hour", 1000 / 3600, "hour")],
)  # fmt: skip
def test_a_rate_is_read_in_requests_per_second_from_any_unit(text, per_second, unit):
    assert parse_rate(text) == (pytest.approx(per_second), unit)


@pytest.mark.parametrize("text", ["0/h", "-3/s", "5/fortnight", "fast", "nan/s", "inf/h"])
def test_a_rate_that_is_not_positive_or_has_an_unknown_unit_is_refused(text):
    with pytest.raises(BadInput):
        parse_rate(text)


def test_gpus_needed_is_the_fewest_whose_simulated_p99_meets_the_slo():
    curve = LatencyCurve((2.0, 3.0))
    policy = Policy(slo_p99_s=6.0, max_batch=2, max_wait_s=0.1)
    needed = gpus_needed(curve, 5.0, per_gpu_rps=0.3, policy=policy)

    def p99(servers):
        return simulate(curve, rate_rps=5.0, requests=10_000, max_batch=2, max_wait_s=0.1,
                        servers=servers).percentile_s(99)  # fmt: skip

    assert p99(needed) <= 6.0 < p99(needed - 1)
    assert needed < math.ceil(5.0 / 0.3)  # one queue pools the GPUs


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["capacity", *args])
    except SystemExit as exit_:  # argparse refusing a flag's value
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_capacity_json_lists_gpus_needed_rate_latency_cost_and_source(capsys):
    code, out, _ = run_cli(
        capsys, "--model", "sdxl", "--resolution", "1024", "--rate", "2000/h", "--p99", "10",
        "--gpu", "h100-sxm", "4090", "t4", "--format", "json", "--results",
    )  # fmt: skip
    assert code == 0
    rows = {row["gpu"]: row for row in json.loads(out)}
    assert set(rows) == {"H100 SXM5 80GB", "GeForce RTX 4090", "Tesla T4"}
    h100 = rows["H100 SXM5 80GB"]
    assert isinstance(h100["gpus_needed"], int) and h100["gpus_needed"] >= 1
    assert h100["p99_s"] <= 10 and h100["p50_s"] <= h100["p99_s"]
    assert h100["max_rate_per_gpu"] > 0 and h100["source"] == "predicted"
    # purchase spread over 3 years of 24 h days, plus electricity, per 1000 images at 2000/h
    hours = 3 * 365 * 24
    spread = h100["purchase_usd"] / (hours * 2000) * 1000
    electricity = h100["energy_per_1000_images_j"] / 3.6e6 * 0.15
    assert h100["usd_per_1000_images"] == pytest.approx(spread + electricity)
    assert h100["purchase_usd"] == h100["gpus_needed"] * find_gpu("h100-sxm").price_usd
    t4 = rows["Tesla T4"]  # one SDXL image takes longer than 10 s on a T4
    assert t4["gpus_needed"] is None and "over the SLO" in t4["note"]


def test_capacity_in_the_cloud_costs_the_fleets_hours(capsys):
    code, out, _ = run_cli(
        capsys, "--model", "sd15", "--resolution", "512", "--rate", "30/min", "--p99", "5",
        "--gpu", "a10g", "--cloud", "--format", "json", "--results",
    )  # fmt: skip
    assert code == 0
    (row,) = json.loads(out)
    assert row["usd_per_h"] == pytest.approx(row["gpus_needed"] * find_gpu("a10g").cloud_usd_per_h)
    assert row["usd_per_1000_images"] == pytest.approx(1000 * row["usd_per_h"] / (30 * 60))


def test_capacity_table_fits_100_columns_and_says_what_was_asked(capsys):
    code, out, _ = run_cli(
        capsys, "--model", "sdxl", "--rate", "2000/h", "--p99", "10", "--gpu", "h100-sxm", "l40s",
        "--results",
    )  # fmt: skip
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "H100 SXM5 80GB" in out and "max/GPU /h" in out and "p99 <= 10 s" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--rate", "0/h", "--p99", "10"], "above zero"),
        (["--rate", "2000/week", "--p99", "10"], "units"),
        (["--rate", "2000/h", "--p99", "0.5"], "below one image's latency"),
    ],
)
def test_capacity_bad_input_exits_2_with_one_paragraph(capsys, args, says):
    code, out, err = run_cli(capsys, "--model", "sdxl", "--gpu", "h100-sxm", "--results", *args)
    assert code == 2 and out == ""
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_capacity_refuses_max_batch_0_with_exit_2_and_no_traceback(capsys):
    code, out, err = run_cli(
        capsys, "--model", "sdxl", "--rate", "2000/h", "--p99", "10", "--max-batch", "0"
    )
    assert code == 2 and out == ""
    assert "--max-batch" in err and "got 0" in err and "Traceback" not in err


@pytest.mark.parametrize("budget", ["0", "-5", "nan"])
def test_a_budget_not_above_zero_is_refused_by_the_parser_in_one_paragraph(capsys, budget):
    code, out, err = run_cli(capsys, "--rate", "2000/h", "--p99", "10", "--budget", budget)
    assert code == 2 and out == "" and "Traceback" not in err
    assert "\n\n" not in err.strip()  # argparse's usage and its one error line
    error_line = err.strip().splitlines()[-1]
    assert error_line.endswith(
        f"--budget: must be a number above 0 and at most 1e+12, got {budget}"
    )


def test_a_policy_without_batches_is_refused():
    with pytest.raises(BadInput, match="max_batch must be from 1"):
        Policy(slo_p99_s=10.0, max_batch=0)


def measured_pipeline_rows(gpu_name: str, seconds_by_batch: dict[int, float]) -> pd.DataFrame:
    """Pipeline rows of SDXL 1024, 50 steps, cfg, fp16 on `gpu_name` at the given batch sizes."""
    return pd.DataFrame(
        [
            {"status": "ok", "model": "sdxl", "stage": "pipeline", "device": "cuda:0",
             "device_name": gpu_name, "height": 1024, "width": 1024, "batch_size": batch,
             "precision": "fp16", "attention": "sdpa", "compile": "none", "cfg": True, "steps": 50,
             "median_ms": 1000 * seconds, "it_per_s": 50 / seconds, "peak_mem_reserved_bytes": 2e10,
             "avg_power_w": 600.0, "energy_per_image_j": 600.0 * seconds / batch}
            for batch, seconds in seconds_by_batch.items()
        ]
    )  # fmt: skip


def test_measured_batch_latencies_win_over_the_model_and_are_marked():
    gpu = find_gpu("h100-sxm")
    workload = ImageWorkload.usual("sdxl", 1024, 1024, precision="fp16")
    policy = Policy(slo_p99_s=10.0, max_batch=2, max_wait_s=0.1)
    both = measured_pipeline_rows("NVIDIA H100 80GB HBM3", {1: 2.0, 2: 3.5})
    table = capacity(workload, 1.0, policy, Costs(), both, gpus=[gpu])
    row = table.iloc[0]
    assert row["source"] == "measured"
    # measured curve: 2 s alone, 3.5 s for two -> at most 2 / 3.5 requests/s per GPU
    assert row["max_rate_per_gpu"] < 2 / 3.5
    assert row["p50_s"] >= 2.0
    only_one = measured_pipeline_rows("NVIDIA H100 80GB HBM3", {1: 2.0})
    mixed = capacity(workload, 1.0, policy, Costs(), only_one, gpus=[gpu]).iloc[0]
    assert mixed["source"] == "measured+predicted"


def test_a_serve_runs_measured_batch_times_win_for_its_gpu():
    gpu = find_gpu("h100-sxm")
    workload = ImageWorkload.usual("sdxl", 1024, 1024, precision="fp16")
    serve_row = {
        "status": "ok", "model": "sdxl", "stage": "serve", "device": "cuda:0",
        "device_name": "NVIDIA H100 80GB HBM3", "height": 1024, "width": 1024, "batch_size": 2,
        "precision": "fp16", "attention": "sdpa", "compile": "none", "cfg": True, "steps": 50,
        "batch_curve_ms": [2000.0, 3500.0], "energy_per_image_j": 1200.0,
        "started_at": "2026-12-01T10:00:00Z",
    }  # fmt: skip
    policy = Policy(slo_p99_s=10.0, max_batch=2, max_wait_s=0.1)
    row = capacity(workload, 1.0, policy, Costs(), pd.DataFrame([serve_row]), gpus=[gpu]).iloc[0]
    assert row["source"] == "measured"
    assert row["max_rate_per_gpu"] < 2 / 3.5 and row["p50_s"] >= 2.0
    # energy per image at that load comes from the serve row: 1200 J whatever the batch
    assert row["energy_per_1000_images_j"] == pytest.approx(1_200_000)


def test_capacity_with_free_electricity_costs_the_purchase_alone_as_recommend_does(capsys):
    base = ["--model", "sd15", "--rate", "2000/h", "--p99", "10", "--gpu", "4090", "--results"]
    code, out, err = run_cli(capsys, *base, "--electricity", "0", "--format", "json")
    assert (code, err) == (0, "")
    (row,) = json.loads(out)
    spread = row["purchase_usd"] / (3 * 365 * 24 * 2000) * 1000  # 3 years of 24 h days
    assert row["energy_per_1000_images_j"] > 0
    assert row["usd_per_1000_images"] == pytest.approx(spread)
    assert main(["recommend", "--model", "sd15", "--electricity", "0", "--format", "json"]) == 0


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--electricity", "-0.1"), ("--lifetime-years", "0"), ("--hours-per-day", "0"),
     ("--hours-per-day", "25")],
)  # fmt: skip
def test_capacity_refuses_a_cost_flag_out_of_range_with_exit_2(capsys, flag, value):
    code, out, err = run_cli(capsys, "--model", "sd15", "--rate", "1/s", "--p99", "10", flag, value)
    assert code == 2 and out == ""
    assert f"argument {flag}: must be a number" in err and "Traceback" not in err
