"""Helpers shared by the controller unit tests (a uniquely named module, importable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.api.validation import load_one

ROOT = Path(__file__).resolve().parents[3]


def load_catalog() -> InstanceCatalog:
    result: InstanceCatalog = load_one(
        ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog
    )
    return result


def load_resnet() -> ModelServing:
    result: ModelServing = load_one(
        ROOT / "samples/modelservings/resnet50-classifier.yaml", ModelServing
    )
    return result


def user_deployment(**template_spec: Any) -> dict[str, Any]:
    """A user's Deployment on the V100 pool, like samples/workloads/resnet50-classifier.yaml."""
    pod_spec = {
        "nodeSelector": {"servingopt.io/pool": "gpu-v100"},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
            {"key": "team", "operator": "Exists", "effect": "NoSchedule"},
        ],
        "containers": [
            {
                "name": "triton",
                "image": "registry.example.com/ml/resnet50-triton:24.08-fp32",
                "env": [{"name": "MODEL_PRECISION", "value": "fp32"}],
                "resources": {
                    "requests": {"cpu": "3", "memory": "6Gi", "nvidia.com/gpu": "1"},
                    "limits": {"memory": "6Gi", "nvidia.com/gpu": "1"},
                },
            }
        ],
    }
    pod_spec.update(template_spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "resnet50-classifier",
            "namespace": "ml",
            "resourceVersion": "42",
            "generation": 1,
        },
        "spec": {"replicas": 3, "template": {"spec": pod_spec}},
        "status": {
            "observedGeneration": 1,
            "replicas": 3,
            "updatedReplicas": 3,
            "availableReplicas": 3,
        },
    }
