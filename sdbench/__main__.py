"""`python -m sdbench` runs the command line."""

import sys

from sdbench.cli import main

sys.exit(main())
