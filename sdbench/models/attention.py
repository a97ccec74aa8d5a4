"""Apply an attention setting to built modules, and the context that forces an SDPA kernel.

diffusers' `set_attention_backend` does not reach the SD1.5/2.1/SDXL UNets (their default
processor calls F.scaled_dot_product_attention directly), so SDPA kernels are forced with
`torch.nn.attention.sdpa_kernel` around the call, and classic / sliced / xformers attention are
installed as diffusers attention processors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

SDPA_BACKENDS = {
    "math": SDPBackend.MATH,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
}


# Transformers whose joint-attention processors call SDPA themselves: replacing them with the
# UNet's processors would break the model; kernels are still forced by `kernel_context`.
JOINT_ATTENTION = {"SD3Transformer2DModel", "FluxTransformer2DModel"}


def install(modules: dict[str, nn.Module], attention: str) -> None:
    """Set each module's attention implementation for `attention` (idempotent)."""
    from diffusers.models import attention_processor as processors

    for module in modules.values():
        if hasattr(module, "set_attn_implementation"):  # transformers text encoders
            module.set_attn_implementation("eager" if attention == "classic" else "sdpa")
            continue
        if not hasattr(module, "set_attn_processor") or type(module).__name__ in JOINT_ATTENTION:
            continue
        if attention == "classic":
            module.set_attn_processor(processors.AttnProcessor())
        elif attention == "sliced":
            # As pipelines' enable_attention_slicing does: the UNet's attention is sliced, the
            # VAE (one mid-block attention layer) keeps SDPA.
            module.set_attn_processor(processors.AttnProcessor2_0())
            if hasattr(module, "set_attention_slice"):
                module.set_attention_slice("auto")
        elif attention == "xformers":
            module.set_attn_processor(processors.XFormersAttnProcessor())
        else:
            module.set_attn_processor(processors.AttnProcessor2_0())


@contextlib.contextmanager
def kernel_context(attention: str) -> Iterator[None]:
    """Force the SDPA kernel for math/flash/efficient/cudnn; nothing for the other settings."""
    backend = SDPA_BACKENDS.get(attention)
    if backend is None:
        yield
        return
    with sdpa_kernel([backend]):
        yield
