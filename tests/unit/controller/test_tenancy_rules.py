"""Which policy governs a namespace, and what it lets a ModelServing ask for (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from servingopt.api import ModelServing, ServingPolicySpec
from servingopt.api.validation import load_one
from servingopt.guard import tenancy

ROOT = Path(__file__).resolve().parents[3]
SPEC = load_one(ROOT / "samples/modelservings/resnet50-classifier.yaml", ModelServing).spec


def policy(**spec: Any) -> ServingPolicySpec:
    return ServingPolicySpec.model_validate(spec)


EVERYWHERE = {"namespaceSelector": {}}


def test_a_policy_without_a_selector_governs_nothing() -> None:
    found = tenancy.select_policy({"p": policy()}, "ml", {}, None)
    assert found.policy is None and found.reason == "NoPolicy"


def test_the_namespace_name_label_is_always_there() -> None:
    only_ml = policy(namespaceSelector={"matchLabels": {"kubernetes.io/metadata.name": "ml"}})
    assert tenancy.select_policy({"p": only_ml}, "ml", {}, None).name == "p"
    assert tenancy.select_policy({"p": only_ml}, "web", {}, None).reason == "NoPolicy"


@pytest.mark.parametrize(
    ("expression", "labels", "selected"),
    [
        ({"key": "team", "operator": "In", "values": ["ml", "ai"]}, {"team": "ai"}, True),
        ({"key": "team", "operator": "In", "values": ["ml"]}, {"team": "web"}, False),
        ({"key": "team", "operator": "NotIn", "values": ["web"]}, {}, True),
        ({"key": "team", "operator": "NotIn", "values": ["web"]}, {"team": "web"}, False),
        ({"key": "gpu", "operator": "Exists"}, {"gpu": ""}, True),
        ({"key": "gpu", "operator": "Exists"}, {}, False),
        ({"key": "frozen", "operator": "DoesNotExist"}, {"frozen": "yes"}, False),
    ],
)
def test_match_expressions(
    expression: dict[str, Any], labels: dict[str, str], selected: bool
) -> None:
    p = policy(namespaceSelector={"matchExpressions": [expression]})
    assert (tenancy.select_policy({"p": p}, "ml", labels, None).name == "p") is selected


def test_the_highest_priority_governs_and_policy_ref_picks_only_among_selecting() -> None:
    policies = {
        "default": policy(**EVERYWHERE),
        "gpu-team": policy(namespaceSelector={"matchLabels": {"team": "ml"}}, priority=10),
        "web": policy(namespaceSelector={"matchLabels": {"team": "web"}}, priority=50),
    }
    labels = {"team": "ml"}
    assert tenancy.select_policy(policies, "ml", labels, None).name == "gpu-team"
    assert tenancy.select_policy(policies, "ml", labels, "default").name == "default"
    refused = tenancy.select_policy(policies, "ml", labels, "web")
    assert refused.policy is None and refused.reason == "PolicyNotAllowed"
    assert "default, gpu-team" in refused.message
    assert tenancy.select_policy(policies, "ml", labels, "gold").reason == "PolicyNotFound"


def test_a_tie_at_the_top_is_not_broken_silently() -> None:
    policies = {"a": policy(**EVERYWHERE), "b": policy(**EVERYWHERE), "c": policy(priority=9)}
    found = tenancy.select_policy(policies, "ml", {}, None)
    assert found.reason == "AmbiguousPolicy" and "a, b" in found.message
    assert tenancy.select_policy(policies, "ml", {}, "b").name == "b"


def rules(**workload: Any) -> Any:
    return policy(workload=workload).workload


def test_the_sample_needs_its_images_and_env_names_allowed() -> None:
    problems = tenancy.workload_problems(SPEC, rules(), "p")
    assert len([p for p in problems if ".image:" in p]) == 3
    assert any("'MODEL_PRECISION' is not allowed" in p for p in problems)
    assert any("'TRITON_MAX_BATCH_SIZE' is not allowed" in p for p in problems)
    allowed = rules(
        allowedImages=["registry.example.com/ml/resnet50-*"],
        allowedEnvNames=["MODEL_PRECISION", "TRITON_*"],
    )
    assert tenancy.workload_problems(SPEC, allowed, "p") == []


def test_loader_variables_are_refused_even_under_a_star() -> None:
    spec = SPEC.model_copy(deep=True)
    assert spec.variants is not None
    spec.variants[0].env.append(spec.variants[0].env[0].model_copy(update={"name": "LD_PRELOAD"}))
    problems = tenancy.workload_problems(
        spec, rules(allowedImages=["*"], allowedEnvNames=["*"]), "p"
    )
    assert problems == [
        "spec.variants[0].env[1].name: servingopt never sets 'LD_PRELOAD' "
        "(it changes how code loads)"
    ]


def test_image_globs_match_the_whole_reference() -> None:
    only_team = rules(allowedImages=["registry.example.com/ml/*"], allowedEnvNames=["*"])
    spec = SPEC.model_copy(deep=True)
    assert spec.variants is not None
    spec.variants[0].image = "registry.example.com.evil.io/ml/x:1"
    problems = tenancy.workload_problems(spec, only_team, "p")
    assert problems and "registry.example.com.evil.io/ml/x:1" in problems[0]


def test_prometheus_urls_come_from_admins() -> None:
    p = policy(prometheusUrl="http://prom:9090", allowedPrometheusUrls=["http://thanos:9090/"])
    unset = SPEC.model_copy(
        update={"metrics": SPEC.metrics.model_copy(update={"prometheus_url": None})}
    )
    assert tenancy.prometheus_url(unset, p, "http://op:9090") == ("http://prom:9090", "")
    assert tenancy.prometheus_url(unset, policy(), "http://op:9090") == ("http://op:9090", "")

    def named(url: str) -> tuple[str | None, str]:
        metrics = SPEC.metrics.model_copy(update={"prometheus_url": url})
        return tenancy.prometheus_url(
            SPEC.model_copy(update={"metrics": metrics}), p, "http://op:9090"
        )

    assert named("http://thanos:9090") == ("http://thanos:9090", "")
    assert named("http://op:9090/")[0] == "http://op:9090/"
    for hostile in (
        "http://169.254.169.254/latest",
        "https://kubernetes.default.svc",
        "http://prom:9091",
    ):
        url, problem = named(hostile)
        assert url is None and "not allowed" in problem


def test_the_namespace_matcher_is_always_the_modelservings() -> None:
    p = policy()
    labels, problem = tenancy.metric_labels(SPEC, "ml", p)
    assert problem == "" and labels == {"model": "resnet50", "namespace": "ml"}
    metrics = SPEC.metrics.model_copy(update={"label_matchers": None})
    labels, _ = tenancy.metric_labels(SPEC.model_copy(update={"metrics": metrics}), "ml", p)
    assert labels == {"deployment": "resnet50-classifier", "namespace": "ml"}
    other = SPEC.metrics.model_copy(update={"label_matchers": {"namespace": "team-b"}})
    _, problem = tenancy.metric_labels(SPEC.model_copy(update={"metrics": other}), "ml", p)
    assert "must be the ModelServing's own namespace 'ml'" in problem
    custom = policy(metricsNamespaceLabel="kubernetes_namespace")
    labels, _ = tenancy.metric_labels(SPEC, "ml", custom)
    assert labels["kubernetes_namespace"] == "ml"
