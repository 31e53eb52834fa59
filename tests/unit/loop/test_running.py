"""What runs, for callers without a cluster: held to the operator's own readers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.api.validation import load_one
from servingopt.controller.cost import current_cost
from servingopt.kube import manifests as m
from servingopt.loop.running import as_read_back, running_hourly
from servingopt.values import ServingConfig

ROOT = Path(__file__).resolve().parents[3]
MS = {"metadata": {"name": "resnet", "namespace": "ml", "uid": "u-1"}}


@pytest.fixture(scope="module")
def catalog() -> InstanceCatalog:
    found: InstanceCatalog = load_one(
        ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog
    )
    return found


def sample(name: str) -> ModelServing:
    found: ModelServing = load_one(ROOT / f"samples/modelservings/{name}.yaml", ModelServing)
    return found


@pytest.mark.parametrize("metric", ["RequestsPerSecond", "CPUUtilization"])
@pytest.mark.parametrize("target", [85.0, 63.456, 1474.78, 1234.5678, 98765.4321])
def test_the_target_as_the_hpa_holds_it(
    catalog: InstanceCatalog, metric: str, target: float
) -> None:
    spec = sample("resnet50-classifier").spec
    spec = spec.model_copy(
        update={"autoscaling": spec.autoscaling.model_copy(update={"metric": metric})}
    )
    config = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 1, 4, 16, 0, target)
    deployment = yaml.safe_load((ROOT / "samples/workloads/resnet50-classifier.yaml").read_text())
    read = m.observed_config(deployment, m.hpa_apply(MS, spec, config), spec, catalog)
    assert read.scaling_target == as_read_back(config, spec).scaling_target


@pytest.mark.parametrize(
    ("name", "itype", "capacity"),
    [
        ("resnet50-classifier", "g4dn.12xlarge", "on-demand"),  # 4 GPUs: a quarter each
        ("resnet50-classifier", "p3.2xlarge", "spot"),
        ("distilbert-sentiment", "c6i.2xlarge", "on-demand"),  # CPU and memory shares
        ("distilbert-sentiment", "m5.xlarge", "spot"),
    ],
)
def test_pods_cost_what_the_operator_says_they_cost(
    catalog: InstanceCatalog, name: str, itype: str, capacity: str
) -> None:
    spec = sample(name).spec
    t = catalog.by_name()[itype]
    requests = {
        "cpu": f"{spec.resources.cpu_millicores}m" if spec.resources else "1",
        "memory": f"{spec.resources.memory_mi_b}Mi" if spec.resources else "1Gi",
    }
    allocatable = {
        "cpu": f"{int((t.vcpu - t.system_reserved_cpu) * 1000)}m",
        "memory": f"{int((t.memory_gi_b - t.system_reserved_memory_gi_b) * 1024)}Mi",
    }
    if t.gpu is not None:
        requests[t.gpu.resource_name] = "1"
        allocatable[t.gpu.resource_name] = str(t.gpu.count)
    node = {
        "metadata": {
            "name": "n",
            "labels": {
                "node.kubernetes.io/instance-type": itype,
                "karpenter.sh/capacity-type": capacity,
            },
        },
        "status": {"allocatable": allocatable},
    }
    pod = {
        "spec": {"nodeName": "n", "containers": [{"resources": {"requests": requests}}]},
        "status": {"phase": "Running"},
    }
    operator = current_cost([pod] * 3, {"n": node}, catalog).hourly
    assert operator is not None
    assert running_hourly(catalog, spec, [(itype, capacity, 3)]) == pytest.approx(operator)
    assert running_hourly(catalog, spec, []) is None
