"""Layers that hold: the manager side never imports torch, and imports only run downhill."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

from tests.conftest import REPO

# Imports what `sdbench run` does before any worker starts, with torch made unimportable, and
# plans a two-GPU run: cells, groups, the pinned device and environment each worker would get.
NO_TORCH_PLAN = textwrap.dedent(
    """
    import json, sys

    class NoTorch:  # `import torch` (and the libraries built on it) now raises ImportError
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "diffusers", "transformers", "pynvml"):
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, NoTorch())

    import sdbench.cli, sdbench.runner.run, sdbench.runner.executor, sdbench.runner.progress
    import sdbench.analysis.best, sdbench.analysis.compare, sdbench.analysis.history
    import sdbench.analysis.predict, sdbench.analysis.recommend, sdbench.analysis.per_image
    import sdbench.report.site, sdbench.store, sdbench.store.read, sdbench.suite
    from sdbench.runner.executor import group_cells, host_gpu_count, pinned_device
    from sdbench.runner.run import plan

    suite, cells, devices = plan("tiny", "cuda:0", ["cpu", "cuda:0", "cuda:1"])
    assert cells and {c.device for c in cells} == {"cuda:0"}, cells
    groups = group_cells(cells)
    environ = {"CUDA_VISIBLE_DEVICES": "3,5"}
    print(json.dumps({
        "cells": len(cells),
        "groups": len(groups),
        "pinned": pinned_device("cuda:1", environ),
        "gpus": host_gpu_count(environ),
        "gpus_here": host_gpu_count({}),  # asked of a detection subprocess, which may import torch
        "imported": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers")),
    }))
    """
)


def test_the_manager_plans_a_cuda_run_with_torch_unimportable():
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH_PLAN],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    planned = json.loads(result.stdout.strip().splitlines()[-1])
    assert planned["cells"] > 0 and 0 < planned["groups"] <= planned["cells"]
    assert planned["pinned"] == ["cuda:0", {"CUDA_VISIBLE_DEVICES": "5"}]
    assert planned["gpus"] == 2 and planned["gpus_here"] == 0  # the test machine has no GPU
    assert planned["imported"] == []


def _imports(folder: str) -> list[str]:
    found = []
    for path in sorted((REPO / "sdbench" / folder).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        found += [
            f"{path.relative_to(REPO)}: {m}"
            for m in re.findall(r"^\s*(?:from|import) (sdbench\.\w+)", text, re.M)
        ]
    return found


def test_models_analysis_report_store_and_suite_never_import_the_runner():
    for folder in ("models", "analysis", "report", "store", "suite"):
        assert [i for i in _imports(folder) if i.endswith("sdbench.runner")] == [], folder


def test_only_the_cli_imports_the_commands():
    outside = [
        line
        for folder in [p.name for p in (REPO / "sdbench").iterdir() if p.is_dir()]
        if folder != "commands"
        for line in _imports(folder)
        if line.endswith("sdbench.commands")
    ]
    assert outside == []
