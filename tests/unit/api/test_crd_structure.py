"""The generated CRDs are structural and carry what `kubectl` and the API server need."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from servingopt.api import crdgen

ROOT = Path(__file__).resolve().parents[3]
CRDS = {spec.model.__name__: crdgen.crd(spec) for spec in crdgen.RESOURCES}
TYPE_EXEMPT = ("x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields")


def schema_of(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (properties, items, map values)."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")


def all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield key
            yield from all_keys(child)
    elif isinstance(value, list):
        for child in value:
            yield from all_keys(child)


def node_at(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    """The schema node a printer column's JSONPath reads; a filter such as
    ``[?(@.type=="Ready")]`` selects an item of the list before it."""
    node: dict[str, Any] | None = schema
    steps = re.findall(r"\.(\w+)(\[\?\(@\.[^)]*\)\])?", json_path)
    assert "".join(f".{name}{where}" for name, where in steps) == json_path, json_path
    for name, where in steps:
        node = (node or {}).get("properties", {}).get(name)
        if where:
            assert (node or {}).get("type") == "array", json_path
            node = (node or {}).get("items")
    return node


@pytest.mark.parametrize("kind", CRDS)
def test_no_references_or_unions(kind: str) -> None:
    keys = set(all_keys(CRDS[kind]))
    assert not keys & {"$ref", "$defs", "anyOf", "oneOf", "allOf", "const"}


@pytest.mark.parametrize("kind", CRDS)
def test_every_schema_node_is_typed(kind: str) -> None:
    untyped = [
        path or "<root>"
        for path, node in schema_nodes(schema_of(kind))
        if "type" not in node and not any(node.get(k) for k in TYPE_EXEMPT)
    ]
    assert untyped == []


@pytest.mark.parametrize("kind", CRDS)
def test_objects_do_not_mix_properties_and_additional_properties(kind: str) -> None:
    mixed = [
        p
        for p, n in schema_nodes(schema_of(kind))
        if "properties" in n and "additionalProperties" in n
    ]
    assert mixed == []


@pytest.mark.parametrize("kind", CRDS)
def test_list_map_keys_are_required_fields_of_the_items(kind: str) -> None:
    for path, node in schema_nodes(schema_of(kind)):
        if node.get("x-kubernetes-list-type") != "map":
            continue
        items = node["items"]
        for key in node["x-kubernetes-list-map-keys"]:
            assert key in items["properties"], f"{path}: key {key} is not a field"
            assert key in items.get("required", []), f"{path}: key {key} is not required"


def test_keyed_lists_are_list_maps() -> None:
    maps = {
        path: node["x-kubernetes-list-map-keys"]
        for kind in ("ModelServing", "InstanceCatalog")
        for path, node in schema_nodes(schema_of(kind))
        if node.get("x-kubernetes-list-type") == "map"
    }
    assert maps[".spec.variants"] == ["name"]
    assert maps[".spec.variants[].env"] == ["name"]
    assert maps[".spec.variants[].profiles"] == ["instanceType"]
    assert maps[".spec.variants[].profiles[].points"] == ["batchSize"]
    assert maps[".status.conditions"] == ["type"]
    assert maps[".spec.instanceTypes"] == ["name"]


@pytest.mark.parametrize("kind", CRDS)
def test_list_sets_hold_scalars(kind: str) -> None:
    for path, node in schema_nodes(schema_of(kind)):
        if node.get("x-kubernetes-list-type") == "set":
            assert node["items"]["type"] in ("string", "integer", "number", "boolean"), path


@pytest.mark.parametrize("kind", CRDS)
def test_defaults_respect_their_enums(kind: str) -> None:
    for path, node in schema_nodes(schema_of(kind)):
        if "default" in node and "enum" in node:
            assert node["default"] in node["enum"], path


@pytest.mark.parametrize("kind", CRDS)
def test_cel_field_paths_name_existing_fields(kind: str) -> None:
    for path, node in schema_nodes(schema_of(kind)):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["rule"] and rule["message"], path
            if "fieldPath" in rule:
                field = rule["fieldPath"].lstrip(".")
                assert field in node["properties"], f"{path}: fieldPath {field}"


def rules_by_path(kind: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, node in schema_nodes(schema_of(kind)):
        for rule in node.get("x-kubernetes-validations", []):
            out.setdefault(path, []).append(rule["rule"])
    return out


def test_cross_field_rules_are_in_the_crds() -> None:
    ms = rules_by_path("ModelServing")
    assert "self.minReplicas <= self.maxReplicas" in ms[".spec.autoscaling"]
    assert "self.min <= self.max" in ms[".spec.batching.maxBatchSize"]
    assert "self.min <= self.max" in ms[".spec.batching.maxQueueDelayMicroseconds"]
    assert any("isSorted()" in r for r in ms[".spec.variants[].profiles[]"])
    assert any("minAccuracy" in r for r in ms[".spec"])
    assert any("labelMatchers" in r for r in ms[".spec.metrics"])
    ic = rules_by_path("InstanceCatalog")
    assert any("spotHourly <= self.onDemandHourly" in r for r in ic[".spec.instanceTypes[]"])
    sp = rules_by_path("ServingPolicy")
    assert any("start.matches" in r for r in sp[".spec.guardrails.maintenanceWindows[]"])


def test_model_serving_has_status_subresource_and_others_do_not() -> None:
    versions = {k: crd["spec"]["versions"][0] for k, crd in CRDS.items()}
    assert versions["ModelServing"]["subresources"] == {"status": {}}
    assert "status" in schema_of("ModelServing")["properties"]
    for kind in ("ServingPolicy", "InstanceCatalog"):
        assert "subresources" not in versions[kind]
        assert "status" not in schema_of(kind)["properties"]


def test_scopes_and_names() -> None:
    assert CRDS["ModelServing"]["spec"]["scope"] == "Namespaced"
    assert CRDS["ServingPolicy"]["spec"]["scope"] == "Cluster"
    assert CRDS["InstanceCatalog"]["spec"]["scope"] == "Cluster"
    assert CRDS["ModelServing"]["spec"]["names"]["shortNames"] == ["ms"]
    for kind, crd in CRDS.items():
        assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.servingopt.io"
        assert crd["spec"]["names"]["kind"] == kind


def test_model_serving_printer_columns() -> None:
    columns = CRDS["ModelServing"]["spec"]["versions"][0]["additionalPrinterColumns"]
    names = [c["name"] for c in columns]
    for wanted in ("Mode", "Pool", "Instance", "Replicas", "Batch", "$/h", "Savings", "SLO", "Age"):
        assert wanted in names
    assert names[:2] == ["Ready", "Mode"]


@pytest.mark.parametrize("kind", CRDS)
def test_printer_columns_point_at_typed_fields(kind: str) -> None:
    schema = schema_of(kind)
    for column in CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]:
        if column["jsonPath"].startswith(".metadata."):
            continue
        node = node_at(schema, column["jsonPath"])
        assert node is not None, f"{column['name']}: {column['jsonPath']} is not in the schema"
        assert node["type"] == column["type"] or {node["type"], column["type"]} == {
            "integer",
            "number",
        }, column["name"]


def test_spec_is_required_where_the_model_requires_it() -> None:
    assert schema_of("ModelServing")["required"] == ["spec"]
    assert schema_of("InstanceCatalog")["required"] == ["spec"]
    assert "required" not in schema_of("ServingPolicy")


def test_committed_crds_parse_to_the_generated_objects() -> None:
    for spec in crdgen.RESOURCES:
        path = ROOT / "crds" / f"servingopt.io_{spec.plural}.yaml"
        assert yaml.safe_load(path.read_text()) == crdgen.crd(spec)
