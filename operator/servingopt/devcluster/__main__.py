"""`python -m servingopt.devcluster up|down|env|status` (same as `servingopt dev-cluster`)."""

import sys

from servingopt.cli import main

sys.exit(main(["dev-cluster", *sys.argv[1:]]))
