"""The servingopt API (group ``servingopt.io``, version ``v1alpha1``) as pydantic models."""

from .base import API_VERSION, GROUP, VERSION, ApiModel, Rule, RuleViolation
from .instancecatalog import InstanceCatalog, InstanceCatalogSpec, InstanceType
from .modelserving import ModelServing, ModelServingSpec, ModelServingStatus, Variant
from .servingpolicy import ServingPolicy, ServingPolicySpec, effective_mode

KINDS: dict[str, type[ApiModel]] = {
    "ModelServing": ModelServing,
    "ServingPolicy": ServingPolicy,
    "InstanceCatalog": InstanceCatalog,
}

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "ApiModel",
    "InstanceCatalog",
    "InstanceCatalogSpec",
    "InstanceType",
    "ModelServing",
    "ModelServingSpec",
    "ModelServingStatus",
    "Rule",
    "RuleViolation",
    "ServingPolicy",
    "ServingPolicySpec",
    "Variant",
    "effective_mode",
]
