"""The Deployment deleted between servingopt's read and its apply (kmock): the apply
carries the uid it read, so the API server refuses instead of creating a fragment; the
apply ends in a WorkloadError that says so, and no HPA is applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kmock
import pytest

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.api.validation import load_one
from servingopt.kube import io, paths
from servingopt.kube.client import ApiError, KubeClient
from servingopt.values import ServingConfig

pytestmark = pytest.mark.kmock(cls=kmock.KubernetesScaffold)

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_one(ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog)
SPEC = load_one(ROOT / "samples/modelservings/resnet50-classifier.yaml", ModelServing).spec
NS, NAME = "ml", "resnet50-classifier"
DEPLOYMENT_PATH = paths.deployment(NS, NAME)
MS = {"metadata": {"name": "resnet", "namespace": NS, "uid": "ms-1"}}
T4 = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 2, 8, 16, 4000, 85.0)
NOT_FOUND = {"kind": "Status", "code": 404, "reason": "NotFound", "message": "not found"}
# What kube-apiserver 1.36 answers to an apply whose uid no live object has.
UID_MISMATCH = {
    "kind": "Status",
    "code": 409,
    "reason": "Conflict",
    "message": 'Operation cannot be fulfilled on deployments.apps "resnet50-classifier": '
    "uid mismatch: the provided object specified uid d-1, and no existing object was found",
}


def deployment(uid: str = "d-1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NS, "resourceVersion": "7", "uid": uid},
        "spec": {
            "template": {
                "spec": {
                    "nodeSelector": {"servingopt.io/pool": "gpu-v100"},
                    "containers": [{"name": "triton", "image": "x", "resources": {}}],
                }
            }
        },
    }


def client(server: kmock.RawHandler) -> KubeClient:
    return KubeClient.for_url(str(server.url), backoffs=())


@pytest.mark.parametrize(
    ("status", "answer"), [(409, UID_MISMATCH), (404, NOT_FOUND)], ids=["uid-mismatch", "404"]
)
async def test_a_deployment_deleted_before_the_apply_is_not_recreated(
    kmock: kmock.RawHandler, status: int, answer: dict[str, Any]
) -> None:
    reads = kmock[f"get {DEPLOYMENT_PATH}"][:1] << deployment()
    kmock[f"get {DEPLOYMENT_PATH}"] << 404 << NOT_FOUND  # deleted after the first read
    applies = kmock[f"patch {DEPLOYMENT_PATH}"] << status << answer
    async with client(kmock) as kube:
        with pytest.raises(io.WorkloadError) as error:
            await io.apply_config(kube, MS, SPEC, T4, CATALOG, conflict_backoff_s=0.001)
        assert kube.write_count == 0
    assert str(error.value) == f"Deployment {NS}/{NAME} was deleted while servingopt applied to it"
    (apply,) = applies
    assert apply.data["metadata"]["uid"] == "d-1"  # the precondition that prevents a create
    assert len(reads) == 1 and len(kmock[f"get {DEPLOYMENT_PATH}"]) == 2  # read again once
    assert not list(kmock["/apis/autoscaling/*"])  # no HPA read, no HPA applied


async def test_a_deployment_replaced_under_the_same_name_is_applied_to(
    kmock: kmock.RawHandler,
) -> None:
    """Deleted and created again by its owner between the read and the apply: the new
    one is the target now; the apply is rebuilt on it."""
    kmock[f"get {DEPLOYMENT_PATH}"][:1] << deployment("d-1")
    kmock[f"get {DEPLOYMENT_PATH}"] << deployment("d-2")
    immutable = {
        "kind": "Status",
        "code": 422,
        "reason": "Invalid",
        "message": 'Deployment.apps "resnet50-classifier" is invalid: metadata.uid: '
        'Invalid value: "d-1": field is immutable',
    }
    refused = kmock[f"patch {DEPLOYMENT_PATH}"][:1] << 422 << immutable
    applied = kmock[f"patch {DEPLOYMENT_PATH}"] << deployment("d-2")
    kmock[f"get {paths.hpa(NS, 'resnet')}"] << 404 << NOT_FOUND
    hpa = kmock[f"patch {paths.hpa(NS, 'resnet')}"] << {}
    async with client(kmock) as kube:
        assert await io.apply_config(kube, MS, SPEC, T4, CATALOG, conflict_backoff_s=0.001) == 2
    assert [r.data["metadata"]["uid"] for r in [*refused, *applied]] == ["d-1", "d-2"]
    assert len(hpa) == 1


async def test_other_invalid_answers_are_not_retried(kmock: kmock.RawHandler) -> None:
    kmock[f"get {DEPLOYMENT_PATH}"] << deployment()
    invalid = {"kind": "Status", "code": 422, "reason": "Invalid", "message": "bad image"}
    applies = kmock[f"patch {DEPLOYMENT_PATH}"] << 422 << invalid
    async with client(kmock) as kube:
        with pytest.raises(ApiError) as error:
            await io.apply_config(kube, MS, SPEC, T4, CATALOG)
    assert error.value.status == 422 and len(applies) == 1
