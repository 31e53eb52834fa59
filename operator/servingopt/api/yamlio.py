"""Reading user input safely: bounded, strict UTF-8, YAML without surprises.

Every command that reads a file (or standard input, ``-``) goes through here, so bad
input ends in one :class:`InputError` whose message is a single line naming the
source and what is wrong, never in a traceback:

* at most :data:`MAX_INPUT_BYTES` bytes (a CSV caller may pass a larger limit);
* strict UTF-8, the first bad byte named by offset and line;
* YAML mapping keys must be unique (Kubernetes rejects duplicates too; PyYAML would
  keep the last one silently);
* at most :data:`MAX_DEPTH` nested collections, checked before PyYAML's recursive
  composer descends, aliases counted as expanded;
* at most :data:`MAX_NODES` nodes per document once aliases are expanded (no
  "billion laughs"), and no alias to a collection that contains it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import Event, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

STDIN = "-"
MIB = 1024 * 1024
MAX_INPUT_BYTES = 16 * MIB
MAX_DEPTH = 100
MAX_NODES = 1_000_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class InputError(ValueError):
    """Input that cannot be read or parsed; ``str()`` is one line naming the source."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


def source_name(path: Path | str) -> str:
    """How messages name an input: ``<stdin>`` for ``-``, else the path as given."""
    return "<stdin>" if str(path) == STDIN else str(path)


def read_bytes(path: Path | str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a regular file or of standard input (``-``), at most ``limit``."""
    name = source_name(path)
    data = _read_stdin(limit) if str(path) == STDIN else _read_file(Path(path), name, limit)
    if len(data) > limit:
        raise InputError(name, f"larger than {limit / MIB:g} MiB, the most servingopt reads")
    return data


def _read_stdin(limit: int) -> bytes:
    stream = sys.stdin
    if stream is None:  # started with standard input closed
        raise InputError("<stdin>", "standard input is closed")
    binary = getattr(stream, "buffer", None)
    if binary is None:  # a text stream without bytes underneath (tests, embedding)
        return stream.read(limit + 1).encode("utf-8", "surrogateescape")
    data: bytes = binary.read(limit + 1)
    return data


def _read_file(path: Path, name: str, limit: int) -> bytes:
    try:
        if path.is_dir():
            raise InputError(name, "is a directory, not a file")
        with path.open("rb") as handle:
            return handle.read(limit + 1)
    except FileNotFoundError:
        raise InputError(name, "no such file") from None
    except PermissionError:
        raise InputError(name, "permission denied") from None
    except OSError as error:
        raise InputError(name, f"cannot read: {error.strerror or error}") from None


def decode(data: bytes, name: str) -> str:
    """Strict UTF-8 text; the error names the first bad byte's offset and line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        hint = " (UTF-16? save it as UTF-8)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise InputError(
            name,
            f"not valid UTF-8: byte 0x{data[error.start]:02x} at offset {error.start} "
            f"(line {line}){hint}",
        ) from None


def read_text(path: Path | str, limit: int = MAX_INPUT_BYTES) -> str:
    """UTF-8 text of a file or standard input, bounded (see :func:`read_bytes`)."""
    return decode(read_bytes(path, limit), source_name(path))


class _StrictComposer(Composer):
    """PyYAML's composer plus the depth, size, alias and duplicate-key checks."""

    if TYPE_CHECKING:  # provided by the parser it is mixed with

        def peek_event(self) -> Event: ...

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0  # collections open around the node being composed
        self._shapes: dict[int, tuple[int, int]] = {}  # id(node) -> (height, nodes)

    def compose_document(self) -> Node | None:
        self._shapes = {}
        node: Node | None = super().compose_document()
        self._shapes = {}
        return node

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        fresh = isinstance(event, (SequenceStartEvent, MappingStartEvent))
        if fresh:
            if self._depth >= MAX_DEPTH:
                _fail(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
            self._depth += 1
        try:
            node: Node = super().compose_node(parent, index)  # type: ignore[assignment]
        finally:
            if fresh:
                self._depth -= 1
        if isinstance(node, MappingNode) and fresh:
            _check_unique_keys(node)
        if not isinstance(node, ScalarNode):
            self._check_shape(node, event, fresh)
        return node

    def _check_shape(self, node: Node, event: Any, fresh: bool) -> None:
        """Height and size with aliases expanded (an alias is the non-fresh case)."""
        alias = "" if fresh else f"alias *{event.anchor} "
        if fresh:
            self._shapes[id(node)] = self._shape_of(node)
        elif id(node) not in self._shapes:  # still being composed: it contains the alias
            _fail(f"{alias}refers to a collection that contains it", event.start_mark)
        height, size = self._shapes[id(node)]
        if self._depth + height > MAX_DEPTH:
            _fail(f"{alias}nests the document deeper than {MAX_DEPTH} levels", event.start_mark)
        if size > MAX_NODES:
            _fail(f"{alias}makes the document larger than {MAX_NODES} nodes", event.start_mark)

    def _shape_of(self, node: Node) -> tuple[int, int]:
        children: list[Node] = (
            [part for pair in node.value for part in pair]
            if isinstance(node, MappingNode)
            else list(node.value)
        )
        height, size = 0, 1
        for child in children:
            h, s = self._shapes.get(id(child), (0, 1))
            height, size = max(height, h), size + s
        return height + 1, size


def _check_unique_keys(node: MappingNode) -> None:
    # Scalar keys compare by resolved tag and text: "a" and a collide, 1 and "1" do not.
    seen: dict[tuple[str, str], Any] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
            continue
        first: Any = seen.setdefault((key.tag, key.value), key.start_mark)
        if first is not key.start_mark:
            _fail(f"duplicate key {key.value!r} (first at line {first.line + 1})", key.start_mark)


def _fail(problem: str, mark: Any) -> NoReturn:
    raise ComposerError(None, None, problem, mark)


class _StrictConstructor(SafeConstructor):
    def construct_object(self, node: Node, deep: bool = False) -> Any:
        # Explicit tags (!!int abc, !!timestamp 2024-13-99) fail with plain Python errors.
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, ArithmeticError, AttributeError) as error:
            value = f" {str(node.value)[:40]!r}" if isinstance(node, ScalarNode) else ""
            raise ConstructorError(
                None, None, f"cannot read {node.tag}{value}: {error}", node.start_mark
            ) from None


class PyStrictLoader(Reader, Scanner, Parser, _StrictComposer, _StrictConstructor, Resolver):
    """PyYAML's safe loader with this module's checks, all in Python."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _StrictComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


StrictLoader: type[_StrictComposer] = PyStrictLoader
try:  # libyaml's event parser is about 6x faster; the composer stays in Python (above)
    from yaml._yaml import CParser

    class CStrictLoader(_StrictComposer, CParser, _StrictConstructor, Resolver):
        """The same checks on libyaml's parser."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _StrictComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    StrictLoader = CStrictLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    pass


def describe(error: yaml.YAMLError, text: str = "") -> str:
    """A YAML error on one line: ``line L, column C: problem (context at line L')``."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        context = ""
        if error.context and error.problem:
            at = error.context_mark
            context = f" ({error.context}" + (f" at line {at.line + 1})" if at else ")")
        return _one_line(f"{where}{problem}{context}")
    if getattr(error, "reason", None) is not None:
        return _describe_character(error, text)
    return _one_line(str(error))


def _describe_character(error: Any, text: str) -> str:
    """A ReaderError: a character YAML forbids (control characters, BOM-like ones)."""
    char = error.character
    code = ord(char) if isinstance(char, str) and len(char) == 1 else char
    shown = f"#x{code:04x}" if isinstance(code, int) else repr(code)
    position = error.position
    line = f"line {text.count(chr(10), 0, position) + 1}: " if isinstance(position, int) else ""
    return f"{line}character {shown}: {error.reason}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def parse_documents(text: str, name: str, loader: type[_StrictComposer] | None = None) -> list[Any]:
    """Every YAML document of ``text`` (``None`` for empty ones); InputError when invalid."""
    try:
        return list(yaml.load_all(text, Loader=loader or StrictLoader))  # type: ignore[arg-type]
    except yaml.YAMLError as error:
        raise InputError(name, f"invalid YAML: {describe(error, text)}") from None
    except RecursionError:  # a safety net: MAX_DEPTH keeps the composer well inside
        raise InputError(name, "invalid YAML: nested too deeply") from None


def load_documents(path: Path | str) -> list[Any]:
    """Every YAML document of a file or of standard input (``-``)."""
    return parse_documents(read_text(path), source_name(path))
