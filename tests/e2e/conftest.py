"""End-to-end tests: the operator (`servingopt run`) against the real local control plane
and a real Prometheus, reusing the dev-cluster fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Exporter, Operator, PrometheusProxy

from servingopt.demo import SAMPLE_WORKLOAD_RULES
from servingopt.devcluster import DevCluster, Kubectl, Prometheus

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def installed(admin_kubectl: Kubectl) -> Kubectl:
    """CRDs and the default catalog."""
    admin_kubectl.run("apply", "--server-side", "-f", str(ROOT / "crds"))
    admin_kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    admin_kubectl.run("apply", "-f", str(ROOT / "deploy/catalog/default-instancecatalog.yaml"))
    return admin_kubectl


@pytest.fixture
def policy(installed: Kubectl, namespace: str) -> Iterator[str]:
    """A ServingPolicy governing this test's namespace only: 30 s re-plans, at most one
    change per 10 min, the resnet50 sample's images and env names allowed."""
    doc = {
        "apiVersion": "servingopt.io/v1alpha1",
        "kind": "ServingPolicy",
        "metadata": {"name": namespace},
        "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "workload": SAMPLE_WORKLOAD_RULES,
            "replanIntervalSeconds": 30,
            "guardrails": {"minSavingPercent": 10, "minIntervalSeconds": 600, "maxReplicaStep": 4},
        },
    }
    installed.apply(doc)
    yield namespace
    installed.run("delete", "servingpolicy", namespace, "--wait=false", check=False)


@pytest.fixture
def proxy(prometheus: Prometheus) -> Iterator[PrometheusProxy]:
    p = PrometheusProxy(prometheus.url)
    p.start()
    yield p
    p.stop()


@pytest.fixture
def exporter(prometheus: Prometheus, namespace: str) -> Iterator[Exporter]:
    e = Exporter({"namespace": namespace, "deployment": "resnet50-classifier"})
    target = e.start()
    prometheus.add_static_targets(f"serving-{namespace}", [target])
    yield e
    prometheus.remove_static_targets(f"serving-{namespace}")
    e.stop()


@pytest.fixture
def operator(
    dev_cluster: DevCluster, installed: Kubectl, proxy: PrometheusProxy, tmp_path: Path
) -> Iterator[Operator]:
    op = Operator(dev_cluster.kubeconfig, proxy.url, tmp_path / "operator.log")
    op.start()
    yield op
    op.stop()
    print(f"--- operator log (tail) ---\n{op.log_tail(200)}")
