"""Specs the CRD accepts but servingopt cannot act on: a precise condition, no change."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml

from servingopt.controller.reconcile import Deps, reconcile
from servingopt.kube import paths
from servingopt.kube.client import KubeClient
from servingopt.metrics.source import MetricsSample, SampleRequest

pytestmark = pytest.mark.kmock(cls=kmock.KubernetesScaffold)

ROOT = Path(__file__).resolve().parents[2]
NS = "ml"


def sample_body() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        (ROOT / "samples/modelservings/resnet50-classifier.yaml").read_text()
    )
    doc["metadata"].update(namespace=NS, uid="u-1", generation=2)
    return doc


class NoMetrics:
    async def sample(self, _: SampleRequest) -> MetricsSample:
        raise AssertionError("an invalid spec must not be observed")


def serve_basics(server: kmock.RawHandler) -> None:
    catalog = yaml.safe_load((ROOT / "deploy/catalog/default-instancecatalog.yaml").read_text())
    server[f"get {paths.servingpolicy('default')}"] << 404 << {"kind": "Status"}
    server[f"get {paths.instancecatalog('default')}"] << catalog
    server[f"patch {paths.modelserving_status(NS, 'resnet50-classifier')}"] << {}
    server[f"post {paths.events(NS)}"] << {}


async def run(server: kmock.RawHandler, body: dict[str, Any]) -> dict[str, Any]:
    async with KubeClient.for_url(str(server.url), backoffs=()) as kube:
        deps = Deps(kube=kube, source_for=lambda _u: NoMetrics(), clock=lambda: 1.8e9)
        result = await reconcile(deps, body)
    assert result.outcome == "Invalid"
    (patch,) = server[f"patch {paths.modelserving_status(NS, 'resnet50-classifier')}"]
    conditions = {c["type"]: c for c in patch.data["status"]["conditions"]}
    assert not list(server["/apis/apps/*"])  # the Deployment is not even read
    assert not list(server["/apis/autoscaling/*"])
    assert list(server["/apis/servingopt.io/*"])  # (the globs do match requests)
    (event,) = server[f"post {paths.events(NS)}"]
    assert event.data["type"] == "Warning"
    return conditions


async def test_unknown_pool_and_unselectable_variant(kmock: kmock.RawHandler) -> None:
    serve_basics(kmock)
    body = sample_body()
    body["spec"]["candidates"]["pools"].append("gpu-h100")
    plain = copy.deepcopy(body["spec"]["variants"][0])
    plain.update(name="plain")
    for key in ("image", "env"):
        plain.pop(key, None)
    body["spec"]["variants"].append(plain)
    conditions = await run(kmock, body)
    ready = conditions["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.candidates.pools[4]: unknown pool 'gpu-h100'" in ready["message"]
    assert "variant 'plain' gives no image, env or args" in ready["message"]
    assert conditions["Degraded"]["status"] == "True"


async def test_missing_named_policy(kmock: kmock.RawHandler) -> None:
    serve_basics(kmock)
    kmock[f"get {paths.servingpolicy('gold')}"] << 404 << {"kind": "Status"}
    body = sample_body()
    body["spec"]["policyRef"] = {"name": "gold"}
    conditions = await run(kmock, body)
    assert conditions["Ready"]["reason"] == "PolicyNotFound"
    assert "ServingPolicy 'gold' not found" in conditions["Ready"]["message"]
