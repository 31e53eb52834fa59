"""Offline validation of servingopt documents, with field paths and reasons.

The same rules as the CRDs (schema bounds, enums, CEL rules, list-map keys) run
through pydantic, plus checks the API server cannot do: cross-namespace
targets, variants that cannot be selected, and instance types or pools missing
from a catalog when one is given.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import KINDS
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


def load_documents(path: Path) -> Iterator[tuple[str, Any]]:
    """YAML documents of a file (``-`` reads standard input), skipping empty ones."""
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    for index, doc in enumerate(yaml.safe_load_all(text)):
        if doc is not None:
            yield f"{path}#{index}", doc


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
    name = str((doc.get("metadata") or {}).get("name", "?"))
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


def validate_file(path: Path, catalog: InstanceCatalog | None = None) -> list[Result]:
    """Validate every document of a YAML file."""
    try:
        docs = list(load_documents(path))
    except yaml.YAMLError as error:
        return [Result(str(path), "?", "?", (Problem("", f"invalid YAML: {error}"),), None)]
    return [validate_document(doc, source, catalog) for source, doc in docs]


def load_one(path: Path, model: type[ApiModel]) -> Any:
    """Load and validate the first document of ``model``'s kind in a file.

    Raises ValueError with every problem listed when it is invalid or absent.
    """
    for result in validate_file(path):
        if result.kind != model.__name__:
            continue
        if not result.ok:
            raise ValueError(
                f"{path}: invalid {result.kind}:\n" + "\n".join(f"  {p}" for p in result.problems)
            )
        return result.obj
    raise ValueError(f"{path}: no {model.__name__} document found")
