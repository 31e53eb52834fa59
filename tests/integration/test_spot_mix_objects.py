"""A spot mix on the real API server: servingopt's own apply (``io.apply_config``) and
split (``io.split_mix``, what the operator runs when the autoscaler changes a
CapacityMix), with the CapacityMix's scale subresource driven as the HPA drives it
(``kubectl scale``). A real ModelServing owns what servingopt creates, so the garbage
collector keeps it. The way back folds the whole count into the user's Deployment
before the spot copy goes; a Deployment of the copy's name that is not servingopt's is
never touched."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.api.instancecatalog import LABEL_CAPACITY_TYPE
from servingopt.api.validation import load_one
from servingopt.devcluster import DevCluster, Kubectl
from servingopt.kube import io
from servingopt.kube import manifests as m
from servingopt.kube.client import ApiClient, Credentials, KubeClient, scoped
from servingopt.values import ServingConfig

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_one(ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog)
SAMPLE_PATH = ROOT / "samples/modelservings/resnet50-classifier.yaml"
SAMPLE = load_one(SAMPLE_PATH, ModelServing).spec
DEPLOY = "resnet50-classifier"
MIXED = ServingConfig(
    "g4dn.xlarge", "gpu-t4", "spot", "int8", 1, 8, 16, 2000, 80.0,
    max_spot_percent=50, on_demand_base=1,
)  # fmt: skip
ON_DEMAND = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 1, 8, 16, 2000, 80.0)


@pytest.fixture
def crds(admin_kubectl: Kubectl) -> Kubectl:
    admin_kubectl.run("apply", "--server-side", "-f", str(ROOT / "crds"))
    admin_kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    return admin_kubectl


@pytest.fixture
def ms(crds: Kubectl, kubectl: Kubectl) -> dict[str, Any]:
    """The user's Deployment at 4 replicas and a real ModelServing (no operator runs)."""
    workload = yaml.safe_load((ROOT / "samples/workloads/resnet50-classifier.yaml").read_text())
    workload["spec"]["replicas"] = 4
    kubectl.apply(workload)
    kubectl.apply(yaml.safe_load(SAMPLE_PATH.read_text()))
    obj: dict[str, Any] = kubectl.json("get", "modelserving", DEPLOY)
    return obj


@pytest.fixture
async def kube(dev_cluster: DevCluster, kubectl: Kubectl) -> AsyncIterator[ApiClient]:
    assert kubectl.namespace is not None
    async with KubeClient(Credentials.load(str(dev_cluster.kubeconfig))) as client:
        yield scoped(client, kubectl.namespace)


def replicas(kubectl: Kubectl, name: str) -> int:
    return int(kubectl.json("get", "deployment", name)["spec"]["replicas"])


async def split(kube: ApiClient, kubectl: Kubectl) -> int:
    return await io.split_mix(kube, kubectl.json("get", "capacitymix", DEPLOY))


async def test_a_mix_splits_every_count_set_through_the_scale_subresource(
    kube: ApiClient, kubectl: Kubectl, ms: dict[str, Any]
) -> None:
    await io.apply_config(kube, ms, SAMPLE, MIXED, CATALOG)

    # The user's Deployment runs on-demand, the copy on spot; the HPA scales the mix.
    user = kubectl.json("get", "deployment", DEPLOY)["spec"]
    copy = kubectl.json("get", "deployment", f"{DEPLOY}-spot")
    assert user["template"]["spec"]["nodeSelector"][LABEL_CAPACITY_TYPE] == "on-demand"
    assert copy["spec"]["template"]["spec"]["nodeSelector"][LABEL_CAPACITY_TYPE] == "spot"
    assert copy["metadata"]["ownerReferences"][0]["uid"] == ms["metadata"]["uid"]
    hpa = kubectl.json("get", "hpa", DEPLOY)
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "CapacityMix"
    # The count it had (4) is kept and split: 2 on-demand, 2 spot.
    assert (replicas(kubectl, DEPLOY), replicas(kubectl, f"{DEPLOY}-spot")) == (2, 2)
    scale = json.loads(kubectl.run("get", "--raw", f"{paths_of(kubectl)}/scale").stdout)
    assert scale["spec"]["replicas"] == 4
    assert scale["status"]["selector"] == f"app.kubernetes.io/name={DEPLOY}"

    # As the HPA would: a new total through the scale subresource, then the split.
    for total, parts in ((5, (3, 2)), (1, (1, 0)), (7, (4, 3))):
        kubectl.run("scale", "capacitymix", DEPLOY, f"--replicas={total}")
        assert await split(kube, kubectl) >= 1
        assert (replicas(kubectl, DEPLOY), replicas(kubectl, f"{DEPLOY}-spot")) == parts
        status = kubectl.json("get", "capacitymix", DEPLOY)["status"]
        assert (status["onDemandReplicas"], status["spotReplicas"]) == parts
    assert await split(kube, kubectl) == 0  # nothing to do twice

    # Applying the same mix again sends nothing.
    assert await io.apply_config(kube, ms, SAMPLE, MIXED, CATALOG) == 0

    # Back to on-demand: the Deployment takes all 7 first, then the mix and copy go.
    await io.apply_config(kube, ms, SAMPLE, ON_DEMAND, CATALOG)
    assert replicas(kubectl, DEPLOY) == 7
    assert kubectl.json("get", "hpa", DEPLOY)["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    gone = kubectl.run("get", "capacitymix,deployment", DEPLOY, f"{DEPLOY}-spot", check=False)
    assert "NotFound" in gone.stderr and f"{DEPLOY}-spot" not in gone.stdout


def paths_of(kubectl: Kubectl) -> str:
    ns = kubectl.namespace
    return f"/apis/servingopt.io/v1alpha1/namespaces/{ns}/capacitymixes/{DEPLOY}"


async def test_a_deployment_of_the_copys_name_that_is_not_servingopts_is_left_alone(
    kube: ApiClient, kubectl: Kubectl, ms: dict[str, Any]
) -> None:
    theirs = yaml.safe_load((ROOT / "samples/workloads/resnet50-classifier.yaml").read_text())
    theirs["metadata"]["name"] = f"{DEPLOY}-spot"
    theirs["spec"]["replicas"] = 1
    kubectl.apply(theirs)
    before = kubectl.json("get", "deployment", f"{DEPLOY}-spot")["spec"]
    with pytest.raises(io.WorkloadError, match="exists and is not servingopt's"):
        await io.apply_config(kube, ms, SAMPLE, MIXED, CATALOG)
    assert kubectl.json("get", "deployment", f"{DEPLOY}-spot")["spec"] == before
    # Nor does a CapacityMix that names it move it.
    share = MIXED.spot_share()
    assert share is not None
    mix = m.mix_apply(ms, SAMPLE, share)
    mix["spec"]["replicas"] = 6
    kubectl.apply(mix)
    assert await split(kube, kubectl) == 0
    assert kubectl.json("get", "deployment", f"{DEPLOY}-spot")["spec"] == before
    assert replicas(kubectl, DEPLOY) == 4


async def test_stopping_autoscaling_folds_the_mix_into_the_deployment(
    kube: ApiClient, kubectl: Kubectl, ms: dict[str, Any]
) -> None:
    await io.apply_config(kube, ms, SAMPLE, MIXED, CATALOG)
    kubectl.run("scale", "capacitymix", DEPLOY, "--replicas=6")
    await split(kube, kubectl)
    assert replicas(kubectl, DEPLOY) == 3
    await io.remove_autoscaling(kube, ms, SAMPLE)
    assert replicas(kubectl, DEPLOY) == 6
    left = kubectl.run("get", "hpa,capacitymix", "-o", "json").stdout
    assert json.loads(left)["items"] == []
