"""Shared building blocks for the servingopt API models.

Every resource is a pydantic model and the single source of truth: the CRDs in
``crds/`` are generated from these classes, and ``servingopt validate`` runs the
same rules offline. Cross-field rules are declared once as :class:`Rule` objects
that carry both the CEL expression the API server evaluates and the Python
predicate the offline validator evaluates, with the same message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar, Final, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, model_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from .names import DnsLabel, DnsSubdomain

GROUP = "servingopt.io"
VERSION = "v1alpha1"
API_VERSION: Final = "servingopt.io/v1alpha1"

CapacityType = Literal["on-demand", "spot"]
Mode = Literal["Auto", "Recommend", "Off"]


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: CEL for the API server, a predicate for offline checks.

    ``check`` receives the model instance and returns True when the rule holds.
    ``field`` names the offending field (relative to the model) for error paths.
    """

    cel: str
    message: str
    check: Callable[[Any], bool]
    field: str | None = None

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.cel, "message": self.message}
        if self.field:
            out["fieldPath"] = f".{self.field}"
        return out


class RuleViolation(ValueError):
    """Raised by the offline validator when a :class:`Rule` does not hold."""


class ApiModel(BaseModel):
    """Base for every API object: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=False,
        allow_inf_nan=False,  # a price, budget or SLO of .inf or .nan is an error
    )

    #: Cross-field rules of this object (CEL in the CRD, predicates offline).
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> ApiModel:
        for name, keys in _list_map_keys(type(self)).items():
            _check_unique(name, getattr(self, name), keys, type(self).model_fields[name].alias)
        for rule in type(self).rules:
            if not rule.check(self):
                where = f"{rule.field}: " if rule.field else ""
                raise RuleViolation(f"{where}{rule.message}")
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        if cls.rules:
            target = handler.resolve_ref_schema(schema)
            target["x-kubernetes-validations"] = [r.to_schema() for r in cls.rules]
        return schema

    def to_wire(self) -> dict[str, Any]:
        """The object as Kubernetes stores it: camelCase, no unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectMeta(BaseModel):
    """The subset of metav1.ObjectMeta the offline validator understands."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: DnsSubdomain | None = None
    namespace: DnsLabel | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


def list_map(*keys: str, max_items: int | None = None) -> dict[str, Any]:
    """Schema extras for a list whose items are unique by ``keys`` (like a map)."""
    extra: dict[str, Any] = {
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": list(keys),
    }
    if max_items is not None:
        extra["maxItems"] = max_items
    return extra


def list_set(max_items: int | None = None) -> dict[str, Any]:
    """Schema extras for a list of unique scalars."""
    extra: dict[str, Any] = {"x-kubernetes-list-type": "set"}
    if max_items is not None:
        extra["maxItems"] = max_items
    return extra


def _extras_of(annotation: Any) -> list[dict[str, Any]]:
    """json_schema_extra dicts found in (possibly Optional) Annotated metadata."""
    found: list[dict[str, Any]] = []
    if get_origin(annotation) is Annotated:
        for meta in get_args(annotation)[1:]:
            if isinstance(meta, FieldInfo) and isinstance(meta.json_schema_extra, dict):
                found.append(meta.json_schema_extra)
        found.extend(_extras_of(get_args(annotation)[0]))
    else:
        for arg in get_args(annotation):
            if get_origin(arg) is Annotated:
                found.extend(_extras_of(arg))
    return found


@cache
def _list_map_keys(cls: type[ApiModel]) -> dict[str, tuple[str, ...]]:
    """Fields of ``cls`` declared as list-maps or sets, with their key attributes."""
    out: dict[str, tuple[str, ...]] = {}
    for name, info in cls.model_fields.items():
        extras = _extras_of(info.annotation)
        if isinstance(info.json_schema_extra, dict):
            extras.append(info.json_schema_extra)
        for extra in extras:
            kind = extra.get("x-kubernetes-list-type")
            if kind == "map":
                out[name] = tuple(extra["x-kubernetes-list-map-keys"])
            elif kind == "set":
                out[name] = ()
    return out


def _check_unique(name: str, items: Any, keys: tuple[str, ...], alias: str | None) -> None:
    """Reject duplicate entries the API server would reject for a list-map or set."""
    if not items:
        return
    seen: set[Any] = set()
    for item in items:
        key = item if not keys else tuple(getattr(item, _attr(item, k)) for k in keys)
        if key in seen:
            shown = key if not keys else dict(zip(keys, key, strict=True))
            raise RuleViolation(f"{alias or name}: duplicate entry {shown}")
        seen.add(key)


def _attr(item: BaseModel, wire_key: str) -> str:
    """Python attribute name for a camelCase wire key of ``item``."""
    for name, info in type(item).model_fields.items():
        if info.alias == wire_key or name == wire_key:
            return name
    raise KeyError(wire_key)
