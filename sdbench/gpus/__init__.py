"""The GPU catalogue shipped with sdbench: load it and find a GPU by a loosely written name."""

from sdbench.gpus.catalogue import GPU, load_catalogue
from sdbench.gpus.match import catalogue_gpu, catalogue_name, find_gpu, normalise_name

__all__ = ["GPU", "catalogue_gpu", "catalogue_name", "find_gpu", "load_catalogue", "normalise_name"]
