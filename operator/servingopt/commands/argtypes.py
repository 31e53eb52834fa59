"""argparse types and checks shared by ``simulate`` and ``bench``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from servingopt.simulate.traces import MAX_SECONDS


def positive(text: str) -> float:
    """argparse type: a number > 0 (0 would silently mean "not given")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def at_most(limit: float) -> Callable[[str], float]:
    """argparse type: a number > 0 and at most ``limit``."""

    def check(text: str) -> float:
        value = positive(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"{text!r} must be at most {limit:g}")
        return value

    return check


def minutes(text: str) -> float:
    """argparse type: a period of 1 s up to the longest replay, in minutes."""
    value = at_most(MAX_SECONDS / 60)(text)
    if value * 60 < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is shorter than one second")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: a random seed, an integer >= 0 (what numpy accepts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def check_output(flag: str, path: Path | None) -> None:
    """Refuse an output path that cannot be written before a long run, not after it."""
    if path is None:
        return
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a directory")
    if not path.parent.is_dir():
        raise ValueError(f"{flag} {path}: no such directory {path.parent}")
