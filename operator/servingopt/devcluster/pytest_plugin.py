"""pytest fixtures for tests against the real local control plane.

Import the fixtures in a conftest.py (`from servingopt.devcluster.pytest_plugin import *`).

- `dev_cluster` (session): a fresh cluster for the test session, stopped at the end
  (also on Ctrl-C or a crash). Set SERVINGOPT_DEVCLUSTER=<name> to reuse a cluster
  started with `servingopt dev-cluster up -d --name <name>` instead (faster iteration).
- `kubeconfig`, `admin_kubectl` (session), `kubectl` (per test, in `namespace`).
- `namespace` (per test): a fresh namespace, deleted afterwards.
- `developer_kubectl`: the non-admin user, allowed only what its Role grants.
- `prometheus` (session): a real Prometheus server started on first use.
- `keda_crds` (session): KEDA's own CRDs (from its Go module) installed, no KEDA operator.
- `keda` (session): KEDA's operator and metrics API server running (the external metrics
  API), built from the same module.
- `custom_metrics` (session): prometheus-adapter serving the custom metrics API from
  that Prometheus, with `servingopt adapter-config`'s rules, started on first use.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from servingopt.devcluster.cluster import DevCluster, developer_rbac, prune_stale
from servingopt.devcluster.kubectl import Kubectl, wait_until
from servingopt.devcluster.prometheus import Prometheus

REUSE_ENV = "SERVINGOPT_DEVCLUSTER"
KEEP_ENV = "SERVINGOPT_KEEP_CLUSTER"

__all__ = [
    "admin_kubectl",
    "custom_metrics",
    "dev_cluster",
    "developer_kubectl",
    "keda",
    "keda_crds",
    "kubeconfig",
    "kubectl",
    "namespace",
    "prometheus",
]


@pytest.fixture(scope="session")
def dev_cluster() -> Iterator[DevCluster]:
    reuse = os.environ.get(REUSE_ENV)
    if reuse:
        yield DevCluster.load(reuse)
        return
    prune_stale(prefix="pytest-")  # from sessions that were killed outright
    cluster = DevCluster(name=f"pytest-{os.getpid()}")
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down(remove=not os.environ.get(KEEP_ENV))


@pytest.fixture(scope="session")
def kubeconfig(dev_cluster: DevCluster) -> Path:
    return dev_cluster.kubeconfig


@pytest.fixture(scope="session")
def admin_kubectl(dev_cluster: DevCluster) -> Kubectl:
    return dev_cluster.kubectl()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, admin_kubectl: Kubectl) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    admin_kubectl.run("create", "namespace", name)
    # Pods are refused until the controller-manager has made the default service account.
    ns = admin_kubectl.in_namespace(name)
    wait_until(
        lambda: ns.run("get", "serviceaccount", "default", check=False).returncode == 0,
        30,
        f"the default service account in {name}",
    )
    yield name
    admin_kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def kubectl(admin_kubectl: Kubectl, namespace: str) -> Kubectl:
    return admin_kubectl.in_namespace(namespace)


@pytest.fixture(scope="session")
def developer_kubectl(dev_cluster: DevCluster, admin_kubectl: Kubectl) -> Kubectl:
    admin_kubectl.apply(developer_rbac())  # idempotent; a reused cluster may predate it
    return dev_cluster.developer_kubectl()


@pytest.fixture(scope="session")
def prometheus(dev_cluster: DevCluster) -> Prometheus:
    return dev_cluster.start_prometheus()


@pytest.fixture(scope="session")
def custom_metrics(dev_cluster: DevCluster, prometheus: Prometheus) -> DevCluster:
    dev_cluster.start_adapter()
    return dev_cluster


@pytest.fixture(scope="session")
def keda(dev_cluster: DevCluster) -> DevCluster:
    """KEDA running: its operator and its metrics API server (the external metrics API)."""
    dev_cluster.start_keda()
    return dev_cluster


@pytest.fixture(scope="session")
def keda_crds(admin_kubectl: Kubectl) -> Kubectl:
    from servingopt.devcluster.keda import keda_crds_dir

    crd = keda_crds_dir() / "keda.sh_scaledobjects.yaml"
    admin_kubectl.run("apply", "--server-side", "-f", str(crd))
    admin_kubectl.run(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/scaledobjects.keda.sh"
    )
    return admin_kubectl
