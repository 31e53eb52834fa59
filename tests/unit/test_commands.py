"""One set of exit codes for every subcommand, documented; lazy subcommand imports."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import servingopt.cli
from servingopt.commands import COMMANDS, exits

ROOT = Path(__file__).resolve().parents[2]


def _codes() -> dict[str, int]:
    return {name: value for name, value in vars(exits).items() if name.startswith("EXIT_")}


def test_each_exit_code_has_one_name() -> None:
    codes = _codes()
    assert len(set(codes.values())) == len(codes)


def test_docs_list_exactly_the_exit_codes() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    documented = {
        name: int(code) for code, name in re.findall(r"^\| (\d+) \| `(EXIT_\w+)` \|", text, re.M)
    }
    assert documented == _codes()


def test_the_codes_raised_elsewhere_are_the_same() -> None:
    from servingopt.controller.leadership import EXIT_LEADERSHIP_LOST

    assert EXIT_LEADERSHIP_LOST == exits.EXIT_LEADERSHIP_LOST
    for name in servingopt.cli.__all__:
        if name.startswith("EXIT_"):
            assert getattr(servingopt.cli, name) == getattr(exits, name)


def test_every_command_module_registers_its_command() -> None:
    parser = servingopt.cli.build_parser()
    for command in COMMANDS:
        assert hasattr(importlib.import_module(command.module), "add_parser"), command
        args = parser.parse_args([command.name, *_required(command.name)])
        assert callable(args.func), command.name


def _required(name: str) -> list[str]:
    """Enough arguments for each subcommand to parse."""
    return {
        "plan": ["-f", "x.yaml"],
        "simulate": ["-f", "x.yaml", "--trace", "steady"],
        "validate": ["-f", "x.yaml"],
        "recommend": ["-f", "x.yaml"],
        "dev-cluster": ["status"],
    }.get(name, [])


def test_help_imports_no_subcommand() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from servingopt.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n"
        "loaded = [m for m in sys.modules if m.startswith('servingopt.')]\n"
        "print(' '.join(sorted(loaded)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert set(out) <= {"servingopt.cli", "servingopt.commands", "servingopt.commands.exits"}


def test_a_subcommand_imports_only_its_own_module() -> None:
    code = (
        "import sys\n"
        "from servingopt.cli import build_parser\n"
        "build_parser(['crds', '--check'])\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('servingopt.commands.'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    # and the two tiny modules every command shares (exit codes, help examples)
    assert out == [
        "servingopt.commands.crds",
        "servingopt.commands.exits",
        "servingopt.commands.helptext",
    ]
