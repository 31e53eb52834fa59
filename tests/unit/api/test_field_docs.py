"""Every field is described, and every default is visible in the CRD and the reference."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from servingopt.api import crdgen, docgen

ROOT = Path(__file__).resolve().parents[3]
ENVELOPE = {"api_version", "kind", "metadata"}  # documented by crdgen itself


def submodels(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in submodels(arg)]


def inner(node: dict[str, Any]) -> dict[str, Any]:
    """The object node below arrays and maps."""
    while "properties" not in node:
        if isinstance(node.get("items"), dict):
            node = node["items"]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            break
    return node


def fields(
    cls: type[BaseModel], node: dict[str, Any], path: str
) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(path, pydantic FieldInfo, CRD schema node) of every field below ``cls``."""
    for name, info in cls.model_fields.items():
        if not path and name in ENVELOPE:
            continue
        alias = info.alias or name
        child = node["properties"][alias]
        child_path = f"{path}.{alias}" if path else alias
        yield child_path, info, child
        for model in submodels(info.annotation):
            yield from fields(model, inner(child), child_path)


ALL_FIELDS = [
    (spec.model.__name__, path, info, node)
    for spec in crdgen.RESOURCES
    for path, info, node in fields(spec.model, crdgen.openapi_schema(spec), "")
]
IDS = [f"{kind}.{path}" for kind, path, _, _ in ALL_FIELDS]


def test_the_walk_covers_spec_and_status() -> None:
    paths = {f"{kind}.{path}" for kind, path, _, _ in ALL_FIELDS}
    assert "ModelServing.spec.variants.profiles.points.latencyMs" in paths
    assert "ModelServing.status.cost.savingsPercent" in paths
    assert "InstanceCatalog.spec.instanceTypes.gpu.memoryGiB" in paths
    assert "ServingPolicy.spec.guardrails.maintenanceWindows.start" in paths


@pytest.mark.parametrize(("kind", "path", "info", "node"), ALL_FIELDS, ids=IDS)
def test_field_has_a_description(kind: str, path: str, info: Any, node: dict[str, Any]) -> None:
    # A field typed by a model may rely on that model's docstring (as spec and status do).
    described = info.description or "".join(m.__doc__ or "" for m in submodels(info.annotation))
    assert described.strip(), f"{kind}.{path}: add a docstring"
    assert node.get("description", "").strip(), f"{kind}.{path}: no description in the CRD"


def has_scalar_default(info: Any) -> bool:
    default = info.default
    return default is not PydanticUndefined and isinstance(default, str | int | float | bool)


def test_scalar_defaults_are_in_the_crd() -> None:
    checked = 0
    for kind, path, info, node in ALL_FIELDS:
        if has_scalar_default(info):
            assert node.get("default") == info.default, f"{kind}.{path}"
            checked += 1
    assert checked >= 40


def test_reference_shows_every_field_with_its_default() -> None:
    text = docgen.render()
    for kind, path, info, node in ALL_FIELDS:
        # The reference writes list items as `[]`; our walk does not.
        rows = [ln for ln in text.splitlines() if _plain(ln).startswith(f"| `{path}` |")]
        assert rows, f"{kind}.{path} is missing from the reference"
        if "default" in node and not info.is_required():
            assert any(docgen._code(node["default"]) in row for row in rows), f"{kind}.{path}"


def _plain(line: str) -> str:
    return line.replace("[]", "").replace("{}", "")


def test_api_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "api-reference.md").read_text()
    assert committed == docgen.render(), (
        "docs/api-reference.md is stale: run "
        "`python -m servingopt.api.docgen > docs/api-reference.md`"
    )
