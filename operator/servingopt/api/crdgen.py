"""Generate the CustomResourceDefinitions from the pydantic models.

Pydantic emits JSON Schema (2020-12) with ``$defs``/``$ref`` and ``anyOf`` for
optional fields; Kubernetes wants a *structural* OpenAPI v3 schema: every node
typed, no references, ``nullable`` instead of a null branch, boolean
``exclusiveMinimum``. This module does that translation and adds what only a
CRD has: scope, names, the status subresource and printer columns.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .base import GROUP, VERSION, ApiModel
from .capacitymix import CapacityMix
from .instancecatalog import InstanceCatalog
from .modelserving import ModelServing
from .servingpolicy import ServingPolicy

_DROP_KEYS = {"title", "$schema", "examples"}
_KNOWN_FORMATS = {"int32", "int64", "float", "double", "byte", "date", "date-time", "duration"}


@dataclass(frozen=True)
class CrdSpec:
    """What a CRD needs beyond the schema."""

    model: type[ApiModel]
    plural: str
    singular: str
    short_names: tuple[str, ...]
    scope: str
    categories: tuple[str, ...]
    printer_columns: tuple[dict[str, Any], ...]
    has_status: bool
    scale: dict[str, str] | None = None
    """The scale subresource's paths (an autoscaler can scale the resource)."""


def _column(name: str, path: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "jsonPath": path, **extra}


RESOURCES: tuple[CrdSpec, ...] = (
    CrdSpec(
        model=ModelServing,
        plural="modelservings",
        singular="modelserving",
        short_names=("ms",),
        scope="Namespaced",
        categories=("servingopt",),
        printer_columns=(
            _column("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            _column("Mode", ".status.mode"),
            _column("Pool", ".status.recommendation.pool"),
            _column("Instance", ".status.recommendation.instanceType"),
            _column("Variant", ".status.recommendation.variant", priority=1),
            _column("Replicas", ".status.predicted.replicas", "integer"),
            _column("Batch", ".status.recommendation.maxBatchSize", "integer"),
            _column("$/h", ".status.cost.projectedHourly", "number"),
            _column("Savings", ".status.cost.savingsPercent", "integer"),
            _column("SLO", ".status.sloState"),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ),
        has_status=True,
    ),
    CrdSpec(
        model=ServingPolicy,
        plural="servingpolicies",
        singular="servingpolicy",
        short_names=("sp",),
        scope="Cluster",
        categories=("servingopt",),
        printer_columns=(
            _column("Aggressiveness", ".spec.aggressiveness"),
            _column("Default-Mode", ".spec.defaultMode"),
            _column("Min-Saving-%", ".spec.guardrails.minSavingPercent", "integer"),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ),
        has_status=False,
    ),
    CrdSpec(
        model=InstanceCatalog,
        plural="instancecatalogs",
        singular="instancecatalog",
        short_names=("ic",),
        scope="Cluster",
        categories=("servingopt",),
        printer_columns=(
            _column("Currency", ".spec.currency"),
            _column("Region", ".spec.region"),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ),
        has_status=False,
    ),
    CrdSpec(
        model=CapacityMix,
        plural="capacitymixes",
        singular="capacitymix",
        short_names=("cmix",),
        scope="Namespaced",
        categories=("servingopt",),
        printer_columns=(
            _column("Replicas", ".spec.replicas", "integer"),
            _column("On-demand", ".status.onDemandReplicas", "integer"),
            _column("Spot", ".status.spotReplicas", "integer"),
            _column("Max-Spot-%", ".spec.maxSpotPercent", "integer"),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ),
        has_status=True,
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    ),
)


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """Turn a pydantic JSON schema into a structural Kubernetes OpenAPI v3 schema."""
    defs = schema.get("$defs", {})
    return _convert(schema, defs)


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = copy.deepcopy(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        node = {**copy.deepcopy(target), **node}  # local keys (description…) win
        return _convert(node, defs)
    if "anyOf" in node:
        node = _merge_optional(node)
        return _convert(node, defs)
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = node.pop("allOf")[0]
        node = {**inner, **node}
        return _convert(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS or key == "$defs":
            continue
        if key == "properties":
            out[key] = {k: _convert(v, defs) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _convert(value, defs)
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "format" and value not in _KNOWN_FORMATS:
            continue
        elif key == "patternProperties":
            # CRDs have no patternProperties or propertyNames: the values get their
            # schema as additionalProperties, and CEL checks the keys.
            ((pattern, values),) = value.items()
            out["additionalProperties"] = _convert(values, defs)
            names = node.get("propertyNames", {})
            rule = _key_rule(pattern, names.get("maxLength", 316))
            out.setdefault("x-kubernetes-validations", []).append(rule)
        elif key == "propertyNames":
            continue
        elif key == "default" and isinstance(value, dict | list):
            if value:  # empty containers add nothing but noise
                out[key] = _without_nulls(value)
        elif key == "description":
            out[key] = " ".join(str(value).split())
        else:
            out[key] = value
    if "type" not in out:
        if "properties" in out or "additionalProperties" in out:
            out["type"] = "object"
        elif "enum" in out:
            out["type"] = _enum_type(out["enum"])
    if out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", None)
        if out["additionalProperties"] in (None, False):
            out.pop("additionalProperties")
    return out


def _key_rule(pattern: str, limit: int) -> dict[str, str]:
    literal = pattern.replace("\\", "\\\\")  # a CEL string literal: escape backslashes
    return {
        "rule": f"self.all(k, k.size() <= {limit} && k.matches('{literal}'))",
        "message": f"keys must match {pattern} (at most {limit} characters)",
    }


def _without_nulls(value: Any) -> Any:
    """Defaults as the API server would store them: unset optional fields omitted."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _enum_type(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) for v in values):
        return "integer"
    return "string"


def _merge_optional(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {type: null}]`` becomes X with ``nullable: true``."""
    branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
    if len(branches) != 1:
        raise ValueError(f"unsupported union in schema: {branches}")
    merged = {**branches[0], **node}
    if merged.get("default", "absent") is None:
        merged.pop("default")
    merged["nullable"] = True
    return merged


def openapi_schema(spec: CrdSpec) -> dict[str, Any]:
    """The openAPIV3Schema of one resource."""
    raw = spec.model.model_json_schema(by_alias=True, mode="validation")
    schema = structural(raw)
    props = schema["properties"]
    props["apiVersion"] = {
        "type": "string",
        "description": "APIVersion of this object: servingopt.io/v1alpha1.",
    }
    props["kind"] = {
        "type": "string",
        "description": f"Kind of this object: {spec.model.__name__}.",
    }
    props["metadata"] = {"type": "object"}
    if spec.has_status and "status" in props:
        props["status"].pop("nullable", None)
    elif "status" in props:
        props.pop("status")
    schema.pop("required", None)
    schema["required"] = ["spec"] if "spec" in props and _spec_required(spec) else []
    if not schema["required"]:
        schema.pop("required")
    props["spec"].pop("default", None)
    return schema


def _spec_required(spec: CrdSpec) -> bool:
    return spec.model.model_fields["spec"].is_required()


def crd(spec: CrdSpec) -> dict[str, Any]:
    """The full CustomResourceDefinition of one resource."""
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": openapi_schema(spec)},
        "additionalPrinterColumns": list(spec.printer_columns),
    }
    if spec.has_status:
        version["subresources"] = {"status": {}}
    if spec.scale is not None:
        version.setdefault("subresources", {})["scale"] = dict(spec.scale)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{spec.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "servingopt"},
        },
        "spec": {
            "group": GROUP,
            "scope": spec.scope,
            "names": {
                "kind": spec.model.__name__,
                "listKind": f"{spec.model.__name__}List",
                "plural": spec.plural,
                "singular": spec.singular,
                "shortNames": list(spec.short_names),
                "categories": list(spec.categories),
            },
            "versions": [version],
        },
    }


HEADER = "# Generated by `servingopt crds` from servingopt.api. Do not edit.\n"


def render_all() -> dict[str, str]:
    """File name -> YAML text for every CRD."""
    return {
        f"{GROUP}_{s.plural}.yaml": HEADER
        + yaml.safe_dump(crd(s), sort_keys=False, width=100, allow_unicode=True)
        for s in RESOURCES
    }


def write(directory: Path) -> list[Path]:
    """Write every CRD into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Names of CRD files in ``directory`` that differ from the models (or are missing)."""
    problems = []
    expected = render_all()
    for name, text in expected.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text() != text:
            problems.append(f"{name}: out of date")
    for path in sorted(directory.glob(f"{GROUP}_*.yaml")):
        if path.name not in expected:
            problems.append(f"{path.name}: not generated by servingopt (remove it)")
    return problems
