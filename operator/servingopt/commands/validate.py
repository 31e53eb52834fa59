"""``servingopt validate``: check ModelServing, ServingPolicy and InstanceCatalog files
offline, with the CRDs' rules plus servingopt's own (:mod:`servingopt.api.validation`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .exits import EXIT_INVALID_INPUT, EXIT_OK
from .helptext import examples


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], help: str) -> None:
    p = sub.add_parser(
        "validate",
        **examples(
            "servingopt validate -f samples/modelservings/resnet50-classifier.yaml",
            "kubectl get ms -A -o yaml | servingopt validate -f -",
        ),
        help=help,
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
    from servingopt.api.yamlio import STDIN, InputError

    stdin_uses = [str(p) for p in [*args.file, args.catalog] if p is not None].count(STDIN)
    if stdin_uses > 1:
        print("error: `-` (standard input) can be given only once", file=sys.stderr)
        return EXIT_INVALID_INPUT
    try:
        catalog = _validate_catalog(args.catalog)
    except (InputError, ValueError) as error:
        print(f"error: --catalog {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    failed = False
    for path in args.file:
        failed = _validate_one(path, catalog, args.quiet) or failed
    return EXIT_INVALID_INPUT if failed else EXIT_OK


def _validate_catalog(path: Path | None) -> Any:
    from servingopt.api import InstanceCatalog
    from servingopt.api.validation import load_one

    return load_one(path, InstanceCatalog) if path else None


def _validate_one(path: Path, catalog: Any, quiet: bool) -> bool:
    """Print one line per document (skips and valid ones unless quiet); True on failure."""
    from servingopt.api.validation import Skipped, validate_stream
    from servingopt.api.yamlio import InputError, source_name

    try:
        items = validate_stream(path, catalog)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return True
    failed = False
    for item in items:
        if isinstance(item, Skipped):
            if not quiet:
                print(item)
            continue
        label = f"{item.source} {item.kind}/{item.name}"
        if item.ok and not quiet:
            print(f"{label}: valid")
        failed = failed or not item.ok
        for problem in item.problems:
            print(f"{label}: {problem}")
    if not quiet and all(isinstance(item, Skipped) for item in items):
        print(f"note: {source_name(path)}: no servingopt documents to check", file=sys.stderr)
    return failed
