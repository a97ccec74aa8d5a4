"""Which machine a result row ran on: a short stable id of what makes results comparable.

`cell_id` says *what* was measured (the configuration, with `device = "cuda:0"`), not *on what*.
Two hosts, two GPU models or two driver versions running the same cell are different series,
so every row also carries `machine_id`: a hash of the device's name, the host's GPU count, the
host name and the software that changes speed (torch, CUDA/ROCm, driver). `machine` is the
readable label (`h100-80gb-hbm3·node3`). A *series* is (`machine_id`, `cell_id`); every "latest
row per cell" keys on it (`latest_per_series`).

The id is computed from the row's own columns, so files written before the column existed get
the same id on read as a new run on the same machine would write.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping

import pandas as pd

from sdbench.errors import BadInput

IDENTITY_COLUMNS = ("device_name", "gpu_count", "host", "torch", "cuda", "driver")
SERIES_KEY = ["machine_id", "cell_id"]
_VENDOR_WORDS = re.compile(r"\b(nvidia|geforce|amd|radeon|intel\(r\)|intel|\(r\)|\(tm\)|cpu)\b")


def _text(value: object) -> str:
    """One identity field as text: null and NaN are empty, integral numbers print as integers."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def machine_id(row: Mapping) -> str:
    """12 hex digits identifying (device name, GPU count, host, torch, CUDA/ROCm, driver)."""
    parts = [_text(row.get(name)) for name in IDENTITY_COLUMNS]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


def device_slug(device_name: object) -> str:
    """ "NVIDIA H100 80GB HBM3" -> "h100-80gb-hbm3": the product, lowercase, vendor words dropped."""
    text = _VENDOR_WORDS.sub(" ", _text(device_name).lower())
    slug = re.sub(r"[^a-z0-9.]+", "-", text).strip("-")
    return slug[:24].rstrip("-") or "unknown-device"


def short_host(host: object) -> str:
    """The host's first name label ("node3.cluster.example" -> "node3"); "unknown-host" if none."""
    return _text(host).split(".")[0] or "unknown-host"


def machine_label(row: Mapping) -> str:
    """A short readable label: device slug and short host name."""
    return f"{device_slug(row.get('device_name'))}·{short_host(row.get('host'))}"


def with_machine_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with `machine_id` and `machine` computed from each row's identity columns.

    Always recomputed, never trusted from the file: a run file copied and edited by hand (another
    host, another device) must not keep the id of the machine it was copied from. Computed once
    per distinct identity, so a hundred thousand rows from a hundred machines cost a hundred hashes.
    """
    identity = pd.DataFrame(
        {name: frame.get(name) for name in IDENTITY_COLUMNS},
        index=frame.index,
    )
    frame = frame.copy()
    if frame.empty:
        frame["machine_id"], frame["machine"] = pd.Series(dtype=object), pd.Series(dtype=object)
        return frame
    texts = identity.astype("string").fillna("\0")
    keys = texts.iloc[:, 0].str.cat([texts[c] for c in texts.columns[1:]], sep="\x1f")
    first = identity.assign(_key=keys).drop_duplicates("_key").set_index("_key")
    ids = {key: machine_id(row) for key, row in first.iterrows()}
    labels = {key: machine_label(row) for key, row in first.iterrows()}
    frame["machine_id"] = keys.map(ids)
    frame["machine"] = keys.map(labels)
    return frame


def with_machine(row: dict) -> dict:
    """A row about to be written, with its `machine_id` and `machine` (kept if already set)."""
    return {
        **row,
        "machine_id": row.get("machine_id") or machine_id(row),
        "machine": row.get("machine") or machine_label(row),
    }


def latest_per_series(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per series (`machine_id`, `cell_id`): the one from the latest run.

    Latest is by `started_at`, then `run_id`; rows without a start time count as oldest. A row
    without a `cell_id` (hand-made input) is a series of its own.
    """
    frame = ensure_machine_columns(frame)
    if frame.empty:
        return frame.copy()
    # Sort and deduplicate a few key columns, then take the rows once: callers (predict, per
    # catalogue GPU) call this on a fleet's whole frame, so a copy of every column per step shows.
    cells = frame["cell_id"] if "cell_id" in frame else pd.Series(None, index=frame.index)
    unique = pd.Series([f"\0row{i}" for i in range(len(frame))], index=frame.index)
    keys = pd.DataFrame(
        {
            "order": pd.to_datetime(frame["started_at"], utc=True)
            if "started_at" in frame
            else None,
            "run": frame.get("run_id"),
            "machine": frame["machine_id"],
            "cell": cells.astype(object).fillna(unique),  # a float (all-null) column takes text
            "position": range(len(frame)),
        },
        index=frame.index,
    )
    keys = keys.sort_values(["order", "run"], na_position="first", kind="stable")
    latest = keys.drop_duplicates(["machine", "cell"], keep="last")["position"]
    return frame.take(latest.to_numpy()).reset_index(drop=True)


def runs_per_series(frame: pd.DataFrame) -> pd.Series:
    """How many distinct runs each series (`machine_id`, `cell_id`) appears in."""
    frame = ensure_machine_columns(frame)
    return frame.groupby(SERIES_KEY, sort=False)["run_id"].nunique(dropna=False)


def series_id(frame: pd.DataFrame) -> pd.Series:
    """One string per row naming its series: "<machine_id>/<cell_id>"."""
    frame = ensure_machine_columns(frame)
    return frame["machine_id"].astype(str) + "/" + frame["cell_id"].astype(str)


def machine_names(frame: pd.DataFrame) -> dict[str, str]:
    """machine_id -> label, unique: labels shared by two ids get the id's first digits appended."""
    frame = ensure_machine_columns(frame)
    pairs = frame[["machine_id", "machine"]].dropna().drop_duplicates("machine_id")
    counts = pairs["machine"].value_counts()
    return {
        str(mid): label if counts[label] == 1 else f"{label}·{str(mid)[:4]}"
        for mid, label in zip(pairs["machine_id"], pairs["machine"], strict=True)
    }


def machines_share_a_device(frame: pd.DataFrame) -> bool:
    """True when some device (`cpu`, `cuda:0`) holds rows of several machines.

    One host's CPU and GPU rows are two machines, but the device column already tells them
    apart; tables add a machine column only when it does not.
    """
    if "machine_id" not in frame or "device" not in frame or frame.empty:
        return False
    return bool(frame.groupby("device", dropna=False)["machine_id"].nunique().max() > 1)


def ensure_machine_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` itself when every row has its `machine_id` and `machine` (as `read_results` gives
    them), else `with_machine_columns(frame)`: recomputing a fleet's ids cost ~0.1 s a call."""
    return with_machine_columns(frame) if _needs_machine(frame) else frame


def _needs_machine(frame: pd.DataFrame) -> bool:
    return (
        "machine_id" not in frame
        or "machine" not in frame
        or bool(frame["machine_id"].isna().any())
        or bool(frame["machine"].isna().any())
    )


class DifferentMachines(BadInput):
    """`compare` was given runs of different machines without --across-machines."""


def identity_differences(base: pd.DataFrame, cur: pd.DataFrame) -> list[str]:
    """ "host: node3 vs node4"-style phrases for each identity column whose values differ."""
    phrases = []
    for name in IDENTITY_COLUMNS:
        left = _values(base, name)
        right = _values(cur, name)
        if left != right:
            phrases.append(f"{name} {', '.join(left) or '–'} vs {', '.join(right) or '–'}")
    return phrases


def _values(frame: pd.DataFrame, name: str) -> list[str]:
    if name not in frame:
        return []
    values = frame[name].dropna()
    return sorted(
        {str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values}
    )


def check_same_machines(base: pd.DataFrame, cur: pd.DataFrame) -> None:
    """Raise DifferentMachines, naming what differs, when the two sides share no machine."""
    if set(base["machine_id"]) & set(cur["machine_id"]):
        return
    names = machine_names(pd.concat([base, cur], ignore_index=True))
    left = ", ".join(sorted({names[m] for m in base["machine_id"]}))
    right = ", ".join(sorted({names[m] for m in cur["machine_id"]}))
    differences = "; ".join(identity_differences(base, cur)) or "their machine ids"
    raise DifferentMachines(
        f"The baseline ran on {left} and the current results on {right}: they differ in "
        f"{differences}. A regression verdict between two machines would blame the code for "
        "the hardware or software stack, so none is given. Add --across-machines for a "
        "hardware comparison (ratio of medians with a 95% CI, memory and energy per image for "
        "every cell both ran), or compare two runs made on the same machine."
    )


def host_pseudonym(host: object) -> str:
    """A stable stand-in for a host name: the same host gets the same pseudonym in every report.

    A hash, so it hides the name from a reader, not from someone who guesses it and hashes it.
    """
    digest = hashlib.sha256(f"sdbench-host:{_text(host)}".encode()).hexdigest()[:6]
    return f"host-{digest}"


def anonymise_hosts(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every host name, in any text column or list of texts, replaced by its pseudonym.

    Hosts also hide inside error messages, warnings and labels (`machine`), so every string is
    rewritten, longest name first (a full name before its short form). `machine_id` is kept: it
    is already a hash, and keeping it keeps every series the same.
    """
    hosts = {_text(h) for h in frame["host"].dropna()} - {""} if "host" in frame else set()
    replacements: dict[str, str] = {}
    for host in hosts:
        replacements[host] = host_pseudonym(host)
        short = short_host(host)
        if len(short) >= 3:  # "a.b" must not rewrite every "a" in the file
            replacements.setdefault(short, host_pseudonym(host))
    if not replacements:
        return frame.copy()
    names = "|".join(re.escape(h) for h in sorted(replacements, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{names})(?![\w-])")  # whole names: never "b" in "boom"

    def scrub(value: object) -> object:
        if isinstance(value, str):
            return pattern.sub(lambda match: replacements[match.group(0)], value)
        if (
            isinstance(value, list | tuple)
            or hasattr(value, "tolist")
            and not isinstance(value, str)
        ):
            items = value.tolist() if hasattr(value, "tolist") else list(value)
            return (
                [scrub(item) for item in items] if any(isinstance(i, str) for i in items) else value
            )
        return value

    frame = frame.copy()
    for name in frame.columns:
        column = frame[name]
        numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        if not numeric and not pd.api.types.is_datetime64_any_dtype(column):
            frame[name] = pd.Series([scrub(v) for v in column], index=frame.index, dtype=object)
    return frame
