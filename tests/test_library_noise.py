"""Known-harmless library messages (torchao's optional kernels, torch's pytree deprecation,
diffusers on torchao checkpoints) stay off stderr; every other warning still shows."""

from __future__ import annotations

import importlib.util
import logging

import pytest

from sdbench.library_noise import quiet_known_harmless_messages
from tests.conftest import run_cli_process

SO = "/venv/site-packages/torchao/_C_mxfp8.cpython-310-x86_64-linux-gnu.so"


class _Kept(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _shown(logger_name: str, message: str) -> bool:
    """Whether `message` gets past the logger's own filters (torch and diffusers loggers do not
    propagate to the root, so the handler sits on the logger itself)."""
    logger, kept = logging.getLogger(logger_name), _Kept()
    logger.addHandler(kept)
    try:
        logger.warning(message)
    finally:
        logger.removeHandler(kept)
    return kept.messages == [message]


def test_only_the_known_messages_of_each_logger_are_dropped():
    quiet_known_harmless_messages()
    quiet_known_harmless_messages()  # idempotent: one filter per logger
    assert len(logging.getLogger("torchao").filters) == 1
    assert not _shown("torchao", f"Failed to load {SO}: Could not load this library")
    assert _shown("torchao", "Skipping import of cpp extensions due to incompatible torch")
    pytree = "torch.utils._pytree"
    enum = "<enum 'KernelPreference'> is an Enum subclass and is now natively supported by x"
    assert not _shown(pytree, enum)
    assert _shown(pytree, "some other pytree warning")
    diffusers = "diffusers.quantizers.torchao.torchao_quantizer"
    assert not _shown(diffusers, "Unable to import `torchao` Tensor objects. This may ...")
    assert _shown("torch", f"Failed to load {SO}")  # another logger: untouched


@pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="needs the quant extra")
def test_a_verb_that_builds_a_model_prints_no_library_noise_on_stderr():
    code, out, err = run_cli_process(
        "flops", "--model", "tiny", "--stage", "unet", "--resolution", "64"
    )
    assert code == 0 and out.strip()
    for noise in ("Failed to load", "is an Enum subclass", "Unable to import `torchao`"):
        assert noise not in err, err[-2000:]
