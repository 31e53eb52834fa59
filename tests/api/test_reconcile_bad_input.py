"""Specs the CRD accepts but servingopt cannot act on: a precise condition, no change."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml

from servingopt.controller.reconcile import Deps, reconcile
from servingopt.kube import paths
from servingopt.kube.client import KubeClient
from servingopt.metrics.source import SampleRequest
from servingopt.values import MetricsSample

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


def policy(name: str, **spec: Any) -> dict[str, Any]:
    """A policy that lets the resnet50 sample through unless ``spec`` says otherwise."""
    base = {
        "namespaceSelector": {},
        "workload": {
            "allowedImages": ["registry.example.com/ml/*"],
            "allowedEnvNames": ["MODEL_PRECISION", "TRITON_*"],
        },
    }
    return {"metadata": {"name": name}, "spec": {**base, **spec}}


def serve_basics(server: kmock.RawHandler, *policies: dict[str, Any]) -> None:
    catalog = yaml.safe_load((ROOT / "deploy/catalog/default-instancecatalog.yaml").read_text())
    items = list(policies) or [policy("default")]
    server[f"get {paths.servingpolicies()}"] << {"kind": "ServingPolicyList", "items": items}
    server[f"get {paths.namespace(NS)}"] << {
        "metadata": {"name": NS, "labels": {"kubernetes.io/metadata.name": NS, "team": "ml"}}
    }
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
    assert all(r.method == "GET" for r in server["/apis/servingopt.io/*/servingpolicies*"])
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
    body = sample_body()
    body["spec"]["policyRef"] = {"name": "gold"}
    conditions = await run(kmock, body)
    assert conditions["Ready"]["reason"] == "PolicyNotFound"
    assert "ServingPolicy 'gold' not found" in conditions["Ready"]["message"]


async def test_no_policy_selects_the_namespace(kmock: kmock.RawHandler) -> None:
    other = {"matchLabels": {"team": "web"}}
    serve_basics(
        kmock, policy("web", namespaceSelector=other), policy("unset", namespaceSelector=None)
    )
    body = sample_body()
    body["spec"]["policyRef"] = None
    conditions = await run(kmock, body)
    assert conditions["Ready"]["reason"] == "NoPolicy"
    assert "no ServingPolicy selects namespace 'ml'" in conditions["Ready"]["message"]


async def test_a_policy_that_does_not_select_the_namespace_cannot_be_named(
    kmock: kmock.RawHandler,
) -> None:
    loose = policy("loose", namespaceSelector={"matchLabels": {"team": "web"}})
    serve_basics(kmock, policy("strict", priority=5), loose)
    body = sample_body()
    body["spec"]["policyRef"] = {"name": "loose"}
    conditions = await run(kmock, body)
    assert conditions["Ready"]["reason"] == "PolicyNotAllowed"
    message = conditions["Ready"]["message"]
    assert "'loose' does not select namespace 'ml'" in message and "strict" in message


async def test_equal_priority_policies_ask_for_a_choice(kmock: kmock.RawHandler) -> None:
    serve_basics(kmock, policy("a"), policy("b"))
    body = sample_body()
    body["spec"].pop("policyRef", None)
    conditions = await run(kmock, body)
    assert conditions["Ready"]["reason"] == "AmbiguousPolicy"
    assert "a, b all select namespace 'ml'" in conditions["Ready"]["message"]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            lambda s: s["variants"][0].update(image="evil.example.com/miner:latest"),
            "spec.variants[0].image: 'evil.example.com/miner:latest' is not allowed",
        ),
        (lambda s: s["variants"][0].update(args=["--debug"]), "does not allow setting args"),
        (
            lambda s: s["variants"][0]["env"].append({"name": "LD_PRELOAD", "value": "/x.so"}),
            "servingopt never sets 'LD_PRELOAD'",
        ),
        (
            lambda s: s["batching"]["env"].update(maxBatchSize="PYTHONPATH"),
            "spec.batching.env.maxBatchSize: servingopt never sets 'PYTHONPATH'",
        ),
        (
            lambda s: s["variants"][1]["env"].append({"name": "DEBUG", "value": "1"}),
            "env name 'DEBUG' is not allowed by ServingPolicy 'default'",
        ),
    ],
)
async def test_what_the_policy_does_not_allow_is_refused(
    kmock: kmock.RawHandler, change: Any, fragment: str
) -> None:
    serve_basics(kmock)
    body = sample_body()
    body["spec"].pop("policyRef", None)
    change(body["spec"])
    conditions = await run(kmock, body)
    assert conditions["Ready"]["reason"] == "NotAllowedByPolicy"
    assert fragment in conditions["Ready"]["message"]


async def test_a_prometheus_the_policy_does_not_allow_is_never_queried(
    kmock: kmock.RawHandler,
) -> None:
    serve_basics(kmock, policy("default", prometheusUrl="http://prometheus.monitoring:9090"))
    body = sample_body()
    body["spec"]["metrics"] = {"prometheusUrl": "http://169.254.169.254/latest/meta-data"}
    conditions = await run(kmock, body)  # NoMetrics raises if anything is sampled
    assert conditions["Ready"]["reason"] == "PrometheusNotAllowed"


async def test_label_matchers_cannot_leave_the_namespace(kmock: kmock.RawHandler) -> None:
    serve_basics(kmock)
    body = sample_body()
    body["spec"]["metrics"] = {"labelMatchers": {"namespace": "team-b", "app": "x"}}
    conditions = await run(kmock, body)
    assert conditions["Ready"]["reason"] == "InvalidSpec"
    assert (
        "labelMatchers.namespace: must be the ModelServing's own namespace 'ml'"
        in (conditions["Ready"]["message"])
    )


async def test_a_decision_is_logged_once_per_episode_not_per_replan(
    kmock: kmock.RawHandler, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator's log says what it decided (or why it holds) once when that
    changes; re-plans that find the same thing add no line."""
    serve_basics(kmock)
    body = sample_body()
    body["spec"]["candidates"]["pools"].append("gpu-h100")
    async with KubeClient.for_url(str(kmock.url), backoffs=()) as kube:
        deps = Deps(kube=kube, source_for=lambda _u: NoMetrics(), clock=lambda: 1.8e9)
        with caplog.at_level(logging.INFO, logger="servingopt.controller"):
            for _ in range(3):
                await reconcile(deps, body)
                patches = list(
                    kmock[f"patch {paths.modelserving_status(NS, 'resnet50-classifier')}"]
                )
                if patches:  # the next re-plan sees the status this one wrote
                    body = {**body, "status": patches[-1].data["status"]}
    said = [
        r.getMessage() for r in caplog.records if "resnet50-classifier Invalid" in r.getMessage()
    ]
    assert len(said) == 1, said
    assert "unknown pool 'gpu-h100'" in said[0]
