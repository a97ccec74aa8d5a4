"""Planning a suite with many long [[exclude]] rules: parse, count and expand 100k cells.

300 rules of 1,000 values each over a 100,000-cell matrix (the worst case issue 16 measured at
0.85 s per rule before rules were matched as sets). Target: parse + expand under 10 s.

    .venv/bin/python benchmarks/exclude_rules.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

from common import machine, median, print_machine, verdict

from sdbench.suite import expand, parse_suite

TARGET_S = 10.0


def suite_text(rules: int = 300, values: int = 1000) -> str:
    batch_sizes = list(range(1, 1001))  # 1000 x 100 resolutions = 100k cells per device
    resolutions = [64 + 8 * i for i in range(100)]
    lines = [
        "[matrix]",
        'model = ["tiny"]',
        'stage = ["unet"]',
        'device = ["cpu"]',
        f"resolution = {resolutions}",
        f"batch_size = {batch_sizes}",
    ]
    for index in range(rules):  # 1000 batch sizes at one resolution; two in three beyond the matrix
        start = 1 + (index // 100) * values
        lines += [
            "[[exclude]]",
            f"resolution = [{resolutions[index % 100]}]",
            f"batch_size = {list(range(start, start + values))}",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print_machine(machine("cpu"))
    text, samples, kept = suite_text(), [], 0
    for _ in range(args.repeats):
        begin = time.perf_counter()
        kept = len(expand(parse_suite(text, source="bench.toml"), ["cpu"]))
        samples.append(time.perf_counter() - begin)
    seconds = median(samples)
    shown = " ".join(f"{s:.2f}" for s in samples)
    print(
        f"300 rules x 1000 values over 100000 cells: {kept} kept; median {seconds:.2f} s [{shown}]"
    )
    return verdict("exclude_rules", seconds < TARGET_S, f"{seconds:.2f} s (target < {TARGET_S} s)")


if __name__ == "__main__":
    raise SystemExit(main())
