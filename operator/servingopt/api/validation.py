"""Offline validation of servingopt documents, with field paths and reasons.

The same rules as the CRDs (schema bounds, enums, CEL rules, list-map keys) run
through pydantic, plus checks the API server cannot do: cross-namespace
targets, variants that cannot be selected, and instance types or pools missing
from a catalog when one is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import KINDS, yamlio
from .base import API_VERSION, ApiModel
from .instancecatalog import InstanceCatalog
from .modelserving import ModelServing, variants_without_selector
from .names import PATTERN_HELP


@dataclass(frozen=True)
class Problem:
    """One reason a document is invalid."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class Result:
    """Outcome of validating one document."""

    source: str
    kind: str
    name: str
    problems: tuple[Problem, ...]
    obj: ApiModel | None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Skipped:
    """A document of another API group, left alone: kustomize streams mix kinds."""

    source: str
    api_version: str
    kind: str
    name: str

    def __str__(self) -> str:
        return (
            f"{self.source} {self.api_version} {self.kind}/{self.name}: "
            "skipped (not a servingopt kind)"
        )


def load_documents(path: Path) -> Iterator[tuple[str, Any]]:
    """Objects of a YAML file (``-`` reads standard input), labelled ``FILE#N``.

    Documents count from 0; empty ones are dropped and the items of a ``v1 List``
    (``kubectl get -o yaml``) come one by one as ``FILE#N.items[I]``.  Raises
    :class:`~servingopt.api.yamlio.InputError` (one line) for unreadable or invalid input.
    """
    name = yamlio.source_name(path)
    for index, doc in enumerate(yamlio.load_documents(path)):
        if doc is not None:
            yield from _list_items(f"{name}#{index}", doc)


def _list_items(source: str, doc: Any) -> Iterator[tuple[str, Any]]:
    is_list = isinstance(doc, dict) and (doc.get("apiVersion"), doc.get("kind")) == ("v1", "List")
    if is_list and isinstance(doc.get("items"), list):
        for i, item in enumerate(doc["items"]):
            yield f"{source}.items[{i}]", item
    else:
        yield source, doc


def foreign(source: str, doc: Any) -> Skipped | None:
    """A Skipped when ``doc`` names an API group other than servingopt's.

    Documents of the servingopt group (any version, any kind) and documents without
    a usable apiVersion are not foreign: they get validated, so they fail loudly.
    """
    api_version = doc.get("apiVersion") if isinstance(doc, dict) else None
    if not isinstance(api_version, str) or not api_version:
        return None
    if api_version.split("/", 1)[0] == API_VERSION.split("/", 1)[0]:
        return None
    metadata = doc.get("metadata")
    name = metadata.get("name", "?") if isinstance(metadata, dict) else "?"
    return Skipped(source, api_version, str(doc.get("kind") or "?"), str(name))


def _path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problems_from(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = [p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "string_pattern_mismatch":
            pattern = str((item.get("ctx") or {}).get("pattern", ""))
            message = f"{item['input']!r} {PATTERN_HELP.get(pattern, message)}"
        # Rule messages name their own field ("minReplicas: …"); fold it into the path.
        head, sep, rest = message.partition(": ")
        if sep and " " not in head and head[:1].islower():
            loc.append(head)
            message = rest
        problems.append(Problem(_path(loc), message))
    return problems


def validate_document(
    doc: Any, source: str = "<input>", catalog: InstanceCatalog | None = None
) -> Result:
    """Validate one parsed document of any servingopt kind."""
    if not isinstance(doc, dict):
        return Result(source, "?", "?", (Problem("", "document is not a mapping"),), None)
    kind = str(doc.get("kind", ""))
    metadata = doc.get("metadata")  # any shape: pydantic reports a wrong one below
    name = str(metadata.get("name", "?")) if isinstance(metadata, dict) else "?"
    if doc.get("apiVersion") != API_VERSION:
        problem = Problem("apiVersion", f"must be {API_VERSION!r}, got {doc.get('apiVersion')!r}")
        return Result(source, kind or "?", name, (problem,), None)
    model = KINDS.get(kind)
    if model is None:
        known = ", ".join(sorted(KINDS))
        return Result(
            source, kind or "?", name, (Problem("kind", f"must be one of {known}"),), None
        )
    try:
        obj = model.model_validate(doc)
    except ValidationError as error:
        return Result(source, kind, name, tuple(_problems_from(error)), None)
    return Result(source, kind, name, tuple(_semantic_problems(obj, catalog)), obj)


def _semantic_problems(obj: ApiModel, catalog: InstanceCatalog | None) -> Iterator[Problem]:
    if not isinstance(obj, ModelServing):
        return
    for text in obj.namespace_rules():
        path, _, message = text.partition(": ")
        yield Problem(path, message)
    for name in variants_without_selector(obj.spec):
        yield Problem(
            "spec.variants",
            f"variant {name!r} gives no image, env or args, so it cannot be selected",
        )
    if catalog is not None:
        yield from catalog_problems(obj, catalog)


def catalog_problems(ms: ModelServing, catalog: InstanceCatalog) -> Iterator[Problem]:
    """References from a ModelServing to instance types or pools the catalog lacks."""
    types = catalog.by_name()
    pools = {t.pool for t in types.values()}
    cand = ms.spec.candidates
    for i, name in enumerate(cand.instance_types):
        if name not in types:
            yield Problem(f"spec.candidates.instanceTypes[{i}]", f"unknown instance type {name!r}")
    for i, pool in enumerate(cand.pools):
        if pool not in pools:
            yield Problem(f"spec.candidates.pools[{i}]", f"unknown pool {pool!r}")
    for vi, variant in enumerate(ms.spec.variants or []):
        for pi, profile in enumerate(variant.profiles):
            if profile.instance_type not in types:
                yield Problem(
                    f"spec.variants[{vi}].profiles[{pi}].instanceType",
                    f"unknown instance type {profile.instance_type!r}",
                )


def validate_stream(path: Path, catalog: InstanceCatalog | None = None) -> list[Result | Skipped]:
    """Validate the servingopt documents of a file or stream; skip other API groups.

    Raises :class:`~servingopt.api.yamlio.InputError` when it cannot be read or parsed.
    """
    out: list[Result | Skipped] = []
    for source, doc in load_documents(path):
        out.append(foreign(source, doc) or validate_document(doc, source, catalog))
    return out


def validate_file(path: Path, catalog: InstanceCatalog | None = None) -> list[Result]:
    """Validate every servingopt document of a YAML file.

    A file that cannot be read or parsed gives one Result holding why.
    """
    try:
        items = validate_stream(path, catalog)
    except yamlio.InputError as error:
        return [Result(error.source, "?", "?", (Problem("", error.reason),), None)]
    return [item for item in items if isinstance(item, Result)]


def load_one(path: Path, model: type[ApiModel]) -> Any:
    """Load and validate the first document of ``model``'s kind in a file.

    Raises ValueError with every problem listed when it is invalid or absent, and
    :class:`~servingopt.api.yamlio.InputError` (a ValueError) when the file cannot be
    read or parsed.
    """
    for result in validate_stream(path):
        if isinstance(result, Skipped) or result.kind != model.__name__:
            continue
        if not result.ok:
            raise ValueError(
                f"{path}: invalid {result.kind}:\n" + "\n".join(f"  {p}" for p in result.problems)
            )
        return result.obj
    raise ValueError(f"{yamlio.source_name(path)}: no {model.__name__} document found")
