"""Figures derived from a cell's measurements: it/s, images/s, TFLOP/s, MFU and energy per image."""

from __future__ import annotations

from sdbench.cell import Cell

# Achieved above the probed dense-matmul peak means the probe was wrong (taken under load), not
# that the cell beat the hardware; a little slack covers timing noise.
MFU_IMPOSSIBLE = 1.05


def derived_figures(
    cell: Cell, images_per_call: int, median_ms: float, flops: int, state: object = None
) -> dict:
    seconds = median_ms / 1000.0
    derived: dict = {
        "flops": float(flops),
        "tflops_per_s": flops / seconds / 1e12 if seconds > 0 else None,
    }
    if cell.stage == "unet":
        derived["it_per_s"] = 1.0 / seconds
        # Images per second of the denoising loop alone, at the suite's step count.
        derived["images_per_s"] = cell.batch_size / (seconds * cell.steps)
    elif images_per_call:
        derived["images_per_s"] = images_per_call / seconds
    if cell.stage == "pipeline":
        derived["it_per_s"] = cell.steps / seconds
    derived.update(peak_figures(cell.precision, derived["tflops_per_s"], state))
    return derived


def peak_figures(precision: str, tflops_per_s: float | None, state: object = None) -> dict:
    """The device's probed and datasheet peaks for `precision`, and MFU against the probed one.

    MFU = achieved TFLOP/s / probed dense peak (the faster of matmul and 3x3 convolution)
    in the cell's precision. A device
    without TF32 units runs tf32 cells as plain fp32, so they are held to the fp32 peak.
    """
    probe = (getattr(state, "probe", None) or {}) if state is not None else {}
    probed = probe.get("dense_tflops") or probe.get("matmul_tflops") or {}
    peak = probed.get(precision)
    if peak is None and precision == "tf32" and "tf32" not in probed:
        peak = probed.get("fp32")
    mfu = tflops_per_s / peak if peak and tflops_per_s is not None else None
    if mfu is not None and mfu > MFU_IMPOSSIBLE:
        mfu = (
            None  # the probe under-measured the device (busy machine): no figure beats a wrong one
        )
    return {
        "peak_tflops": peak,
        "mfu": mfu,
        "datasheet_tflops": (probe.get("datasheet_tflops") or {}).get(precision),
        "peak_bandwidth_gbps": probe.get("bandwidth_gbs"),
    }


def energy_per_image_j(
    cell: Cell, images_per_call: int, energy_j: float | None, n_calls: int | None
) -> float | None:
    """Joules per generated image, from the timed window's energy spread over its calls.

    unet rows: one call is one denoising step of batch_size images, so an image costs
    energy per call x steps / batch_size (the denoising loop alone, at the suite's steps).
    vae_decode and pipeline rows: energy per call / images per call. text_encoder: None.
    Energy per call includes the short gaps between timed calls, as a real loop would.
    """
    if energy_j is None or not n_calls:
        return None
    per_call_j = energy_j / n_calls
    if cell.stage == "unet":
        return per_call_j * cell.steps / cell.batch_size
    if images_per_call:
        return per_call_j / images_per_call
    return None
