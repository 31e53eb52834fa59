"""What servingopt writes on the real API server: only what the decision needs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.api.validation import load_one
from servingopt.devcluster import DevCluster, Kubectl
from servingopt.kube import io
from servingopt.kube.client import Credentials, KubeClient, scoped
from servingopt.values import ServingConfig

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_one(ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog)
SAMPLE = load_one(ROOT / "samples/modelservings/resnet50-classifier.yaml", ModelServing).spec
T4 = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 1, 4, 16, 2000, 80.0)
C6I = ServingConfig("c6i.2xlarge", "cpu-c6i-2x", "on-demand", "int8", 1, 4, 8, 2000, 20.0)


def user_manifest() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        (ROOT / "samples/workloads/resnet50-classifier.yaml").read_text()
    )
    return doc


def resize(kubectl: Kubectl, cpu: str) -> Any:
    """Another tool (say, a capacity script) sets the CPU request by server-side apply;
    the API server names every manager it conflicts with."""
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "resnet50-classifier"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "triton", "resources": {"requests": {"cpu": cpu}}}]
                }
            }
        },
    }
    return kubectl.apply(body, server_side=True, field_manager="capacity-script", check=False)


def owned(obj: dict[str, Any]) -> str:
    entries = [e for e in obj["metadata"]["managedFields"] if e["manager"] == "servingopt"]
    return json.dumps([e["fieldsV1"] for e in entries])


async def apply(dev_cluster: DevCluster, kubectl: Kubectl, spec: Any, config: Any) -> None:
    ns = kubectl.namespace
    assert ns is not None
    ms = {"metadata": {"name": "resnet", "namespace": ns, "uid": "u-1"}}
    async with KubeClient(Credentials.load(str(dev_cluster.kubeconfig))) as kube:
        await io.apply_config(scoped(kube, ns), ms, spec, config, CATALOG)


async def test_requests_the_spec_does_not_size_stay_the_users(
    kubectl: Kubectl, dev_cluster: DevCluster
) -> None:
    kubectl.apply(user_manifest(), server_side=True, field_manager="gitops")
    unsized = SAMPLE.model_copy(update={"resources": None})
    await apply(dev_cluster, kubectl, unsized, T4)
    live = kubectl.json("get", "deployment", "resnet50-classifier", "--show-managed-fields")
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {
        "cpu": "3",
        "memory": "6Gi",
        "nvidia.com/gpu": "1",
    }
    assert '"f:cpu"' not in owned(live) and '"f:memory"' not in owned(live)
    assert '"f:nvidia.com/gpu"' in owned(live)  # the pool needs a GPU: that one is ours
    # Another tool's CPU change conflicts with the user's manifest only, not servingopt.
    conflict = resize(kubectl, "2")
    assert 'conflict with "gitops"' in conflict.stderr and "servingopt" not in conflict.stderr


async def test_on_a_cpu_pool_nothing_but_the_gpu_release_is_written(
    kubectl: Kubectl, dev_cluster: DevCluster
) -> None:
    kubectl.apply(user_manifest(), server_side=True, field_manager="gitops")
    await apply(dev_cluster, kubectl, SAMPLE.model_copy(update={"resources": None}), C6I)
    live = kubectl.json("get", "deployment", "resnet50-classifier")
    requests = live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests == {"cpu": "3", "memory": "6Gi", "nvidia.com/gpu": "0"}


async def test_requests_the_spec_sizes_are_servingopts(
    kubectl: Kubectl, dev_cluster: DevCluster
) -> None:
    kubectl.apply(user_manifest(), server_side=True, field_manager="gitops")
    sized = SAMPLE.model_copy(
        update={
            "resources": copy.deepcopy(SAMPLE.resources).model_copy(  # type: ignore[union-attr]
                update={"cpu_millicores": 2500}
            )
        }
    )
    await apply(dev_cluster, kubectl, sized, T4)
    live = kubectl.json("get", "deployment", "resnet50-classifier", "--show-managed-fields")
    requests = live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests["cpu"] == "2500m"
    assert '"f:cpu"' in owned(live)
    conflict = resize(kubectl, "2")
    assert conflict.returncode != 0 and 'with "servingopt"' in conflict.stderr
