"""`sdbench models`: list the model registry with parameter counts counted from the built models."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  sdbench models         the registry with parameter counts
  sdbench models --json  names, families, native sizes and parameters as JSON
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="the model registry", description=__doc__)
    from sdbench.commands.output import add_format_option

    add_format_option(parser)
    parser.set_defaults(func=handler)


MODELS_CACHE_FORMAT = 1  # bump when a row's fields change


def model_rows() -> list[dict]:
    """One dict per registered model; `params` maps component to its count (built on meta).

    Building every model takes ~15 s (diffusers' import, then each model on the meta device),
    so the rows are kept in the user cache (`sdbench.usercache`), keyed on this sdbench's files
    and the torch, diffusers and transformers versions that build the models.
    """
    from sdbench.usercache import read_entry, write_entry

    key = _models_key()
    name = f"models-{key['digest'][:24]}.json" if key else None
    stored = read_entry(name, key) if name else None
    if stored is not None and isinstance(stored.get("rows"), list):
        return stored["rows"]
    rows = _counted_rows()
    if name:
        write_entry(name, key, {"rows": rows})
    return rows


def _models_key() -> dict | None:
    from importlib.metadata import PackageNotFoundError, version

    from sdbench.usercache import package_digest

    try:
        libraries = {name: version(name) for name in ("torch", "diffusers", "transformers")}
        return {"format": MODELS_CACHE_FORMAT, "digest": package_digest(), **libraries}
    except (OSError, PackageNotFoundError):
        return None  # nothing to key on: count every time


def _counted_rows() -> list[dict]:
    from diffusers.utils import logging as diffusers_logging

    from sdbench.models.build import count_parameters
    from sdbench.models.registry import MODELS, TINY_VAE_NAMES, TINY_VAES

    diffusers_logging.set_verbosity_error()  # building on meta warns about dtype casts
    rows = []
    for spec in MODELS.values():
        params = {name: count_parameters(c) for name, c in spec.components.items()}
        tiny_vae = TINY_VAES.get(spec.family)
        rows.append(
            {
                "name": spec.name,
                "description": spec.description,
                "family": spec.family,
                "denoiser": spec.denoiser,
                "native_resolution": spec.native_resolution,
                "steps": spec.default_steps,
                "cfg": spec.default_cfg,
                "scheduler": spec.scheduler,
                "params": params,
                "total_params": sum(params.values()),
                "taesd": TINY_VAE_NAMES.get(spec.family),
                "taesd_params": count_parameters(tiny_vae) if tiny_vae else None,
            }
        )
    return rows


def handler(args: argparse.Namespace) -> int:
    from sdbench.commands.output import print_rows

    rows = model_rows()
    headers = ["model", "family", "px", "steps", "cfg", "denoiser", "text enc.", "vae", "total"]
    table = []
    for row in rows:
        params = row["params"]
        text = sum(v for k, v in params.items() if k.startswith("text_encoder"))
        table.append(
            [
                row["name"],
                row["family"],
                row["native_resolution"],
                row["steps"],
                "yes" if row["cfg"] else "no",
                _millions(params.get("unet", params.get("transformer"))),
                _millions(text),
                _millions(params["vae"]),
                _millions(row["total_params"]),
            ]
        )
    print_rows(args.format, headers, table, rows)
    if args.format != "table":
        return 0
    print('\nParameters in millions (M). `vae = "taesd"` in a suite swaps in the family\'s tiny')
    print("autoencoder (TAESD/TAESDXL/TAESD3, 2.4-2.5M). Descriptions: sdbench models --json.")
    return 0


def _millions(count: int | None) -> str:
    return "-" if count is None else f"{count / 1e6:,.1f}M"
