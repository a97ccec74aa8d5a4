"""Count a stage's FLOPs and the tensor elements its operators read and write, on the meta device.

Imports torch (lazily, inside the function): only the table generator and the live fallback of
`sdbench.analysis.costs` call it. Elements are counted per aten operator (inputs + outputs, views
free), so they are the traffic of an unfused eager run; they are split into matmul/convolution
operators (compute-bound) and everything else (memory-bound). With fused attention the SDPA call
counts as one operator reading q, k, v and writing its output; with classic attention the
attention matrix is materialised and its traffic counted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

MATMUL_OPS = {"mm", "addmm", "bmm", "baddbmm", "convolution", "_convolution", "linear", "matmul"}
VIEW_OPS = {
    "view", "_unsafe_view", "expand", "transpose", "permute", "t", "unsqueeze", "squeeze", "slice",
    "select", "as_strided", "split", "split_with_sizes", "chunk", "alias", "detach", "_reshape_alias",
    "unbind", "reshape", "lift_fresh", "empty", "empty_like", "new_empty", "zeros", "ones",
}  # fmt: skip


def count_cost(
    model: str, stage: str, height: int, width: int, batch_size: int, attention: str
) -> dict[str, int]:
    """{'flops', 'matmul_elements', 'other_elements'} of one timed call (DESIGN.md's table), cfg on."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    from torch.utils.flop_counter import FlopCounterMode

    from sdbench.models.flops import meta_cell
    from sdbench.models.workload import build_workload

    totals = {"matmul_elements": 0, "other_elements": 0}
    state = {"fused_depth": 0}

    def numel(values: object) -> int:
        return sum(t.numel() for t in tree_flatten(values)[0] if isinstance(t, torch.Tensor))

    class ElementCounter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = func.overloadpacket.__name__
            if state["fused_depth"] == 0 and name not in VIEW_OPS:
                key = "matmul_elements" if name in MATMUL_OPS else "other_elements"
                totals[key] += numel(args) + numel(kwargs) + numel(out)
            return out

    attention = "classic" if attention == "classic" else "math"
    workload = build_workload(meta_cell(model, stage, height, width, batch_size, attention))
    with (
        FlopCounterMode(display=False) as flops,
        ElementCounter(),
        _fused_sdpa(state, totals, numel),
    ):
        workload.call()
    return {"flops": int(flops.get_total_flops()), **totals}


@contextlib.contextmanager
def _fused_sdpa(state: dict, totals: dict, numel) -> Iterator[None]:
    """Count each F.scaled_dot_product_attention as one fused operator (q, k, v in; output out)."""
    import torch.nn.functional as F

    original = F.scaled_dot_product_attention

    def fused(query, key, value, *args, **kwargs):
        state["fused_depth"] += 1
        try:
            out = original(query, key, value, *args, **kwargs)
        finally:
            state["fused_depth"] -= 1
        if state["fused_depth"] == 0:
            totals["other_elements"] += numel((query, key, value, out))
        return out

    F.scaled_dot_product_attention = fused
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original
