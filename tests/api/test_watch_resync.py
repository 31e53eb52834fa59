"""kopf with servingopt's settings against a mock API server: a 410 Gone on the
ModelServing watch makes it list again (resync) instead of stopping."""

from __future__ import annotations

import asyncio
from pathlib import Path

import kmock
import pytest
import yaml

from servingopt.controller.runner import run
from servingopt.controller.settings import Options

pytestmark = pytest.mark.kmock(cls=kmock.KubernetesEmulator)

RESOURCES = {
    "servingopt.io/v1alpha1/modelservings": ("ModelServing", True),
    "servingopt.io/v1alpha1/servingpolicies": ("ServingPolicy", False),
    "servingopt.io/v1alpha1/instancecatalogs": ("InstanceCatalog", False),
    "v1/nodes": ("Node", False),
    "v1/namespaces": ("Namespace", False),
    "apps/v1/deployments": ("Deployment", True),
    "autoscaling/v2/horizontalpodautoscalers": ("HorizontalPodAutoscaler", True),
    "apiextensions.k8s.io/v1/customresourcedefinitions": ("CustomResourceDefinition", False),
}
MS = kmock.resource("servingopt.io/v1alpha1/modelservings")
GONE = {
    "type": "ERROR",
    "object": {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": 410,
        "reason": "Expired",
        "message": "too old resource version",
    },
}


def kubeconfig(url: str, path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "mock", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "u"}}],
                "current-context": "mock",
            }
        )
    )
    return path


async def test_410_gone_on_the_watch_resyncs(kmock: kmock.RawHandler, tmp_path: Path) -> None:
    for key, (kind, namespaced) in RESOURCES.items():
        kmock.resources[key] = kmock_info(kind, namespaced)
    kmock[MS, {"watch": "true"}][:1] << GONE
    config = kubeconfig(str(kmock.url).rstrip("/"), tmp_path / "kubeconfig")
    stop = asyncio.Event()
    options = Options(kubeconfig=str(config), liveness=None, metrics_bind=None)
    task = asyncio.create_task(run(options, stop))
    try:
        async with asyncio.timeout(20):
            while len([r for r in kmock[MS] if r.params.get("watch") != "true"]) < 2:
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    watches = [r for r in kmock[MS] if r.params.get("watch") == "true"]
    assert len(watches) >= 2  # it watched again after the re-list


def kmock_info(kind: str, namespaced: bool) -> kmock.ResourceInfo:
    verbs = {"get", "list", "watch", "patch", "create", "delete"}
    return kmock.ResourceInfo(kind=kind, namespaced=namespaced, verbs=verbs)
