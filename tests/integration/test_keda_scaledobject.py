"""The ScaledObject servingopt owns with `autoscaling.engine: KEDA`, checked by the real
API server against KEDA's own CRD (v2.21.0, from its Go module): server-side dry-run of
every trigger servingopt writes, and a body KEDA's schema refuses, to show it is
enforced. No KEDA operator runs here (see README, "Autoscaling in your cluster")."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.api.validation import load_one
from servingopt.devcluster import Kubectl
from servingopt.kube import manifests as m
from servingopt.metrics.promql import preset
from servingopt.values import ServingConfig, canonical_behavior

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = load_one(ROOT / "samples/modelservings/resnet50-classifier.yaml", ModelServing).spec
CATALOG = load_one(ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog)
BEHAVIOR = canonical_behavior(
    {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
        },
    }
)
CONFIG = ServingConfig("g4dn.xlarge", "gpu-t4", "spot", "int8", 2, 12, 32, 2000, 1180.5, BEHAVIOR)


def body(namespace: str, metric: str) -> dict[str, Any]:
    auto = SAMPLE.autoscaling.model_copy(update={"engine": "KEDA", "metric": metric})
    spec = SAMPLE.model_copy(update={"autoscaling": auto})
    labels = {"namespace": namespace, "deployment": "resnet50-classifier"}
    generic = preset("generic")
    query = (
        generic.concurrency_query(labels, 60)
        if metric == "Concurrency"
        else generic.demand_query(labels, 60)
    ) or ""
    source = m.TriggerSource("http://prometheus.monitoring.svc:9090", query)
    ms = {"metadata": {"name": "resnet", "namespace": namespace, "uid": "u-1"}}
    so = m.scaled_object_apply(ms, spec, CONFIG, source)
    so["metadata"].pop("ownerReferences")  # no such ModelServing: the API server would GC it
    return so


def dry_run(kubectl: Kubectl, doc: dict[str, Any]) -> Any:
    return kubectl.run(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=servingopt",
        "-f",
        "-",
        "-o",
        "json",
        input=json.dumps(doc),
        check=False,
    )


@pytest.mark.parametrize("metric", ["RequestsPerSecond", "Concurrency", "CPUUtilization"])
def test_keda_accepts_what_servingopt_writes(
    keda_crds: Kubectl, kubectl: Kubectl, namespace: str, metric: str
) -> None:
    proc = dry_run(kubectl, body(namespace, metric))
    assert proc.returncode == 0, proc.stderr
    stored = json.loads(proc.stdout)
    assert stored["spec"]["maxReplicaCount"] == 12
    behavior = stored["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert m.contains(behavior, json.loads(BEHAVIOR))


def test_keda_schema_is_enforced(keda_crds: Kubectl, kubectl: Kubectl, namespace: str) -> None:
    broken = copy.deepcopy(body(namespace, "RequestsPerSecond"))
    broken["spec"]["minReplicaCount"] = "two"
    proc = dry_run(kubectl, broken)
    assert proc.returncode != 0 and "minReplicaCount" in proc.stderr
