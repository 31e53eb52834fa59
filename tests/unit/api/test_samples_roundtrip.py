"""Samples and shipped manifests load into the models and survive a wire round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from servingopt.api import KINDS, InstanceCatalog, ModelServing, crdgen
from servingopt.api.validation import load_one

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = [
    (path, index, doc)
    for folder in ("samples", "deploy")
    for path in sorted((ROOT / folder).rglob("*.yaml"))
    if "templates" not in path.parts  # Helm templates are not YAML until rendered
    for index, doc in enumerate(yaml.safe_load_all(path.read_text()))
    if isinstance(doc, dict) and doc.get("kind") in KINDS
]
SCHEMAS = {s.model.__name__: crdgen.openapi_schema(s) for s in crdgen.RESOURCES}


def ids(item: tuple[Path, int, Any]) -> str:
    return f"{item[0].relative_to(ROOT)}#{item[1]}"


def unknown_keys(value: Any, node: dict[str, Any], path: str = "") -> list[str]:
    """Keys of ``value`` that the CRD schema ``node`` does not declare."""
    out: list[str] = []
    if isinstance(value, dict) and "properties" in node:
        for key, child in value.items():
            if key not in node["properties"]:
                out.append(f"{path}.{key}")
            else:
                out += unknown_keys(child, node["properties"][key], f"{path}.{key}")
    elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
        for key, child in value.items():
            out += unknown_keys(child, node["additionalProperties"], f"{path}.{key}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, child in enumerate(value):
            out += unknown_keys(child, node["items"], f"{path}[{i}]")
    return out


def test_there_are_documents_of_every_kind() -> None:
    assert {doc["kind"] for _, _, doc in DOCUMENTS} == set(KINDS)


@pytest.mark.parametrize(("path", "index", "doc"), DOCUMENTS, ids=[ids(d) for d in DOCUMENTS])
def test_wire_round_trip(path: Path, index: int, doc: dict[str, Any]) -> None:
    model = KINDS[doc["kind"]]
    obj = model.model_validate(doc)
    wire = obj.to_wire()
    again = model.model_validate(wire)
    assert again == obj
    assert again.to_wire() == wire
    # Everything the user wrote survives (defaults may be added, nothing dropped).
    assert unknown_keys(doc, SCHEMAS[doc["kind"]]) == []


@pytest.mark.parametrize(("path", "index", "doc"), DOCUMENTS, ids=[ids(d) for d in DOCUMENTS])
def test_wire_form_only_uses_schema_fields(path: Path, index: int, doc: dict[str, Any]) -> None:
    wire = KINDS[doc["kind"]].model_validate(doc).to_wire()
    assert unknown_keys(wire, SCHEMAS[doc["kind"]]) == []


def test_status_round_trips_through_the_schema() -> None:
    sample = ROOT / "samples" / "modelservings" / "resnet50-classifier.yaml"
    doc = yaml.safe_load(sample.read_text())
    doc["status"] = {
        "observedGeneration": 3,
        "sloState": "Met",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Planned",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "recommendation": {
            "instanceType": "g4dn.xlarge",
            "pool": "gpu-t4",
            "replicas": {"min": 2, "max": 14},
            "maxBatchSize": 16,
            "hourlyCost": 3.16,
        },
        "cost": {"projectedHourly": 3.16, "baselineHourly": 9.18, "savingsPercent": 66},
        "alternatives": [{"instanceType": "g5.xlarge", "rejected": "dearer"}],
    }
    ms = ModelServing.model_validate(doc)
    assert ms.status is not None and ms.status.cost is not None
    assert ms.status.cost.savings_percent == 66
    assert unknown_keys(ms.to_wire(), SCHEMAS["ModelServing"]) == []


def test_samples_reference_only_catalogued_types() -> None:
    catalog = load_one(
        ROOT / "deploy" / "catalog" / "default-instancecatalog.yaml", InstanceCatalog
    )
    types = catalog.by_name()
    pools = {t.pool for t in types.values()}
    for path in sorted((ROOT / "samples" / "modelservings").glob("*.yaml")):
        ms = load_one(path, ModelServing)
        assert set(ms.spec.candidates.pools) <= pools, path.name
        for variant in ms.spec.variants or []:
            for profile in variant.profiles:
                assert profile.instance_type in types, path.name


def test_workloads_match_their_model_servings() -> None:
    for path in sorted((ROOT / "samples" / "modelservings").glob("*.yaml")):
        ms = load_one(path, ModelServing)
        workload = ROOT / "samples" / "workloads" / path.name
        deployment = yaml.safe_load(workload.read_text())
        assert deployment["kind"] == "Deployment"
        assert deployment["metadata"]["name"] == ms.spec.target_ref.name
        env = {
            e["name"]
            for c in deployment["spec"]["template"]["spec"]["containers"]
            for e in c.get("env", [])
        }
        assert ms.spec.batching.env.max_batch_size in env, path.name
