"""API faults against a mock API server (kmock): conflicts, throttling, errors, hangs."""

from __future__ import annotations

import asyncio
import copy
import time
from pathlib import Path
from typing import Any

import kmock
import pytest

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.api.validation import load_one
from servingopt.kube import io, paths
from servingopt.kube import manifests as m
from servingopt.kube.client import ApiError, KubeClient
from servingopt.values import ServingConfig

pytestmark = pytest.mark.kmock(cls=kmock.KubernetesScaffold)

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_one(ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog)
SPEC = load_one(ROOT / "samples/modelservings/resnet50-classifier.yaml", ModelServing).spec
NS, NAME = "ml", "resnet50-classifier"
DEPLOYMENT_PATH = paths.deployment(NS, NAME)
HPA_PATH = paths.hpa(NS, "resnet")
MS = {"metadata": {"name": "resnet", "namespace": NS, "uid": "u-1"}}
T4 = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 2, 8, 16, 4000, 85.0)


def deployment(rv: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NS, "resourceVersion": rv},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "nodeSelector": {"servingopt.io/pool": "gpu-v100"},
                    "containers": [{"name": "triton", "image": "x", "resources": {}}],
                }
            },
        },
    }


def retry_after(seconds: float) -> kmock.headers:
    return kmock.headers({"Retry-After": str(seconds)})


def client(server: kmock.RawHandler, **kwargs: Any) -> KubeClient:
    kwargs.setdefault("backoffs", (0.01, 0.02, 0.05))
    return KubeClient.for_url(str(server.url), **kwargs)


async def test_conflict_on_apply_is_retried_on_a_fresh_read(kmock: kmock.RawHandler) -> None:
    reads = kmock[f"get {DEPLOYMENT_PATH}"] << (lambda: deployment(rv=str(time.monotonic_ns())))
    conflict = (
        kmock[f"patch {DEPLOYMENT_PATH}"][:1] << 409 << {"kind": "Status", "reason": "Conflict"}
    )
    applied = kmock[f"patch {DEPLOYMENT_PATH}"] << deployment()
    kmock[f"get {HPA_PATH}"] << 404 << {"kind": "Status", "reason": "NotFound"}
    hpa = kmock[f"patch {HPA_PATH}"] << {}
    async with client(kmock) as kube:
        writes = await io.apply_config(kube, MS, SPEC, T4, CATALOG)
    assert writes == 2  # the Deployment once, the HPA once
    assert len(conflict) == 1 and len(applied) == 1 and len(hpa) == 1
    assert len(reads) == 2  # re-read after the 409
    first, second = (r.data["metadata"]["resourceVersion"] for r in [*conflict, *applied])
    assert first != second  # the retry carried the fresh resourceVersion
    assert applied[0].params["fieldManager"] == "servingopt"
    assert applied[0].params["force"] == "true"


async def test_a_burst_of_conflicts_is_waited_out(kmock: kmock.RawHandler) -> None:
    kmock[f"get {DEPLOYMENT_PATH}"] << (lambda: deployment(rv=str(time.monotonic_ns())))
    conflicts = (
        kmock[f"patch {DEPLOYMENT_PATH}"][:4] << 409 << {"kind": "Status", "reason": "Conflict"}
    )
    applied = kmock[f"patch {DEPLOYMENT_PATH}"] << deployment()
    kmock[f"get {HPA_PATH}"] << 404 << {"kind": "Status", "reason": "NotFound"}
    kmock[f"patch {HPA_PATH}"] << {}
    started = time.monotonic()
    async with client(kmock) as kube:
        await io.apply_config(kube, MS, SPEC, T4, CATALOG, conflict_backoff_s=0.01)
    assert len(conflicts) == 4 and len(applied) == 1
    assert time.monotonic() - started >= 0.01 + 0.02 + 0.04 + 0.08  # pauses double


async def test_conflicts_that_never_stop_fail_the_apply(kmock: kmock.RawHandler) -> None:
    kmock[f"get {DEPLOYMENT_PATH}"] << (lambda: deployment(rv=str(time.monotonic_ns())))
    conflicts = kmock[f"patch {DEPLOYMENT_PATH}"] << 409 << {"kind": "Status", "reason": "Conflict"}
    async with client(kmock) as kube:
        with pytest.raises(ApiError) as raised:
            await io.apply_config(kube, MS, SPEC, T4, CATALOG, conflict_backoff_s=0.001)
    assert raised.value.status == 409
    assert len(conflicts) == io.APPLY_ATTEMPTS


async def test_unchanged_configuration_sends_no_write(kmock: kmock.RawHandler) -> None:
    live = deployment()
    body = m.deployment_apply(live, SPEC, T4, CATALOG)
    stored = copy.deepcopy(live)
    stored["spec"]["template"]["spec"].update(
        {k: v for k, v in body["spec"]["template"]["spec"].items() if k != "containers"}
    )
    stored["spec"]["template"]["spec"]["containers"] = body["spec"]["template"]["spec"][
        "containers"
    ]
    stored["spec"]["template"]["spec"]["containers"][0]["image"] = SPEC.variants[2].image  # type: ignore[index]
    kmock[f"get {DEPLOYMENT_PATH}"] << stored
    kmock[f"get {HPA_PATH}"] << m.hpa_apply(MS, SPEC, T4)
    writes = kmock["patch"] << {}
    async with client(kmock) as kube:
        assert await io.apply_config(kube, MS, SPEC, T4, CATALOG) == 0
    assert len(writes) == 0


async def test_throttling_and_server_errors_back_off_then_succeed(kmock: kmock.RawHandler) -> None:
    path = paths.deployment(NS, NAME)
    throttled = kmock[f"get {path}"][:1] << 429 << retry_after(0.1) << {"kind": "Status"}
    failed = kmock[f"get {path}"][1:2] << 500 << {"kind": "Status"}
    served = kmock[f"get {path}"] << deployment()
    async with client(kmock) as kube:
        started = time.monotonic()
        got = await kube.get(path)
        elapsed = time.monotonic() - started
    assert got is not None and got["metadata"]["name"] == NAME
    assert (len(throttled), len(failed), len(served)) == (1, 1, 1)
    assert elapsed >= 0.1  # Retry-After honoured


async def test_persistent_errors_give_up_with_the_status(kmock: kmock.RawHandler) -> None:
    kmock[f"get {DEPLOYMENT_PATH}"] << 503 << {"kind": "Status", "message": "overloaded"}
    async with client(kmock) as kube:
        with pytest.raises(ApiError) as error:
            await kube.get(DEPLOYMENT_PATH)
    assert error.value.status == 503
    assert len(kmock[f"get {DEPLOYMENT_PATH}"]) == 4  # first try + 3 retries


async def test_a_hung_server_does_not_wedge_the_loop(kmock: kmock.RawHandler) -> None:
    kmock[f"get {DEPLOYMENT_PATH}"] << (lambda: asyncio.sleep(5)) << deployment()
    kmock[f"get {paths.node('n1')}"] << {"metadata": {"name": "n1"}}
    async with client(kmock, timeout=0.2, backoffs=(0.01,)) as kube:
        started = time.monotonic()
        with pytest.raises(ApiError) as error:
            await kube.get(DEPLOYMENT_PATH)
        assert time.monotonic() - started < 2.0
        assert error.value.status == 0  # no answer: a timeout, not an HTTP status
        assert await kube.get(paths.node("n1")) == {"metadata": {"name": "n1"}}


async def test_client_errors_are_not_retried(kmock: kmock.RawHandler) -> None:
    kmock[f"patch {DEPLOYMENT_PATH}"] << 422 << {"kind": "Status", "message": "invalid"}
    async with client(kmock) as kube:
        with pytest.raises(ApiError) as error:
            await kube.apply(DEPLOYMENT_PATH, deployment())
    assert error.value.status == 422 and "invalid" in error.value.message
    assert len(kmock[f"patch {DEPLOYMENT_PATH}"]) == 1
