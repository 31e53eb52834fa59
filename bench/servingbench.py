"""ServingBench: every sample x every trace x every policy, plus the oracle.

    .venv/bin/python bench/servingbench.py [--quick] [-o json] [--out FILE]

The same as ``servingopt bench``; kept here so the benchmark lives with the others.
"""

from __future__ import annotations

import sys

from servingopt.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
