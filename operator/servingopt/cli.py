"""The ``servingopt`` command line: ``main()`` and nothing else of its own.

Every subcommand lives in :mod:`servingopt.commands` (its flags, its inputs, its
output) and exits with a code of :mod:`servingopt.commands.exits`.  Imports stay
lazy so that ``servingopt --help`` stays fast: only the module of the subcommand
being run is imported; the others are listed by name and help line alone.
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

from . import __version__
from .commands import COMMANDS, Command
from .commands.exits import (  # re-exported: callers and tests import them from here
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_NOT_IMPLEMENTED,
    EXIT_OK,
)

__all__ = [
    "EXIT_INTERNAL_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID_INPUT",
    "EXIT_NOT_IMPLEMENTED",
    "EXIT_OK",
    "build_parser",
    "main",
]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; given ``argv``, only the subcommand it names
    is built in full (importing its module), the others are listed by help line."""
    wanted = _command_named(argv) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="servingopt",
        description="Make ML model serving cheap without breaking its latency SLO.",
    )
    parser.add_argument("--version", action="version", version=f"servingopt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        if argv is None or command.name == wanted:
            _add_command(sub, command)
        else:
            sub.add_parser(command.name, help=command.help)
    return parser


def _command_named(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs: its first word that is not an option (the
    top-level options take no values)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], command: Command
) -> None:
    try:
        module = importlib.import_module(command.module)
    except ModuleNotFoundError as error:
        if error.name != command.module:
            raise
        p = sub.add_parser(command.name, help=f"{command.help} (not implemented yet)")
        p.set_defaults(func=_not_implemented(command.name))
        return
    module.add_parser(sub, command.help)


def _not_implemented(name: str) -> Callable[[argparse.Namespace], int]:
    def handler(_: argparse.Namespace) -> int:
        print(f"servingopt {name}: not implemented yet", file=sys.stderr)
        return EXIT_NOT_IMPLEMENTED

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; what it raises ends in an exit code and one line, no traceback.

    Input errors are each command's to report (exit 2). Here: a reader that closed our
    stdout (``| head``) exits 2 quietly, Ctrl-C exits 130, anything else is a bug:
    one line and exit 70 (``SERVINGOPT_DEBUG=1`` adds the traceback; ``run`` always
    logs it, being a service whose log is the only record).
    """
    command = None
    try:
        words = sys.argv[1:] if argv is None else argv
        parser = build_parser(words)
        args = parser.parse_args(words)
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
