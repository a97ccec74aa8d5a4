"""`python -m sdbench.gpucheck`: what scripts/gpu-check runs."""

import sys

from sdbench.gpucheck.run import main

sys.exit(main())
