"""Find a catalogue GPU from a loosely written name: "4090", "rtx4090", "NVIDIA GeForce RTX 4090"."""

from __future__ import annotations

import difflib
import re

from sdbench.errors import BadInput
from sdbench.gpus.catalogue import GPU, load_catalogue

# Words that vendors and drivers add but that never tell two catalogue GPUs apart.
_NOISE = re.compile(
    r"\b(nvidia|geforce|tesla|amd|radeon|intel|instinct|apple|quadro|graphics|generation|gpu)\b"
)
_SERIES = re.compile(r"^(rtx|gtx|rx|arc)(?=\w)")


def normalise_name(name: str) -> str:
    """A comparison key: lower case, vendor words and punctuation gone, series prefix dropped."""
    text = _NOISE.sub(" ", name.lower().replace("-", " ").replace("_", " "))
    key = re.sub(r"[^a-z0-9]", "", text)
    return _SERIES.sub("", key)


def _keys(gpu: GPU) -> set[str]:
    return {normalise_name(n) for n in (gpu.name, *gpu.aliases)}


def find_gpu(name: str, catalogue: tuple[GPU, ...] | None = None) -> GPU:
    """The catalogue GPU `name` means, or BadInput naming the closest ones."""
    gpus = catalogue if catalogue is not None else load_catalogue()
    key = normalise_name(name)
    if not key:
        raise BadInput(f'"{name}" is not a GPU name. `sdbench gpus` lists the catalogue.')
    exact = [g for g in gpus if key in _keys(g)]
    if len(exact) >= 1:
        return exact[0]
    partial = [g for g in gpus if any(key in k or (len(k) >= 4 and k in key) for k in _keys(g))]
    if len(partial) == 1:
        return partial[0]
    if partial:
        names = ", ".join(g.name for g in partial[:8])
        raise BadInput(
            f'"{name}" matches several GPUs: {names}. Give the full name (`sdbench gpus` lists them).'
        )
    raise BadInput(
        f'Unknown GPU "{name}".{_suggestions(key, gpus)} `sdbench gpus` lists the catalogue.'
    )


def _suggestions(key: str, gpus: tuple[GPU, ...]) -> str:
    by_key = {k: g.name for g in gpus for k in _keys(g)}
    close = difflib.get_close_matches(key, list(by_key), n=5, cutoff=0.5)
    close = close or difflib.get_close_matches(key, list(by_key), n=5, cutoff=0.2)
    names = list(dict.fromkeys(by_key[k] for k in close))
    return f" Did you mean: {', '.join(names)}?" if names else ""
