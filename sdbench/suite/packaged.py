"""The suites shipped inside the package: found by name (`sdbench run quick`) from any folder."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sdbench.errors import BadInput, did_you_mean


def packaged_suites() -> dict[str, Path]:
    """Every shipped suite by name (the file's stem), sorted by name."""
    folder = resources.files("sdbench").joinpath("suites")
    paths = [Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".toml")]
    return {path.stem: path for path in sorted(paths)}


def resolve_suite(name_or_path: str | Path) -> Path:
    """A suite file: an existing path as given, else the packaged suite of that name.

    `suites/quick.toml`, the path in a clone before the suites moved into the package, still
    names the packaged `quick` when no such file exists here.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = packaged_suites()
    if path.suffix == ".toml":
        name = path.stem if path.parent in (Path("."), Path("suites")) else None
    else:
        name = path.name if path.parent == Path(".") else None
    if name in shipped:
        return shipped[name]
    local = sorted(p.stem for p in Path("suites").glob("*.toml")) if Path("suites").is_dir() else []
    hint = f" Suites in ./suites: {', '.join(local)}." if local else ""
    guess = did_you_mean(name or path.stem, shipped)
    raise BadInput(
        f'Suite "{name_or_path}" is neither a file nor a packaged suite.{guess}{hint} '
        f"Packaged suites: {', '.join(shipped)} (sdbench suites describes them); "
        "or pass the path of a .toml file."
    )
