from __future__ import annotations

from typing import Any

import pytest

from servingopt.api import ModelServing
from servingopt.api.catalog_gen import default_catalog
from servingopt.simulate.world import Scenario, ServingConfig


def serving(**autoscaling: Any) -> ModelServing:
    """A GPU model with two variants on T4 and A10G; batching helps."""

    def profile(itype: str, factor: float) -> dict[str, Any]:
        points = [(1, 4.0), (4, 7.0), (16, 19.0), (32, 35.0)]
        return {
            "instanceType": itype,
            "points": [{"batchSize": b, "latencyMs": t * factor} for b, t in points],
        }

    return ModelServing.model_validate(
        {
            "metadata": {"name": "toy"},
            "spec": {
                "targetRef": {"name": "toy"},
                "slo": {"latencyP99Ms": 50},
                "variants": [
                    {
                        "name": "fp32",
                        "accuracy": 0.76,
                        "image": "x/fp32",
                        "profiles": [profile("g4dn.xlarge", 2.5), profile("g5.xlarge", 1.3)],
                    },
                    {
                        "name": "fp16",
                        "accuracy": 0.758,
                        "image": "x/fp16",
                        "profiles": [profile("g4dn.xlarge", 1.0), profile("g5.xlarge", 0.55)],
                    },
                ],
                "candidates": {"pools": ["gpu-t4", "gpu-a10g"]},
                "autoscaling": {
                    "minReplicas": 1,
                    "maxReplicas": 30,
                    "startupSeconds": 60,
                    **autoscaling,
                },
            },
        }
    )


@pytest.fixture(scope="session")
def catalog():  # type: ignore[no-untyped-def]
    return default_catalog()


@pytest.fixture
def scenario(catalog) -> Scenario:  # type: ignore[no-untyped-def]
    return Scenario(
        serving(), catalog, initial=ServingConfig("g5.xlarge", "on-demand", "fp32", 1, 0.0)
    )
