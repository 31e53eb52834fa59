"""``servingopt crds``: write (or ``--check``) the CRDs generated from the API models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .exits import EXIT_FAILED, EXIT_INVALID_INPUT, EXIT_OK
from .helptext import examples


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], help: str) -> None:
    p = sub.add_parser(
        "crds",
        **examples(
            "servingopt crds                 # write crds/ from the API models",
            "servingopt crds --check         # exit 1 when crds/ is stale",
            "servingopt crds --stdout | kubectl apply --server-side -f -",
        ),
        help=help,
    )
    p.add_argument(
        "-d", "--dir", type=Path, default=Path("crds"), help="output directory (default: ./crds)"
    )
    p.add_argument("--check", action="store_true", help="exit 1 if the directory is stale")
    p.add_argument("--stdout", action="store_true", help="print the CRDs instead of writing")
    p.set_defaults(func=cmd_crds)


def cmd_crds(args: argparse.Namespace) -> int:
    from servingopt.api import crdgen

    if args.stdout:
        print("---\n".join(crdgen.render_all().values()), end="")
        return EXIT_OK
    try:
        if args.check:
            problems = crdgen.stale(args.dir)
            for problem in problems:
                print(f"stale CRD {args.dir}/{problem}; run `servingopt crds`", file=sys.stderr)
            return EXIT_FAILED if problems else EXIT_OK
        for path in crdgen.write(args.dir):
            print(f"wrote {path}")
    except OSError as error:  # a --dir that is a file, read-only, or under a missing parent
        print(f"error: --dir {args.dir}: {error.strerror or error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    return EXIT_OK
