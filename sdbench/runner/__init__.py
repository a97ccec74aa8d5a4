"""Running cells: the manager (no torch) and the worker processes that build models and time them."""
