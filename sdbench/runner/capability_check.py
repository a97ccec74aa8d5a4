"""Ask a subprocess which cells this machine cannot run, so the manager never imports torch.

`sdbench run --dry-run` plans a run without running it; the capability check (runner/capability,
torch's own `can_use_*` answers, the model registry) needs torch, so it runs here as
`python -m sdbench.runner.capability_check`, cells in on stdin, reasons out on stdout, the way
device detection does (sdbench.devices).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

from sdbench.cell import Cell
from sdbench.errors import DeviceError


def unsupported_reasons(cells: Sequence[Cell]) -> dict[str, str]:
    """cell_id -> why that cell cannot run on its device, for the cells that cannot."""
    result = subprocess.run(
        [sys.executable, "-m", "sdbench.runner.capability_check"],
        input=json.dumps([cell.to_dict() for cell in cells]),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise DeviceError(f"The capability check failed (is torch installed here?):\n{tail}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # libraries may print first


def main() -> None:
    from sdbench.runner.capability import unsupported_reason
    from sdbench.runner.serve import as_pipeline

    reasons = {}
    for data in json.load(sys.stdin):
        cell = Cell.from_dict(data)
        reason = unsupported_reason(as_pipeline(cell) if cell.stage == "serve" else cell)
        if reason:
            reasons[cell.cell_id] = reason
    print(json.dumps(reasons))


if __name__ == "__main__":
    main()
