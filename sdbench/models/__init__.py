"""Stable Diffusion architectures sdbench can build: the registry is data, building needs torch."""
