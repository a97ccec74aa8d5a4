"""The performance model: time per stage from FLOPs and bytes against a GPU's roofs, calibrated.

For each stage (text encoder, one UNet step, VAE decode) the time on a GPU is

    max(flops / (e_c * peak_flops), matmul_bytes / (e_b * bandwidth)) + other_bytes / (e_b * bandwidth)

times a software factor (attention kernel, torch.compile, torch 1.x era, fp32), plus a fixed
overhead per UNet step and per pipeline call. The compute efficiency e_c is calibrated per
architecture family and work regime (a step under 4 TFLOP leaves big GPUs partly idle), shrunk
towards one global value so a family with little data borrows from the rest; e_b and the
overheads are global. Nothing is fitted per GPU, so the model predicts GPUs it never saw from
their datasheet figures alone. Calibration data: sdbench/data/reference_results.csv plus
measured results of families it lacks; analysis.correction corrects each measured GPU itself.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sdbench.analysis.costs import stage_cost
from sdbench.analysis.workload import ImageWorkload
from sdbench.datafiles import read_data_csv
from sdbench.errors import BadInput
from sdbench.gpus import GPU, catalogue_gpu, find_gpu
from sdbench.machine import latest_per_series
from sdbench.store.schema import row_guided
from sdbench.usercache import package_digest, read_entry, write_entry

SMALL_STEP_FLOPS = 4e12  # below this, one UNet step cannot fill a large GPU
METRICS = ("it_per_s", "s_per_call", "a1111_it_per_s")
SOFTWARE_FACTORS = (
    "classic",
    "xformers",
    "coreml",
    "compile_default",
    "compile_autotune",
    "torch1",
    "fp32",
    "tf32",
)
SOFTWARE_KEYS = tuple(f"software:{name}" for name in SOFTWARE_FACTORS)
GLOBALS = ("compute", "bandwidth", "small_step", "step_overhead", "call_overhead", "a1111_overhead")
# A family without calibration data borrows the closest one's (same vendor line, one generation apart).
FAMILY_FALLBACK = {
    "blackwell": "ada",
    "blackwell-dc": "hopper",
    "rdna4": "rdna3",
    "rdna2": "rdna3",
    "cdna3": "cdna2",
    "battlemage": "alchemist",
    "volta": "turing",
}
RIDGE_FAMILY = 0.3
RIDGE_FAMILY_REGIME = 3.0
CALIBRATION_FORMAT = 1  # of the cached reference calibration's file


@dataclass(frozen=True)
class Observation:
    """One calibration figure: a GPU, a workload, a metric and its value, with where it came from."""

    gpu: GPU
    workload: ImageWorkload
    metric: str
    value: float
    source: str


@dataclass
class Calibration:
    """Fitted log-parameters by name; families seen in the data."""

    params: dict[str, float]
    families: frozenset[str]
    regimes: frozenset[str] = field(default_factory=frozenset)

    def family_for(self, family: str) -> str | None:
        seen = family
        while seen not in self.families and seen in FAMILY_FALLBACK:
            seen = FAMILY_FALLBACK[seen]
        return seen if seen in self.families else None


# --- calibration data ----------------------------------------------------------------------


def _software(era: str, attention: str) -> str:
    if attention == "coreml":
        return "coreml"
    return "torch1" if ("torch 1." in era or era.strip() == "2022") else "torch2"


@functools.lru_cache(maxsize=1)
def reference_observations() -> tuple[Observation, ...]:
    """Published results whose GPU is in the catalogue (CPU rows are left out)."""
    frame = read_data_csv("reference_results.csv")
    found = []
    gpus: dict[str, GPU | None] = {}  # name -> catalogue GPU, matched once per name
    for row in frame.to_dict("records"):
        if isinstance(row.get("exclude_reason"), str) and row["exclude_reason"]:
            continue
        if row["gpu"] not in gpus:
            gpus[row["gpu"]] = _catalogue_gpu_or_none(row["gpu"])
        gpu = gpus[row["gpu"]]
        if gpu is None:
            continue
        # PyTorch's defaults run "fp32" convolutions on TF32 tensor cores where they exist.
        precision = "tf32" if row["precision"] == "fp32" and gpu.has_tf32 else row["precision"]
        workload = ImageWorkload(
            model=row["model"], height=int(row["resolution"]), width=int(row["resolution"]),
            batch_size=int(row["batch"]), precision=precision, steps=int(row["steps"]),
            attention=row["attention"], compile=row["compile"], software=_software(row["era"], row["attention"]),
            cfg=row_guided(row.get("cfg")),
        )  # fmt: skip
        found.append(Observation(gpu, workload, row["metric"], float(row["value"]), row["source"]))
    return tuple(found)


def _catalogue_gpu_or_none(name: str) -> GPU | None:
    try:
        return find_gpu(name)
    except BadInput:
        return None


def measured_observations(results: pd.DataFrame | None) -> list[Observation]:
    """The user's results on catalogue GPUs: unet rows as it/s, pipeline rows as s/call.

    One observation per series (a cell on one machine), from its latest run when that ended ok:
    a thousand runs of one cell are one measurement, and must not outweigh the reference rows.
    """
    if results is None or results.empty:
        return []
    found = []
    latest = latest_per_series(results)
    ok = latest[(latest["status"] == "ok") & latest["stage"].isin(["unet", "pipeline"])]
    for row in ok.to_dict("records"):
        gpu = catalogue_gpu(str(row.get("device_name") or ""))
        if gpu is None:
            continue
        workload = ImageWorkload.of_row(row)
        if row["stage"] == "unet" and row.get("it_per_s"):
            found.append(Observation(gpu, workload, "it_per_s", float(row["it_per_s"]), "measured"))
        elif row["stage"] == "pipeline" and row.get("median_ms"):
            found.append(
                Observation(gpu, workload, "s_per_call", float(row["median_ms"]) / 1000, "measured")
            )
    return found


# --- features: everything about a row that does not depend on the parameters -----------------


def _stage_costs(workload: ImageWorkload) -> np.ndarray:
    """3 x 3: rows text_encoder, unet, vae_decode; columns flops, matmul bytes, other bytes."""
    out = []
    for stage in ("text_encoder", "unet", "vae_decode"):
        cost = stage_cost(workload, stage)
        out.append([cost.flops, cost.matmul_bytes, cost.other_bytes])
    return np.array(out, dtype=float)


def _software_flags(workload: ImageWorkload) -> list[float]:
    return [
        float(workload.attention in ("classic", "sliced")),
        float(workload.attention == "xformers"),
        float(workload.software == "coreml"),
        float(workload.compile == "default"),
        float(workload.compile in ("reduce-overhead", "max-autotune")),
        float(workload.software == "torch1"),
        float(workload.precision == "fp32"),
        float(workload.precision == "tf32"),
    ]


@dataclass
class Features:
    """Column arrays for a batch of (GPU, workload, metric) rows."""

    costs: np.ndarray  # n x 3 x 3
    peak_flops: np.ndarray
    bandwidth: np.ndarray
    families: list[str]
    small: np.ndarray
    steps: np.ndarray
    batch: np.ndarray
    flags: np.ndarray  # n x len(SOFTWARE_FACTORS)
    metric: np.ndarray  # index into METRICS
    # Each row's (family, small step) as an index into `regimes`: the model looks a family's
    # parameters up once per regime, not once per row (a fit evaluates it ~1,000 times).
    regimes: list[tuple[str, bool]]
    regime_of_row: np.ndarray

    @classmethod
    def build(cls, rows: list[tuple[GPU, ImageWorkload, str]]) -> Features:
        costs = np.stack([_stage_costs(w) for _, w, _ in rows])
        small = costs[:, 1, 0] < SMALL_STEP_FLOPS
        row_regimes = [(g.family, bool(s)) for (g, _, _), s in zip(rows, small, strict=True)]
        regimes = list(dict.fromkeys(row_regimes))
        return cls(
            costs=costs,
            peak_flops=np.array([g.peak_tflops(w.precision) * 1e12 for g, w, _ in rows]),
            bandwidth=np.array([g.mem_bandwidth_gbs * 1e9 for g, _, _ in rows]),
            families=[g.family for g, _, _ in rows],
            small=small,
            steps=np.array([w.steps for _, w, _ in rows], dtype=float),
            batch=np.array([w.batch_size for _, w, _ in rows], dtype=float),
            flags=np.array([_software_flags(w) for _, w, _ in rows]),
            metric=np.array([METRICS.index(m) for _, _, m in rows]),
            regimes=regimes,
            regime_of_row=np.array([regimes.index(r) for r in row_regimes], dtype=int),
        )


# --- the model ---------------------------------------------------------------------------


def _log_compute_efficiency(
    features: Features, params: dict[str, float], calibration_families: Calibration
) -> np.ndarray:
    out = np.full(len(features.families), params["compute"])
    out += params["small_step"] * features.small
    terms = np.array(
        [
            _family_term(family, small, params, calibration_families)
            for family, small in features.regimes
        ]
    )
    return out + terms[features.regime_of_row] if len(terms) else out


def _family_term(
    family: str, small: bool, params: dict[str, float], calibration_families: Calibration
) -> float:
    """The log compute efficiency a family adds in a regime, beyond the global ones."""
    seen = calibration_families.family_for(family)
    if seen is None:
        # No data for this architecture or a neighbour: assume the least efficient family seen,
        # so an unproven software stack is never recommended on its datasheet alone.
        return min(params.get(f"family:{f}", 0.0) for f in calibration_families.families)
    regime = "small" if small else "large"
    return params.get(f"family:{seen}", 0.0) + params.get(f"regime:{seen}:{regime}", 0.0)


def stage_seconds(features: Features, calibration: Calibration) -> np.ndarray:
    """n x 3 seconds of text encoder, one UNet step and VAE decode (software factors applied)."""
    return _stage_seconds(features, calibration, _software_scale(features, calibration.params))


def _software_scale(features: Features, params: dict[str, float]) -> np.ndarray:
    """Each row's product of its software factors."""
    factors = np.array([params[key] for key in SOFTWARE_KEYS])
    return np.exp(features.flags @ factors)


def _stage_seconds(
    features: Features, calibration: Calibration, software_scale: np.ndarray
) -> np.ndarray:
    params = calibration.params
    compute = np.exp(_log_compute_efficiency(features, params, calibration)) * features.peak_flops
    bandwidth = math.exp(params["bandwidth"]) * features.bandwidth
    flops, matmul_bytes, other_bytes = (features.costs[:, :, k] for k in range(3))
    seconds = (
        np.maximum(flops / compute[:, None], matmul_bytes / bandwidth[:, None])
        + other_bytes / bandwidth[:, None]
    )
    return seconds * software_scale[:, None]


def predict_metric(features: Features, calibration: Calibration) -> np.ndarray:
    """Each row's metric value: it/s, seconds per call or A1111 it/s."""
    params = calibration.params
    software_scale = _software_scale(features, params)
    seconds = _stage_seconds(features, calibration, software_scale)
    step_s = seconds[:, 1] + math.exp(params["step_overhead"]) * software_scale
    call_s = features.steps * step_s + seconds[:, 0] + seconds[:, 2]
    pipeline_s = call_s + math.exp(params["call_overhead"])
    a1111_s = call_s + math.exp(params["a1111_overhead"])
    return np.choose(
        features.metric, [1.0 / step_s, pipeline_s, features.steps * features.batch / a1111_s]
    )


# --- calibration -----------------------------------------------------------------------------


def _parameter_names(features: Features) -> list[str]:
    families = sorted(set(features.families))
    names = list(GLOBALS) + list(SOFTWARE_KEYS) + [f"family:{f}" for f in families]
    names += [f"regime:{f}:{r}" for f in families for r in ("small", "large")]
    return names


def _initial(name: str) -> float:
    return {"compute": math.log(0.3), "bandwidth": math.log(0.5), "step_overhead": math.log(0.005),
            "call_overhead": math.log(0.3), "a1111_overhead": math.log(0.5)}.get(name, 0.0)  # fmt: skip


def calibrate(observations: list[Observation]) -> Calibration:
    """Fit the parameters to the observations by least squares on log values, with shrinkage."""
    # Imported here: ~0.6 s that a process reading the cached reference calibration never needs.
    from scipy.optimize import least_squares
    from threadpoolctl import threadpool_limits

    usable = [o for o in observations if o.metric in METRICS]
    if not usable:
        raise BadInput(
            "No calibration data: the reference results file is empty or has no known GPUs."
        )
    features = Features.build([(o.gpu, o.workload, o.metric) for o in usable])
    observed = np.log([o.value for o in usable])
    names = _parameter_names(features)
    families = frozenset(features.families)
    ridge = np.array([_ridge(n) for n in names])

    def residuals(vector: np.ndarray) -> np.ndarray:
        calibration = Calibration(dict(zip(names, vector, strict=True)), families)
        predicted = np.log(np.maximum(predict_metric(features, calibration), 1e-12))
        return np.concatenate([predicted - observed, ridge * vector])

    initial = np.array([_initial(n) for n in names])
    # One BLAS thread: the fit's matrices are ~160 x 40, so OpenBLAS's threads only spin (4x the
    # CPU time on a busy 2-core machine), and with them the fit's last digits followed the
    # machine's core count.
    with threadpool_limits(limits=1, user_api="blas"):
        fit = least_squares(
            residuals, initial, method="trf", loss="soft_l1", f_scale=0.2, max_nfev=2000
        )
    return Calibration(dict(zip(names, fit.x, strict=True)), families)


def _ridge(name: str) -> float:
    if name.startswith("family:"):
        return math.sqrt(RIDGE_FAMILY)
    if name.startswith("regime:"):
        return math.sqrt(RIDGE_FAMILY_REGIME)
    if name.startswith("software:"):
        return 0.1
    return 0.0


@functools.lru_cache(maxsize=1)
def reference_calibration() -> Calibration:
    """The model calibrated on the shipped reference results.

    Cached per process and on disk (`calibration-*.json` in the user cache), keyed on the
    package's files and the numpy and scipy versions: a process that finds it skips the fit and
    never imports scipy.optimize. A missing, damaged or unwritable cache only means a refit.
    """
    key = _calibration_key()
    name = f"calibration-{key['digest'][:24]}.json" if key else None
    cached = _read_calibration(name, key) if name else None
    if cached is not None:
        return cached
    calibration = calibrate(list(reference_observations()))
    if name:
        write_entry(name, key, {
            "params": {name: float(value) for name, value in calibration.params.items()},
            "families": sorted(calibration.families),
            "regimes": sorted(calibration.regimes),
        })  # fmt: skip
    return calibration


def _calibration_key() -> dict | None:
    import scipy  # the package alone (~10 ms): its version, not scipy.optimize

    try:
        return {
            "format": CALIBRATION_FORMAT,
            "digest": package_digest(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        }
    except OSError:
        return None  # a package file we cannot read: no key, so no cache (fit every time)


def _read_calibration(name: str, key: dict) -> Calibration | None:
    """The cached calibration `name` if it is well formed and made under `key`; else None."""
    stored = read_entry(name, key)
    if stored is None:
        return None  # none yet, damaged, or another key's: fit again
    try:
        params = {str(n): _stored_float(v) for n, v in stored["params"].items()}
        families = frozenset(_stored_str(f) for f in stored["families"])
        regimes = frozenset(_stored_str(r) for r in stored["regimes"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # edited or foreign fields: fit again
    if not set(GLOBALS + SOFTWARE_KEYS) <= params.keys():
        return None
    return Calibration(params, families, regimes)


def _stored_float(value: object) -> np.float64:
    # JSON writes a float as its repr, which reads back to the same 64 bits; np.float64, as a fit.
    if type(value) is not float:
        raise TypeError(f"not a float: {value!r}")
    return np.float64(value)


def _stored_str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


def calibration_for(results: pd.DataFrame | None) -> Calibration:
    """Reference calibration, refitted with the user's rows of families the published data lacks.

    Rows of a family the reference data covers do not move it: one user's card (its clocks,
    cooling, driver) would drag every card of its family. They correct their own GPU instead
    (analysis.correction); a family new to the model learns from them, so its siblings do too.
    """
    reference = reference_calibration()
    measured = [o for o in measured_observations(results) if o.gpu.family not in reference.families]
    if not measured:
        return reference
    return calibrate(list(reference_observations()) + measured)


def predict_stage_seconds(
    gpu: GPU, workload: ImageWorkload, calibration: Calibration
) -> dict[str, float]:
    """Seconds of each stage of one call on `gpu`: text_encoder, unet_step (overhead in), vae_decode, call."""
    features = Features.build([(gpu, workload, "it_per_s")])
    seconds = stage_seconds(features, calibration)[0]
    step_s = 1.0 / float(predict_metric(features, calibration)[0])
    call_s = (
        workload.steps * step_s
        + seconds[0]
        + seconds[2]
        + math.exp(calibration.params["call_overhead"])
    )
    return {
        "text_encoder": float(seconds[0]),
        "unet_step": step_s,
        "vae_decode": float(seconds[2]),
        "call": call_s,
    }
