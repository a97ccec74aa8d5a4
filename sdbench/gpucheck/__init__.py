"""`scripts/gpu-check`: run every GPU path once, prove nothing fell back to the CPU, keep it all.

`suite` derives what to run, `run` runs it (probe, suite, attention-kernel check, outputs) and
`verify` judges the rows; `python -m sdbench.gpucheck` is the command.
"""
