"""Model materialisation time: sdbench's random-weight build vs diffusers' default constructor.

Each sample is a fresh process (imports and the meta construction warmed up first, so neither side
pays for them), and the two methods alternate so machine drift hits both alike. sdbench builds on
the meta device and writes seeded weights on the target device and dtype (`materialise`);
diffusers runs `UNet2DConditionModel(**config)` (its own init, on the CPU) and moves the result
to the target device. For fp16/bf16 the baseline constructs under that default dtype, which
spares it a cast and half the memory: a conservative baseline. Target: sdbench <= 0.5 x diffusers.

    .venv/bin/python benchmarks/materialise.py [--device cpu] [--case sd15:fp32 --case sdxl:bf16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from common import child_env, machine, median, print_machine, verdict

TARGET_RATIO = 0.5
METHODS = ("sdbench", "diffusers")


def child(method: str, model: str, device: str, precision: str) -> float:
    """Seconds to build the model's UNet on `device` in `precision` (runs in a fresh process)."""
    import diffusers
    import torch

    from sdbench.devices.backend import backend_for
    from sdbench.models.build import DTYPES, construct_on_meta, materialise
    from sdbench.models.registry import get_model

    diffusers.utils.logging.set_verbosity_error()
    spec = get_model(model)
    component = spec.components["unet"]
    construct_on_meta(component)  # warm: lazy imports and class set-up, paid by neither side
    dtype = DTYPES[precision]
    begin = time.perf_counter()
    if method == "sdbench":
        module = materialise(spec, "unet", device, precision)
    else:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            module = getattr(diffusers, component.kind)(**component.config)
        finally:
            torch.set_default_dtype(previous)
        module = module.to(device)
    backend_for(device).synchronize()
    seconds = time.perf_counter() - begin
    assert next(module.parameters()).dtype == dtype
    return seconds


def sample(method: str, model: str, device: str, precision: str) -> float:
    command = [sys.executable, __file__, "--child", method, model, device, precision]
    result = subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"{method} {model} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--case",
        action="append",
        help="MODEL:PRECISION (default sd15:fp32 and sdxl:bf16 on the CPU, fp16 on GPUs)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per method")
    parser.add_argument("--child", nargs=4, metavar=("METHOD", "MODEL", "DEVICE", "PRECISION"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps({"seconds": child(*args.child)}))
        return 0
    default = ["sd15:fp32", "sdxl:bf16"] if args.device == "cpu" else ["sd15:fp16", "sdxl:fp16"]
    cases = [tuple(case.split(":")) for case in (args.case or default)]
    print_machine(machine(args.device))
    worst = 0.0
    for model, precision in cases:
        seconds: dict[str, list[float]] = {m: [] for m in METHODS}
        for repeat in range(args.repeats):
            order = METHODS if repeat % 2 == 0 else METHODS[::-1]
            for method in order:
                seconds[method].append(sample(method, model, args.device, precision))
        ratio = median(seconds["sdbench"]) / median(seconds["diffusers"])
        worst = max(worst, ratio)
        shown = {m: " ".join(f"{s:.2f}" for s in v) for m, v in seconds.items()}
        print(
            f"{model} unet {precision} on {args.device}: sdbench median "
            f"{median(seconds['sdbench']):.2f} s [{shown['sdbench']}], diffusers median "
            f"{median(seconds['diffusers']):.2f} s [{shown['diffusers']}], ratio {ratio:.2f}"
        )
    return verdict(
        "materialise",
        worst <= TARGET_RATIO,
        f"worst sdbench/diffusers ratio {worst:.2f} (target <= {TARGET_RATIO})",
    )


if __name__ == "__main__":
    sys.exit(main())
