"""The non-admin kubeconfig gets exactly what its Role grants, in its namespace only."""

from __future__ import annotations

import pytest

from servingopt.devcluster import DEV_NAMESPACE, DEV_USER, Kubectl, KubectlError

from .test_scheduling import _deployment


def test_developer_may_do_what_its_role_allows(developer_kubectl: Kubectl) -> None:
    assert (
        developer_kubectl.run("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
        == DEV_USER
    )
    developer_kubectl.run("get", "pods")
    developer_kubectl.apply(_deployment("dev-app", replicas=0))
    assert developer_kubectl.json("get", "deployment", "dev-app")["spec"]["replicas"] == 0


DENIED = {
    "secrets": (("get", "secrets"), ("list", "secrets")),
    "delete": (("delete", "deployment", "dev-app"), ("delete", "deployments")),
    "other-namespace": (("get", "pods", "-n", "default"), ("list", "pods", "-n", "default")),
    "nodes": (("get", "nodes"), ("list", "nodes")),
    "create-namespace": (("create", "namespace", "not-mine"), ("create", "namespaces")),
    "clusterroles": (("get", "clusterroles"), ("list", "clusterroles")),
}


@pytest.mark.parametrize("case", DENIED.values(), ids=DENIED.keys())
def test_developer_is_denied_what_its_role_does_not_allow(
    developer_kubectl: Kubectl,
    admin_kubectl: Kubectl,
    case: tuple[tuple[str, ...], tuple[str, ...]],
) -> None:
    args, can_i = case
    admin_kubectl.in_namespace(DEV_NAMESPACE).apply(_deployment("dev-app", replicas=0))
    with pytest.raises(KubectlError) as err:
        developer_kubectl.run(*args)
    assert "Forbidden" in err.value.stderr
    assert f'User "{DEV_USER}" cannot' in err.value.stderr
    answer = developer_kubectl.run("auth", "can-i", *can_i, check=False).stdout.strip()
    assert answer == "no"
