"""Find a catalogue GPU from a loosely written name, never a different card than the one meant.

Loose: case, vendor words, punctuation and the RTX/GTX/RX/Arc prefix do not matter ("4090",
"rtx4090", "NVIDIA GeForce RTX 4090"). Strict: every token that tells two cards apart must agree.
The variant words (ti, super, xt, xtx, max, pro, ultra, ada) must be the same in the query and in
the card's name or one of its aliases; a memory size (16gb), form factor (pcie, sxm) or core count
the query gives must be the card's, and a query that leaves one out matches every card it fits,
so "4060 ti" names both 4060 Ti cards and is refused as ambiguous rather than guessed.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

from sdbench.errors import BadInput
from sdbench.gpus.catalogue import GPU, load_catalogue

# Words that vendors and drivers add but that never tell two catalogue GPUs apart.
_NOISE = frozenset(
    [
        "nvidia",
        "geforce",
        "tesla",
        "amd",
        "radeon",
        "intel",
        "instinct",
        "apple",
        "quadro",
        "graphics",
        "generation",
        "gpu",
        "rtx",
        "gtx",
        "rx",
        "arc",
        "r",
        "tm",
    ]
)
_SERIES = re.compile(r"^(rtx|gtx|rx|arc)(?=\d)")
VARIANTS = frozenset({"ti", "super", "xt", "xtx", "max", "pro", "ultra", "ada"})
# Glued suffixes people write: 4060ti, 7900xtx, 4070s, 4070 tis.
_GLUED = re.compile(r"^(\d+)(ti|tis|super|s|xtx|xt)$")
_SPELLED = {"s": ("super",), "tis": ("ti", "super"), "sxm2": ("sxm",), "sxm4": ("sxm",),
            "sxm5": ("sxm",)}  # fmt: skip
_MEMORY = re.compile(r"^\d+gb$")
_CORES = re.compile(r"^\d+core$")
_FORMS = frozenset({"pcie", "sxm"})


@dataclass(frozen=True)
class Tokens:
    """A name split into what identifies a card (`core`), its variant words, and the details
    (memory size, form factor, core count) a query may leave out."""

    core: frozenset[str]
    variants: frozenset[str]
    details: frozenset[str]


def tokens(name: str) -> Tokens:
    text = name.lower().replace("(r)", " ").replace("(tm)", " ")
    text = re.sub(r"(\d+)\s*gb\b", r"\1gb", text)
    text = re.sub(r"(\d+)\s*-?\s*core\b", r"\1core", text)
    words: list[str] = []
    for raw in re.split(r"[^a-z0-9]+", text):
        word = _SERIES.sub("", raw)
        if not word or word in _NOISE:
            continue
        glued = _GLUED.match(word)
        parts = [glued.group(1), glued.group(2)] if glued else [word]
        for part in parts:
            words.extend(_SPELLED.get(part, (part,)))
    details = {w for w in words if _MEMORY.match(w) or _CORES.match(w) or w in _FORMS}
    variants = {w for w in words if w in VARIANTS}
    core = set(words) - details - variants
    return Tokens(frozenset(core), frozenset(variants), frozenset(details))


def normalise_name(name: str) -> str:
    """A comparison key: the name's tokens, sorted and joined (equal keys name the same card)."""
    parts = tokens(name)
    return " ".join(sorted(parts.core | parts.variants | parts.details))


def _spellings(gpu: GPU) -> tuple[Tokens, ...]:
    return _spellings_of(gpu.name, gpu.aliases, gpu.vram_gb)


@functools.lru_cache(maxsize=4096)
def _spellings_of(name: str, aliases: tuple[str, ...], vram_gb: float) -> tuple[Tokens, ...]:
    """The tokens of a card's name and aliases, its memory size a detail of each (cached: every
    lookup compares the query with every catalogue card)."""
    memory = f"{vram_gb:g}gb"
    found = []
    for spelling in (name, *aliases):
        parts = tokens(spelling)
        found.append(Tokens(parts.core, parts.variants, parts.details | {memory}))
    return tuple(found)


def _matches(query: Tokens, card: Tokens) -> bool:
    return (
        query.core == card.core
        and query.variants == card.variants
        and query.details <= card.details
    )


def find_gpu(name: str, catalogue: tuple[GPU, ...] | None = None) -> GPU:
    """The catalogue GPU `name` means, or BadInput listing the candidates or the nearest names."""
    gpus = catalogue if catalogue is not None else load_catalogue()
    query = tokens(name)
    if not query.core:
        raise BadInput(f'"{name}" is not a GPU name. `sdbench gpus` lists the catalogue.')
    found = [g for g in gpus if any(_matches(query, s) for s in _spellings(g))]
    if len(found) == 1:
        return found[0]
    if found:
        raise _ambiguous(name, found)
    # Same card line, other variant words ("7900" for the 7900 XT and XTX): name them.
    near = [g for g in gpus if any(query.core == s.core for s in _spellings(g))]
    if len(near) > 1:
        raise _ambiguous(name, near)
    raise BadInput(
        f'Unknown GPU "{name}".{_suggestions(name, near, gpus)} `sdbench gpus` lists the catalogue.'
    )


@functools.lru_cache(maxsize=256)
def catalogue_gpu(device_name: str) -> GPU | None:
    """The catalogue GPU a result row's `device_name` is, or None (a CPU, or a card not catalogued)."""
    try:
        return find_gpu(device_name)
    except BadInput:
        return None


def catalogue_name(device_name: str) -> str | None:
    """The catalogue name of a result row's `device_name`, or None when it is not a catalogue GPU."""
    gpu = catalogue_gpu(device_name)
    return None if gpu is None else gpu.name


def _ambiguous(name: str, candidates: list[GPU]) -> BadInput:
    names = "; ".join(g.name for g in candidates[:8])
    words = [_telling_words(g) for g in candidates]
    telling = sorted(set().union(*words) - set.intersection(*words))
    shown = ", ".join(_DISPLAY.get(w, w.upper()) for w in telling)
    return BadInput(
        f'"{name}" could mean {len(candidates)} GPUs: {names}. Add the word that tells them '
        f'apart ({shown}), e.g. --gpu "{candidates[0].name}". `sdbench gpus` lists the catalogue.'
    )


_DISPLAY = {"ti": "Ti", "super": "Super", "max": "Max", "pro": "Pro", "ultra": "Ultra",
            "ada": "Ada", "pcie": "PCIe"}  # fmt: skip


def _telling_words(gpu: GPU) -> set[str]:
    parts = tokens(gpu.name)
    return set(parts.variants | {d for d in parts.details if not _CORES.match(d)}) | {
        f"{gpu.vram_gb:g}gb"
    }


def _suggestions(name: str, near: list[GPU], gpus: tuple[GPU, ...]) -> str:
    """The same card line with other variant words first, then names that read alike."""
    by_key = {normalise_name(s): g.name for g in gpus for s in (g.name, *g.aliases)}
    key = normalise_name(name)
    close = difflib.get_close_matches(key, list(by_key), n=4, cutoff=0.6)
    if not close and not near:
        close = difflib.get_close_matches(key, list(by_key), n=4, cutoff=0.2)
    names = list(dict.fromkeys([g.name for g in near] + [by_key[k] for k in close]))[:4]
    return f" Did you mean: {', '.join(names)}?" if names else ""
