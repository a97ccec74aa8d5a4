"""FLOP counting cost: a cold `count_flops` of the SDXL UNet at 1024x1024 on the meta device.

`count_flops` is lru_cached, so each sample is a fresh process; imports (torch, diffusers) are
timed apart from the count itself. Target: the cold count under 3 s.

    .venv/bin/python benchmarks/flops_count.py [--repeats 3] [--model sdxl --resolution 1024]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from common import child_env, machine, median, print_machine, verdict

TARGET_S = 3.0


def child(model: str, resolution: int, batch_size: int) -> dict:
    begin = time.perf_counter()
    import diffusers  # noqa: F401
    import torch  # noqa: F401

    from sdbench.models.flops import count_flops

    imported, cpu_begin = time.perf_counter(), time.process_time()
    flops = count_flops(model, "unet", resolution, resolution, batch_size)
    counted, cpu_s = time.perf_counter(), time.process_time() - cpu_begin
    return {
        "import_s": imported - begin,
        "count_s": counted - imported,
        "cpu_s": cpu_s,
        "flops": flops,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sdxl")
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.model, args.resolution, args.batch_size)))
        return 0
    print_machine(machine("cpu"))
    samples = []
    for _ in range(args.repeats):
        command = [sys.executable, __file__, "--child", "--model", args.model]
        command += ["--resolution", str(args.resolution), "--batch-size", str(args.batch_size)]
        result = subprocess.run(command, capture_output=True, text=True, env=child_env())
        if result.returncode != 0:
            raise SystemExit(f"count failed:\n{result.stderr[-2000:]}")
        samples.append(json.loads(result.stdout.strip().splitlines()[-1]))
    count_s = median([s["count_s"] for s in samples])
    shown = " ".join(f"{s['count_s']:.2f}" for s in samples)
    print(
        f"{args.model} unet {args.resolution}x{args.resolution} batch {args.batch_size} (cfg): "
        f"{samples[0]['flops']:.4g} FLOPs; cold count median {count_s:.2f} s "
        f"[{shown}] (process CPU time median {median([s['cpu_s'] for s in samples]):.2f} s), "
        f"imports median "
        f"{median([s['import_s'] for s in samples]):.2f} s (not counted)"
    )
    return verdict("flops_count", count_s < TARGET_S, f"{count_s:.2f} s (target < {TARGET_S} s)")


if __name__ == "__main__":
    sys.exit(main())
