"""`python -m servingopt.devcluster up|down|env|status` (same as `servingopt dev-cluster`)."""

import sys

from servingopt.devcluster.cli import main

sys.exit(main())
