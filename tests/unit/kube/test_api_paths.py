"""Request paths are built from checked names only, and checked again before sending."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servingopt.kube import paths
from servingopt.kube.client import ScopeViolation, check_path, check_scope, namespace_of

HOSTILE = [
    "../../../namespaces/kube-system/deployments/coredns",
    "..",
    ".",
    "a/b",
    "%2e%2e",
    "coredns%2F..",
    "web?dryRun=All",
    "web#x",
    "web\n",
    "",
    "Web",
    "-web",
    "a" * 254,
]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_never_becomes_a_path(name: str) -> None:
    for build in (
        lambda: paths.deployment("ml", name),
        lambda: paths.deployment(name, "web"),
        lambda: paths.hpa("ml", name),
        lambda: paths.servingpolicy(name),
        lambda: paths.instancecatalog(name),
        lambda: paths.modelserving_status("ml", name),
        lambda: paths.events(name),
        lambda: paths.node(name),
    ):
        with pytest.raises(paths.InvalidName):
            build()


@given(st.text(max_size=80))
def test_any_text_gives_a_refusal_or_a_path_with_one_segment_per_name(name: str) -> None:
    try:
        path = paths.deployment("ml", name)
    except paths.InvalidName:
        return
    parts = check_path(path)
    assert parts == ["apis", "apps", "v1", "namespaces", "ml", "deployments", name]
    assert namespace_of(parts) == ("ml", True)


@pytest.mark.parametrize(
    "path",
    [
        "/apis/apps/v1/namespaces/ml/deployments/../../kube-system/deployments/coredns",
        "/apis/apps/v1/namespaces/ml/deployments/%2e%2e",
        "/apis/apps/v1/namespaces/ml//deployments/web",
        "/apis/apps/v1/namespaces/ml/deployments/web?x=1",
        "apis/apps/v1/namespaces/ml/deployments/web",
    ],
)
def test_the_client_refuses_a_path_that_is_not_plain_names(path: str) -> None:
    with pytest.raises(ScopeViolation):
        check_path(path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/apis/apps/v1/namespaces/kube-system/deployments/coredns"),
        ("GET", "/api/v1/namespaces/team-b/pods"),
        ("POST", "/api/v1/namespaces/team-b/events"),
        ("PATCH", "/api/v1/nodes/node-1"),
        ("DELETE", "/apis/servingopt.io/v1alpha1/servingpolicies/default"),
        ("PATCH", "/api/v1/namespaces/ml"),
        ("GET", "/version/x"),
    ],
)
def test_a_scoped_client_refuses_other_namespaces_and_cluster_writes(
    method: str, path: str
) -> None:
    with pytest.raises(ScopeViolation):
        check_scope(method, path, "ml")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/apis/apps/v1/namespaces/ml/deployments/web"),
        ("GET", "/api/v1/namespaces/ml/pods"),
        ("GET", "/api/v1/nodes/node-1"),
        ("GET", "/apis/servingopt.io/v1alpha1/servingpolicies/default"),
        ("GET", "/api/v1/namespaces/ml"),
        ("PATCH", "/apis/servingopt.io/v1alpha1/namespaces/ml/modelservings/m/status"),
    ],
)
def test_a_scoped_client_allows_its_namespace_and_cluster_reads(method: str, path: str) -> None:
    check_scope(method, path, "ml")
