"""The operator runs with nothing but the ClusterRole shipped in deploy/operator/rbac.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from e2e_support import (
    ROOT,
    Exporter,
    Operator,
    PrometheusProxy,
    modelserving,
    service_account_kubeconfig,
    shipped_rbac,
    workload,
)

from servingopt.devcluster import DevCluster, Kubectl, wait_until

DEPLOY = "resnet50-classifier"


def test_operator_works_with_the_shipped_cluster_role(
    kubectl: Kubectl,
    admin_kubectl: Kubectl,
    dev_cluster: DevCluster,
    namespace: str,
    policy: str,
    exporter: Exporter,
    proxy: PrometheusProxy,
    tmp_path: Path,
) -> None:
    kubectl.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "servingopt"}}
    )
    admin_kubectl.apply(shipped_rbac(namespace))
    token = kubectl.run("create", "token", "servingopt", "--duration=1h").stdout.strip()
    config = service_account_kubeconfig(dev_cluster.kubeconfig, token, tmp_path / "sa.kubeconfig")
    # Namespaced mode with a glob (cluster-scoped indexes are still served).
    glob = namespace[:-3] + "*"
    operator = Operator(config, proxy.url, tmp_path / "operator.log", namespaces=(glob,))
    operator.start()
    try:
        kubectl.apply(workload())
        kubectl.apply(modelserving(policy))
        wait_until(
            lambda: kubectl.json("get", "modelserving", DEPLOY).get("status", {}).get("applied"),
            120,
            "the operator to apply with the shipped RBAC",
        )
        wait_until(lambda: kubectl.json("get", "hpa")["items"], 30, "the owned HPA")
        assert "Forbidden" not in operator.log_path.read_text()
    finally:
        operator.stop()
        print(operator.log_tail(100))
        admin_kubectl.run("delete", "clusterrolebinding", f"servingopt-{namespace}", check=False)


def recommend_only_rbac(admin: Kubectl, namespace: str) -> list[dict[str, Any]]:
    """The recommend-only overlay's ClusterRole (rendered by kustomize), bound to a
    service account of ``namespace``; both renamed for this test."""
    text = admin.run("kustomize", str(ROOT / "deploy/overlays/recommend-only")).stdout
    name = f"servingopt-ro-{namespace}"
    out = []
    for doc in yaml.safe_load_all(text):
        if doc and doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            if doc["metadata"]["name"] != "servingopt":
                continue
            doc["metadata"]["name"] = name
            if doc["kind"] == "ClusterRoleBinding":
                doc["roleRef"]["name"] = name
                doc["subjects"][0]["namespace"] = namespace
            out.append(doc)
    return out


def test_the_recommend_only_overlay_recommends_and_writes_no_workload(
    kubectl: Kubectl,
    admin_kubectl: Kubectl,
    dev_cluster: DevCluster,
    namespace: str,
    policy: str,
    exporter: Exporter,
    proxy: PrometheusProxy,
    tmp_path: Path,
) -> None:
    kubectl.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "servingopt"}}
    )
    rbac = recommend_only_rbac(admin_kubectl, namespace)
    assert [d["kind"] for d in rbac] == ["ClusterRole", "ClusterRoleBinding"]
    admin_kubectl.apply(rbac)
    token = kubectl.run("create", "token", "servingopt", "--duration=1h").stdout.strip()
    config = service_account_kubeconfig(dev_cluster.kubeconfig, token, tmp_path / "sa.kubeconfig")
    operator = Operator(
        config,
        proxy.url,
        tmp_path / "operator.log",
        namespaces=(namespace,),
        extra_args=("--recommend-only",),
    )
    operator.start()
    try:
        kubectl.apply(workload())
        before = kubectl.json("get", "deployment", DEPLOY)["metadata"]["generation"]
        kubectl.apply(modelserving(policy))  # mode Auto, capped by the operator
        status = wait_until(
            lambda: (
                (s := kubectl.json("get", "modelserving", DEPLOY).get("status") or {}).get(
                    "recommendedPatch"
                )
                and s
            ),
            120,
            "a recommendation with its patch under the read-only role",
        )
        assert status["mode"] == "Recommend"
        assert status["recommendation"]["pool"] != "gpu-v100"
        live = kubectl.json("get", "deployment", DEPLOY, "--show-managed-fields")
        managers = {e.get("manager") for e in live["metadata"].get("managedFields") or []}
        assert "servingopt" not in managers
        assert live["metadata"]["generation"] == before
        assert kubectl.json("get", "hpa")["items"] == []
        assert "Forbidden" not in operator.log_path.read_text()
    finally:
        operator.stop()
        print(operator.log_tail(60))
        for kind in ("clusterrolebinding", "clusterrole"):
            admin_kubectl.run("delete", kind, f"servingopt-ro-{namespace}", check=False)
