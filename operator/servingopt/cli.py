"""The ``servingopt`` command line.

Each subcommand lives in the module that implements it and registers itself
through ``add_parser(subparsers)``; this module only wires them together and
keeps imports lazy so that ``servingopt --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import select
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__

EXIT_OK = 0
EXIT_INVALID_INPUT = 2
EXIT_NOT_IMPLEMENTED = 3
EXIT_INTERNAL_ERROR = 70  # sysexits.h EX_SOFTWARE: a bug, not the input
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

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
    try:
        if args.check:
            problems = crdgen.stale(args.dir)
            for problem in problems:
                print(f"stale CRD {args.dir}/{problem}; run `servingopt crds`", file=sys.stderr)
            return 1 if problems else EXIT_OK
        for path in crdgen.write(args.dir):
            print(f"wrote {path}")
    except OSError as error:  # a --dir that is a file, read-only, or under a missing parent
        print(f"error: --dir {args.dir}: {error.strerror or error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
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
    from .api.yamlio import STDIN, InputError

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
    from .api import InstanceCatalog
    from .api.validation import load_one

    return load_one(path, InstanceCatalog) if path else None


def _validate_one(path: Path, catalog: Any, quiet: bool) -> bool:
    """Print one line per document (skips and valid ones unless quiet); True on failure."""
    from .api.validation import Skipped, validate_stream
    from .api.yamlio import InputError, source_name

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
    """Run one subcommand; what it raises ends in an exit code and one line, no traceback.

    Input errors are each command's to report (exit 2). Here: a reader that closed our
    stdout (``| head``) exits 2 quietly, Ctrl-C exits 130, anything else is a bug:
    one line and exit 70 (``SERVINGOPT_DEBUG=1`` adds the traceback; ``run`` always
    logs it, being a service whose log is the only record).
    """
    command = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_INVALID_INPUT
        result: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return result
    except BrokenPipeError as error:
        if not _stdout_closed():
            return _internal_error(command, error)
        _silence_stdout()
        return EXIT_INVALID_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        return _internal_error(command, error)


def _stdout_closed() -> bool:
    """Whether the BrokenPipeError was ours: stdout's reader has gone."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):  # no descriptor, no poll(): assume so
        return True
    return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events)


def _silence_stdout() -> None:
    # Point stdout at /dev/null so that Python's final flush does not fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass


def _internal_error(command: str | None, error: BaseException) -> int:
    if os.environ.get("SERVINGOPT_DEBUG") or command == "run":
        traceback.print_exception(error, file=sys.stderr)
    text = " ".join(str(error).split())
    _say(f"servingopt: internal error: {type(error).__name__}: {text}")
    _say(
        "servingopt: this is a bug; please report it with the command line "
        "(SERVINGOPT_DEBUG=1 prints the traceback)"
    )
    return EXIT_INTERNAL_ERROR


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed too: the exit code will do
        print(line, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
