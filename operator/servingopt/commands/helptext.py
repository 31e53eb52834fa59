"""The ``examples:`` section every subcommand's ``--help`` ends with."""

from __future__ import annotations

import argparse
from typing import Any

EXAMPLES = "examples:"


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, except that the examples keep their lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(EXAMPLES):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def examples(*lines: str, raw: bool = False) -> dict[str, Any]:
    """Keywords for ``add_parser``: an epilog of example command lines (``raw``: the
    description keeps its lines too)."""
    return {
        "epilog": "\n".join([EXAMPLES, *(f"  {line}" for line in lines)]),
        "formatter_class": argparse.RawDescriptionHelpFormatter if raw else _Formatter,
    }
