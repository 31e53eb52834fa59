"""The ``servingopt`` command line.

Each subcommand lives in the module that implements it and registers itself
through ``add_parser(subparsers)``; this module only wires them together and
keeps imports lazy so that ``servingopt --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__

EXIT_OK = 0
EXIT_INVALID_INPUT = 2
EXIT_NOT_IMPLEMENTED = 3

# (subcommand, module that provides add_parser, one-line help) — order is --help order.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("run", "servingopt.controller.cli", "run the operator (kopf) against the current cluster"),
    ("plan", "servingopt.optimize.cli", "decide the cheapest configuration offline"),
    ("simulate", "servingopt.simulate.cli", "replay a traffic trace against policies"),
    ("bench", "servingopt.simulate.benchcli", "run the ServingBench suite"),
    ("crds", "servingopt.cli", "write (or --check) the generated CRDs"),
    ("validate", "servingopt.cli", "check ModelServing/ServingPolicy/InstanceCatalog files"),
    ("demo", "servingopt.demo", "closed-loop demo on an embedded local cluster"),
    ("dev-cluster", "servingopt.devcluster.cli", "local real control plane: up|down|env|status"),
)


def _not_implemented(name: str) -> Callable[[argparse.Namespace], int]:
    def handler(_: argparse.Namespace) -> int:
        print(f"servingopt {name}: not implemented yet", file=sys.stderr)
        return EXIT_NOT_IMPLEMENTED

    return handler


def add_crds_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("crds", help="write (or --check) the generated CRDs")
    p.add_argument(
        "-d", "--dir", type=Path, default=Path("crds"), help="output directory (default: ./crds)"
    )
    p.add_argument("--check", action="store_true", help="exit 1 if the directory is stale")
    p.add_argument("--stdout", action="store_true", help="print the CRDs instead of writing")
    p.set_defaults(func=cmd_crds)


def cmd_crds(args: argparse.Namespace) -> int:
    from .api import crdgen

    if args.stdout:
        print("---\n".join(crdgen.render_all().values()), end="")
        return EXIT_OK
    if args.check:
        problems = crdgen.stale(args.dir)
        for problem in problems:
            print(f"stale CRD {args.dir}/{problem}; run `servingopt crds`", file=sys.stderr)
        return 1 if problems else EXIT_OK
    for path in crdgen.write(args.dir):
        print(f"wrote {path}")
    return EXIT_OK


def add_validate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "validate",
        help="check ModelServing/ServingPolicy/InstanceCatalog files",
        description="Validate documents offline with the CRD rules plus servingopt's own "
        "checks. Prints one line per problem with its field path. Exit 0 when all are "
        "valid, 2 otherwise.",
    )
    p.add_argument(
        "-f", "--file", type=Path, action="append", required=True, help="YAML file (`-` for stdin)"
    )
    p.add_argument("--catalog", type=Path, help="InstanceCatalog to check references against")
    p.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from .api import InstanceCatalog
    from .api.validation import load_one, validate_file

    catalog = None
    if args.catalog:
        try:
            catalog = load_one(args.catalog, InstanceCatalog)
        except (OSError, ValueError) as error:
            print(f"error: --catalog {error}", file=sys.stderr)
            return EXIT_INVALID_INPUT
    failed = False
    for path in args.file:
        if str(path) != "-" and not path.exists():
            print(f"{path}: no such file", file=sys.stderr)
            failed = True
            continue
        for result in validate_file(path, catalog):
            label = f"{result.source} {result.kind}/{result.name}"
            if result.ok:
                if not args.quiet:
                    print(f"{label}: valid")
                continue
            failed = True
            for problem in result.problems:
                print(f"{label}: {problem}")
    return EXIT_INVALID_INPUT if failed else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="servingopt",
        description="Make ML model serving cheap without breaking its latency SLO.",
    )
    parser.add_argument("--version", action="version", version=f"servingopt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        if module_name == __name__:
            {"crds": add_crds_parser, "validate": add_validate_parser}[name](sub)
            continue
        try:
            module = importlib.import_module(module_name)
            module.add_parser(sub)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            p = sub.add_parser(name, help=f"{help_text} (not implemented yet)")
            p.set_defaults(func=_not_implemented(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INVALID_INPUT
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
