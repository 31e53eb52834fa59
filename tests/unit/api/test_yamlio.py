"""The bounded, strict reader every command uses for its input files."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from servingopt.api import yamlio
from servingopt.api.yamlio import MAX_DEPTH, InputError, PyStrictLoader, StrictLoader

LOADERS = sorted({PyStrictLoader, StrictLoader}, key=lambda c: c.__name__)


def laughs(levels: int) -> str:
    """Each level aliases the one before ten times: 10**levels nodes once expanded."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture(params=LOADERS, ids=lambda c: c.__name__)
def loader(request: pytest.FixtureRequest) -> type:
    cls: type = request.param
    return cls


def parse_error(text: str, loader: type) -> str:
    with pytest.raises(InputError) as caught:
        yamlio.parse_documents(text, "in.yaml", loader)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("in.yaml: invalid YAML: ")
    return message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: 1\nb: 2\na: 3\n", "line 3, column 1: duplicate key 'a' (first at line 1)"),
        ("a: 1\n'a': 2\n", "duplicate key 'a'"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
        ("a: &a " + "[" * 60 + "]" * 60 + "\nb: " + "[" * 50 + "*a" + "]" * 50, "alias *a nests"),
        (laughs(7), "larger than 1000000 nodes"),
        ("a: &a [1, *a]\n", "alias *a refers to a collection that contains it"),
        ("a: !!int abc\n", "line 1, column 4: cannot read tag:yaml.org,2002:int 'abc'"),
        ("a: !!timestamp 2024-13-99\n", "month must be in 1..12"),
        ("a: !!python/object:os.system x\n", "could not determine a constructor"),
        ("a: " + "9" * 5000 + "\n", "Exceeds the limit"),
        ("a: [1, 2\nb: 3\n", "line 2"),
        ("a: 1\nb: \x00\n", "line 2: character #x0000"),
        ("a: *nope\n", "found undefined alias 'nope'"),
    ],
    ids=[
        "duplicate",
        "duplicate-quoted",
        "deep",
        "deep-through-alias",
        "billion-laughs",
        "recursive-alias",
        "bad-int-tag",
        "bad-timestamp",
        "python-tag",
        "huge-int",
        "syntax",
        "nul",
        "undefined-alias",
    ],
)
def test_bad_yaml_is_one_line_naming_the_problem(text: str, fragment: str, loader: type) -> None:
    assert fragment in parse_error(text, loader)


def test_block_nesting_is_limited_too(loader: type) -> None:
    text = "".join("  " * i + "-\n" for i in range(MAX_DEPTH + 5))
    assert f"line {MAX_DEPTH + 1}, column {2 * MAX_DEPTH + 1}: nested deeper" in parse_error(
        text, loader
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * MAX_DEPTH + "]" * MAX_DEPTH, None),  # exactly the limit
        ("a: 1\n'1': 2\n1: 3\n", {"a": 1, "1": 2, 1: 3}),  # str and int keys differ
        ("b: &b {x: 1}\nc:\n  <<: *b\n  x: 3\n", {"b": {"x": 1}, "c": {"x": 3}}),  # no duplicate
        ("a: .inf\n", {"a": float("inf")}),  # the models, not the reader, refuse it
        (laughs(5), None),  # 10**5 nodes expanded: fine
    ],
    ids=["depth-limit", "typed-keys", "merge-key", "inf", "some-aliases"],
)
def test_valid_yaml_still_loads(text: str, expected: object, loader: type) -> None:
    (doc,) = yamlio.parse_documents(text, "in.yaml", loader)
    if expected is not None:
        assert doc == expected


def test_documents_keep_their_places(loader: type) -> None:
    docs = yamlio.parse_documents("a: 1\n---\n---\nb: 2\n", "in.yaml", loader)
    assert docs == [{"a": 1}, None, {"b": 2}]


def test_invalid_utf8_names_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    wanted = r"bad.yaml: not valid UTF-8: byte 0xe9 at offset 11 \(line 2\)"
    with pytest.raises(InputError, match=wanted):
        yamlio.load_documents(path)


def test_utf16_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "utf16.yaml"
    path.write_bytes("a: 1\n".encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        yamlio.read_text(path)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p, "is a directory, not a file"),
        (lambda p: p / "absent.yaml", "no such file"),
    ],
    ids=["directory", "missing"],
)
def test_unreadable_paths(make: Callable[[Path], Path], fragment: str, tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError, match=fragment) as caught:
        yamlio.read_text(path)
    assert caught.value.source == str(path)


def test_input_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * 1025)
    with pytest.raises(InputError, match="larger than"):
        yamlio.read_text(path, limit=1024)
    assert yamlio.read_text(path, limit=1025) == "#" * 1025


def test_stdin_is_read_as_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a: \xff\n")))
    with pytest.raises(InputError, match=r"<stdin>: not valid UTF-8: byte 0xff"):
        yamlio.load_documents("-")


def test_closed_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(InputError, match="standard input is closed"):
        yamlio.load_documents("-")
