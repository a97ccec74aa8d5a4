"""How many GPUs a service needs: per catalogue GPU, the batch-latency curve (measured or
predicted), the highest rate one GPU sustains within a p99 SLO, the GPUs a target rate needs,
and what that costs in dollars and joules per 1000 images at that load."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from sdbench.analysis.correction import GpuCorrection, fit_corrections
from sdbench.analysis.perfmodel import Calibration, calibration_for
from sdbench.analysis.predict import (
    POWER_SHARE_OF_TDP,
    WorkloadEvidence,
    predict,
    workload_evidence,
)
from sdbench.analysis.workload import CostAssumptions, ImageWorkload
from sdbench.errors import BadInput
from sdbench.gpus import GPU, catalogue_name, load_catalogue
from sdbench.serving.simulate import LatencyCurve, SimResult, max_rate_within_slo, simulate
from sdbench.store.schema import guided

RATE_UNITS_S = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "hour": 3600.0, "day": 86400.0}
SEARCH_REQUESTS = 5_000  # per simulated rate while searching: p99 rests on the slowest 50
REPORT_REQUESTS = 20_000  # for the p50/p99 reported at the target rate
MAX_SEARCH_STEPS = 60
EVEN_SPLIT_ABOVE = 2_000  # GPUs: beyond this the pool is planned as independent GPUs
COLUMNS = [
    "gpu", "gpus_needed", "max_rate_per_gpu", "p50_s", "p99_s", "utilisation", "mean_batch",
    "max_batch", "cloud_usd_per_h", "usd_per_h", "price_usd", "purchase_usd", "usd_per_1000_images",
    "energy_per_1000_images_j", "source", "note",
]  # fmt: skip


def parse_rate(text: str) -> tuple[float, str]:
    """Requests per second and the unit written, from "2000/h", "30/min", "0.5/s", "1e4/day"."""
    match = re.fullmatch(r"\s*([0-9.eE+-]+)\s*(?:/\s*([A-Za-z]+))?\s*", str(text))
    unit = (match.group(2) or "s").lower() if match else ""
    try:
        value = float(match.group(1)) if match else math.nan
    except ValueError:
        value = math.nan
    if unit not in RATE_UNITS_S or not math.isfinite(value):
        raise BadInput(
            f'Rate "{text}" is not a rate. Write a number of requests per unit: 2000/h, 30/min, '
            f"0.5/s or 10000/day (units: {', '.join(RATE_UNITS_S)})."
        )
    if value <= 0:
        raise BadInput(f'Rate "{text}" must be above zero requests, e.g. --rate 2000/h.')
    return value / RATE_UNITS_S[unit], unit


@dataclass(frozen=True)
class Policy:
    """What the service promises and how it batches."""

    slo_p99_s: float
    max_batch: int = 4
    max_wait_s: float = 0.1

    def __post_init__(self) -> None:
        if not self.slo_p99_s > 0 or not math.isfinite(self.slo_p99_s):
            raise BadInput(
                f"The p99 SLO must be a positive number of seconds, got {self.slo_p99_s}."
            )
        if not 1 <= self.max_batch <= 64:
            raise BadInput(
                f"max_batch must be from 1 to 64 requests per batch, got {self.max_batch}. "
                "Use 1 for no batching."
            )
        if not 0 <= self.max_wait_s <= 3600:
            raise BadInput(
                f"max_wait must be from 0 to 3600000 ms, got {self.max_wait_s * 1000:g}."
            )


@dataclass(frozen=True)
class GpuCurve:
    """One GPU's batch-latency curve for a workload, with its energy per batch and provenance."""

    curve: LatencyCurve
    energy_per_batch_j: tuple[float, ...]
    source: str  # measured | predicted | measured+predicted


def gpu_curve(
    gpu: GPU,
    workload: ImageWorkload,
    max_batch: int,
    results: pd.DataFrame | None,
    calibration: Calibration,
    served_rows: pd.DataFrame | None = None,
    corrections: dict[str, GpuCorrection] | None = None,
    evidence: dict[int, WorkloadEvidence] | None = None,
) -> GpuCurve | None:
    """Seconds and joules of one call of 1..max_batch images, as far as the GPU holds them.

    A serve run of the workload on that GPU gives the times its worker measured per batch size;
    other sizes are `predict`'s answer, where measured pipeline rows of that GPU win over the
    performance model. None when not even one image fits. `evidence` (batch size ->
    predict.workload_evidence) saves reading `results` again for every GPU.
    """
    served = served_curve(served_rows, workload, gpu)
    seconds, energy, sources = [], [], set()
    for batch in range(1, max_batch + 1):
        if batch in served:
            seconds.append(served[batch][0])
            energy.append(served[batch][1])
            sources.add("measured")
            continue
        batch_evidence = evidence.get(batch) if evidence else None
        answer = predict(
            gpu, workload.but(batch_size=batch), results, calibration, corrections, batch_evidence
        )
        if not answer.fits:
            break
        seconds.append(float(answer.image_s))
        energy.append(float(answer.energy_per_image_j) * batch)
        sources.add(answer.source)
    if not seconds:
        return None
    source = sources.pop() if len(sources) == 1 else "measured+predicted"
    return GpuCurve(LatencyCurve(tuple(seconds)), tuple(energy), source)


def served_curve(
    results: pd.DataFrame | None, workload: ImageWorkload, gpu: GPU
) -> dict[int, tuple[float, float]]:
    """Batch size -> (seconds, joules) from the newest ok `serve` row of this workload on `gpu`:
    the times its worker measured for each batch size before serving. Empty when there is none."""
    if results is None or results.empty or "batch_curve_ms" not in results:
        return {}
    rows = results[
        (results["stage"] == "serve") & (results["status"] == "ok")
        & (results["model"] == workload.model) & (results["height"] == workload.height)
        & (results["width"] == workload.width) & (results["precision"] == workload.precision)
        & (results["attention"].fillna("sdpa") == workload.attention)
        & (results["steps"] == workload.steps) & (guided(results) == workload.cfg)
        & results["batch_curve_ms"].notna()
    ]  # fmt: skip
    rows = rows[rows["device_name"].map(lambda name: catalogue_name(str(name))) == gpu.name]
    if rows.empty:
        return {}
    newest = rows.sort_values("started_at").iloc[-1]
    per_image_j = newest.get("energy_per_image_j")
    curve = {}
    for batch, milliseconds in enumerate(newest["batch_curve_ms"], start=1):
        joules = per_image_j * batch if per_image_j == per_image_j and per_image_j else None
        seconds = milliseconds / 1000.0
        curve[batch] = (
            seconds,
            joules if joules is not None else gpu.tdp_w * POWER_SHARE_OF_TDP * seconds,
        )
    return curve


def gpus_needed(curve: LatencyCurve, rate_rps: float, per_gpu_rps: float, policy: Policy) -> int:
    """The fewest GPUs behind one queue whose simulated p99 at `rate_rps` meets the SLO.

    One queue pools GPUs, so ceil(rate / per-GPU rate) is an upper bound to bisect under; the
    floor is what keeps the queue bounded at all.
    """
    high = max(1, math.ceil(rate_rps / per_gpu_rps))
    if high > EVEN_SPLIT_ABOVE:
        return high
    low = max(1, math.floor(rate_rps / curve.capacity_rps()))
    for _ in range(MAX_SEARCH_STEPS):  # sampling noise at the bound: step up
        if _meets(curve, rate_rps, high, policy):
            break
        high += max(1, high // 10)
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if _meets(curve, rate_rps, middle, policy) else (middle + 1, high)
    return high


def _at_load(
    curve: LatencyCurve,
    rate_rps: float,
    servers: int,
    policy: Policy,
    requests: int = SEARCH_REQUESTS,
) -> SimResult:
    return simulate(
        curve, rate_rps=rate_rps, requests=max(requests, 100 * servers),
        max_batch=curve.max_batch, max_wait_s=policy.max_wait_s, servers=servers,
    )  # fmt: skip


def usable_batches(curve: LatencyCurve, policy: Policy) -> LatencyCurve:
    """The curve cut to the batch sizes a sane server forms: one whose time plus the batching
    wait alone breaks the SLO is never worth forming (batch 1 is always kept)."""
    keep = 1
    while keep < min(policy.max_batch, curve.max_batch):
        if curve.seconds(keep + 1) + policy.max_wait_s > policy.slo_p99_s:
            break
        keep += 1
    return LatencyCurve(curve.mean_s[:keep], curve.variation, curve.samples_s[:keep])


def _meets(curve: LatencyCurve, rate_rps: float, servers: int, policy: Policy) -> bool:
    if rate_rps >= servers * curve.capacity_rps():
        return False
    return _at_load(curve, rate_rps, servers, policy).percentile_s(99) <= policy.slo_p99_s


@dataclass(frozen=True)
class Costs:
    """How money is counted: cloud hours, or the purchase spread over its service life plus power."""

    cloud: bool = False
    purchase: CostAssumptions = CostAssumptions(hours_per_day=24.0)  # a service runs all day
    budget_usd: float | None = None  # whole fleet: purchase USD, or USD per hour with `cloud`


def capacity_row(gpu: GPU, found: GpuCurve, rate_rps: float, policy: Policy, costs: Costs) -> dict:
    """One GPU's answer: rate per GPU within the SLO, GPUs needed, latency and cost at the load."""
    curve = usable_batches(found.curve, policy)
    max_batch = curve.max_batch
    row = {"gpu": gpu.name, "max_batch": max_batch, "source": found.source, "note": ""}
    row.update(price_usd=gpu.price_usd, cloud_usd_per_h=gpu.cloud_usd_per_h)
    per_gpu = max_rate_within_slo(
        curve, policy.slo_p99_s, max_batch=max_batch, max_wait_s=policy.max_wait_s,
        requests=SEARCH_REQUESTS,
    )  # fmt: skip
    row["max_rate_per_gpu"] = per_gpu
    if per_gpu <= 0:
        row["note"] = f"one image alone takes {curve.seconds(1):.3g} s: over the SLO"
        return row
    needed, load = _confirmed(
        curve, rate_rps, gpus_needed(curve, rate_rps, per_gpu, policy), policy
    )
    if needed > EVEN_SPLIT_ABOVE:
        row["note"] = f"planned as {needed} independent GPUs"
    summary = load.summary()
    energy = found.energy_per_batch_j
    per_image_j = sum(energy[b - 1] for b in load.batch_sizes) / len(load.latency_s)
    row.update(
        gpus_needed=needed, p50_s=summary["p50_s"], p99_s=summary["p99_s"],
        utilisation=summary["utilisation"], mean_batch=summary["mean_batch"],
        energy_per_1000_images_j=1000 * per_image_j,
    )  # fmt: skip
    row.update(_money(gpu, needed, rate_rps, per_image_j, costs))
    return row


def _confirmed(
    curve: LatencyCurve, rate_rps: float, needed: int, policy: Policy
) -> tuple[int, SimResult]:
    """The GPU count and its simulation at the longer, reported length: the search's shorter
    runs can pass a count whose p99 then lands just over the SLO, so step up until it holds."""
    for _ in range(MAX_SEARCH_STEPS):
        if needed > EVEN_SPLIT_ABOVE:  # too many to simulate as one pool: each takes a share
            load = _at_load(curve, rate_rps / needed, 1, policy, REPORT_REQUESTS)
        else:
            load = _at_load(curve, rate_rps, needed, policy, REPORT_REQUESTS)
        if load.percentile_s(99) <= policy.slo_p99_s:
            break
        needed += 1
    return needed, load


def _money(gpu: GPU, needed: int, rate_rps: float, per_image_j: float, costs: Costs) -> dict:
    """$/h of the fleet (cloud) or its purchase, and $ per 1000 images at the target rate."""
    images_per_h = rate_rps * 3600
    if costs.cloud:
        if gpu.cloud_usd_per_h is None:
            return {"usd_per_h": None, "purchase_usd": None, "usd_per_1000_images": None}
        usd_per_h = needed * gpu.cloud_usd_per_h
        return {"usd_per_h": usd_per_h, "purchase_usd": None,
                "usd_per_1000_images": 1000 * usd_per_h / images_per_h}  # fmt: skip
    price = gpu.price_usd
    if price is None or math.isnan(price):
        return {"usd_per_h": None, "purchase_usd": None, "usd_per_1000_images": None}
    purchase = needed * price
    per_image = purchase / (costs.purchase.service_hours * images_per_h)
    per_image += costs.purchase.electricity_usd(per_image_j)
    return {"usd_per_h": None, "purchase_usd": purchase, "usd_per_1000_images": 1000 * per_image}


def capacity(
    workload: ImageWorkload,
    rate_rps: float,
    policy: Policy,
    costs: Costs | None = None,
    results: pd.DataFrame | None = None,
    gpus: Sequence[GPU] | None = None,
    calibration: Calibration | None = None,
    corrections: dict[str, GpuCorrection] | None = None,
) -> pd.DataFrame:
    """One row per catalogue GPU: cheapest per 1000 images first, GPUs that cannot serve last.

    Raises BadInput when no GPU can meet the SLO at all (it is below one image's latency).
    """
    costs = costs or Costs()
    if results is not None and "stage" in results:  # serve rows feed served_curve only
        served = results[results["stage"] == "serve"]
        results = results[results["stage"] != "serve"]
    else:
        served = None
    calibration = calibration or calibration_for(results)
    corrections = fit_corrections(results, calibration) if corrections is None else corrections
    evidence = {
        batch: workload_evidence(results, workload.but(batch_size=batch))
        for batch in range(1, policy.max_batch + 1)
    }
    found = {}
    for gpu in gpus if gpus is not None else load_catalogue():
        if not (costs.cloud and gpu.cloud_usd_per_h is None):
            found[gpu] = gpu_curve(
                gpu, workload, policy.max_batch, results, calibration, served, corrections, evidence
            )
    held = {gpu: curve for gpu, curve in found.items() if curve is not None}
    if not held:
        raise BadInput(
            "No GPU asked about holds one image of this workload in its memory. Lower the "
            "resolution or the precision, or ask about GPUs with more memory."
        )
    fastest = min(held, key=lambda gpu: held[gpu].curve.seconds(1))
    if held[fastest].curve.seconds(1) > policy.slo_p99_s:
        raise BadInput(
            f"A p99 of {policy.slo_p99_s:g} s is below one image's latency on every GPU asked "
            f"about (fastest: {fastest.name} at {held[fastest].curve.seconds(1):.3g} s). Raise "
            "--p99, or ask for fewer steps or a smaller resolution."
        )
    rows = [capacity_row(gpu, curve, rate_rps, policy, costs) for gpu, curve in held.items()]
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    table[["gpus_needed", "max_batch"]] = table[["gpus_needed", "max_batch"]].astype("Int64")
    return (
        _within_budget(table, costs)
        .sort_values(["usd_per_1000_images", "gpus_needed"], na_position="last", kind="stable")
        .reset_index(drop=True)
    )


def _within_budget(table: pd.DataFrame, costs: Costs) -> pd.DataFrame:
    if costs.budget_usd is None:
        return table
    spent = table["usd_per_h"] if costs.cloud else table["purchase_usd"]
    return table[spent.notna() & (spent <= costs.budget_usd)]
