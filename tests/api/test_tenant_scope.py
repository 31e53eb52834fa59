"""With every validation bypassed, the client still refuses to leave the namespace.

The spec is built with ``model_construct`` (no pydantic checks), as if the CRD schema
and the models had both let a hostile name through: the kmock API server must see no
request at all, and a request path written by hand is refused before it is sent.
"""

from __future__ import annotations

from pathlib import Path

import kmock
import pytest

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.api.modelserving import TargetRef
from servingopt.api.validation import load_one
from servingopt.kube import io, paths
from servingopt.kube.client import KubeClient, ScopeViolation, scoped
from servingopt.values import ServingConfig

pytestmark = pytest.mark.kmock(cls=kmock.KubernetesScaffold)

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_one(ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog)
SPEC = load_one(ROOT / "samples/modelservings/resnet50-classifier.yaml", ModelServing).spec
MS = {"metadata": {"name": "resnet", "namespace": "ml", "uid": "u-1"}}
T4 = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 2, 8, 16, 4000, 85.0)
ATTACKS = [
    "../../../namespaces/kube-system/deployments/coredns",
    "..%2F..%2Fkube-system%2Fdeployments%2Fcoredns",
    "%2e%2e/%2e%2e/kube-system/deployments/coredns",
    "coredns/../../../kube-system/deployments/coredns",
]


def client(server: kmock.RawHandler) -> KubeClient:
    return KubeClient.for_url(str(server.url), backoffs=())


@pytest.mark.parametrize("name", ATTACKS)
async def test_an_unvalidated_traversal_target_sends_nothing(
    kmock: kmock.RawHandler, name: str
) -> None:
    target = TargetRef.model_construct(name=name, api_version="apps/v1", kind="Deployment")
    spec = SPEC.model_copy(update={"target_ref": target})
    async with client(kmock) as kube:
        with pytest.raises(paths.InvalidName):
            await io.apply_config(scoped(kube, "ml"), MS, spec, T4, CATALOG)
        with pytest.raises(paths.InvalidName):
            await io.read_state(scoped(kube, "ml"), "ml", name, "u-1")
    assert list(kmock) == []


@pytest.mark.parametrize(
    "path",
    [
        "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
        "/apis/apps/v1/namespaces/ml/deployments/../../kube-system/deployments/coredns",
        "/apis/apps/v1/namespaces/ml/deployments/..%2F..%2Fkube-system",
        "/api/v1/nodes/node-1",
    ],
)
async def test_a_hand_written_path_outside_the_namespace_is_refused(
    kmock: kmock.RawHandler, path: str
) -> None:
    async with client(kmock) as kube:
        with pytest.raises(ScopeViolation):
            await scoped(kube, "ml").apply(path, {"metadata": {"name": "coredns"}})
    assert list(kmock) == []


async def test_the_unscoped_client_refuses_dot_segments_too(kmock: kmock.RawHandler) -> None:
    async with client(kmock) as kube:
        with pytest.raises(ScopeViolation):
            await kube.get("/apis/apps/v1/namespaces/ml/deployments/../../../api/v1/secrets")
    assert list(kmock) == []


async def test_a_client_scoped_to_one_namespace_cannot_be_rescoped(
    kmock: kmock.RawHandler,
) -> None:
    async with client(kmock) as kube:
        with pytest.raises(ScopeViolation):
            scoped(scoped(kube, "ml"), "kube-system")


async def test_requests_in_the_namespace_reach_the_server(kmock: kmock.RawHandler) -> None:
    seen = kmock["get /apis/apps/v1/namespaces/ml/deployments/web"] << {"metadata": {}}
    async with client(kmock) as kube:
        assert await scoped(kube, "ml").get(paths.deployment("ml", "web")) == {"metadata": {}}
    assert len(seen) == 1
