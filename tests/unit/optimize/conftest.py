"""Small hand-checkable catalogs and ModelServings for the optimizer tests."""

from __future__ import annotations

from typing import Any

from servingopt.api import InstanceCatalog, ModelServingSpec


def catalog(**overrides: dict[str, Any]) -> InstanceCatalog:
    """c5.2xlarge (CPU), g4dn.xlarge (T4) and p3.2xlarge (V100) at AWS us-east-1 list prices."""
    types: dict[str, dict[str, Any]] = {
        "c5.2xlarge": {"pool": "cpu-c5", "vcpu": 8, "memoryGiB": 16,
                       "onDemandHourly": 0.34, "spotHourly": 0.136},
        "g4dn.xlarge": {"pool": "gpu-t4", "vcpu": 4, "memoryGiB": 16, "onDemandHourly": 0.526,
                        "spotHourly": 0.2104,
                        "gpu": {"model": "T4", "count": 1, "memoryGiB": 16}},
        "p3.2xlarge": {"pool": "gpu-v100", "vcpu": 8, "memoryGiB": 61, "onDemandHourly": 3.06,
                       "spotHourly": 1.224,
                       "gpu": {"model": "V100", "count": 1, "memoryGiB": 16}},
    }  # fmt: skip
    for name, fields in overrides.items():
        types[name.replace("_", ".")] = {**types[name.replace("_", ".")], **fields}
    return InstanceCatalog.model_validate(
        {"spec": {"instanceTypes": [{"name": n, **f} for n, f in types.items()]}}
    )


def points(a: float, c: float, batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> list[Any]:
    """Profile points following t(b) = a + c b exactly."""
    return [{"batchSize": b, "latencyMs": a + c * b} for b in batches]


# A 25M-parameter vision model (ResNet-50 class): CPU ~20 ms per image and no batching
# gain; T4 4 ms fixed + 1 ms per image; V100 2 ms + 0.5 ms per image.
VISION_PROFILES = [
    {"instanceType": "c5.2xlarge", "points": points(0.0, 20.0, (1, 2, 4, 8))},
    {"instanceType": "g4dn.xlarge", "points": points(4.0, 1.0)},
    {"instanceType": "p3.2xlarge", "points": points(2.0, 0.5)},
]


def vision_spec(**spec: Any) -> ModelServingSpec:
    """The vision model at p99 <= 100 ms, 2 CPUs and 4 GiB per replica."""
    doc: dict[str, Any] = {
        "targetRef": {"name": "vision"},
        "slo": {"latencyP99Ms": 100},
        "variants": [{"name": "fp32", "accuracy": 0.76, "memoryMiB": 400,
                      "profiles": VISION_PROFILES}],
        "resources": {"cpuMillicores": 2000, "memoryMiB": 4096},
        "candidates": {"capacityTypes": ["on-demand"]},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 50, "startupSeconds": 60},
    }  # fmt: skip
    for key, value in spec.items():
        doc[key] = value
    return ModelServingSpec.model_validate(doc)
