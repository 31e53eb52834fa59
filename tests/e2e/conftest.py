"""End-to-end tests: the operator (`servingopt run`) against the real local control plane
and a real Prometheus, reusing the dev-cluster fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from e2e_support import (
    Demand,
    Exporter,
    Operator,
    PrometheusProxy,
    service_account_kubeconfig,
    workload,
)

from servingopt.demo import SAMPLE_WORKLOAD_RULES
from servingopt.devcluster import DevCluster, Kubectl, Prometheus
from servingopt.devcluster import pools as pools_mod
from servingopt.devcluster.twin import GroundTruth, TrafficTwin, load_spec, serving

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
DEPLOY = "resnet50-classifier"
EXTRA_NODES = 6  # the dev pools have 3 nodes per capacity type; the HPA may go past that


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


# The RBAC objects an install creates, exactly as the kustomize base renders them.
SHIPPED_RBAC_KINDS = {
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
}


@pytest.fixture(scope="session")
def operator_kubeconfig(
    dev_cluster: DevCluster, installed: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig holding a token of the shipped ServiceAccount (servingopt-system/
    servingopt) with the shipped roles bound, not the admin's: every e2e test that runs
    the `operator` fixture runs it with exactly the rights an install grants."""
    rendered = installed.run("kustomize", str(ROOT / "deploy/operator")).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in SHIPPED_RBAC_KINDS]
    installed.apply(docs)
    token = installed.run(
        "create", "token", "servingopt", "-n", "servingopt-system", "--duration=8h"
    ).stdout.strip()
    target = tmp_path_factory.mktemp("operator-account") / "kubeconfig"
    return service_account_kubeconfig(dev_cluster.kubeconfig, token, target)


@pytest.fixture
def operator(
    operator_kubeconfig: Path, proxy: PrometheusProxy, tmp_path: Path
) -> Iterator[Operator]:
    op = Operator(operator_kubeconfig, proxy.url, tmp_path / "operator.log")
    op.start()
    yield op
    op.stop()
    print(f"--- operator log (tail) ---\n{op.log_tail(200)}")
    log = op.log_path.read_text(errors="replace")
    # An RBAC denial names the account and what it "cannot" do (a namespace being
    # deleted also answers 403, for another reason).
    denied = [line for line in log.splitlines() if "forbidden" in line and " cannot " in line]
    assert denied == [], f"the shipped RBAC refused the operator: {denied[:5]}"


# The twin behind a Deployment scaled by a real HPA (HPA, spot-mix and KEDA tests).


@pytest.fixture
def demand() -> Demand:
    return Demand(300.0)


@pytest.fixture
def twin(
    custom_metrics: DevCluster,
    prometheus: Prometheus,
    kubectl: Kubectl,
    namespace: str,
    demand: Demand,
) -> Iterator[TrafficTwin]:
    kubectl.apply(workload())
    kubectl.run("rollout", "status", f"deployment/{DEPLOY}", "--timeout=90s")
    with serving(
        kubeconfig=custom_metrics.kubeconfig,
        prometheus=prometheus,
        namespace=namespace,
        deployment=DEPLOY,
        truth=GroundTruth(load_spec(ROOT / "samples/modelservings/resnet50-classifier.yaml"), {}),
        demand=demand,
    ) as t:
        yield t


@pytest.fixture
def extra_nodes(admin_kubectl: Kubectl) -> Iterator[Callable[[str], None]]:
    """Adds kwok nodes to the pool the operator chose, so that the HPA's maximum can be
    scheduled; deletes them afterwards (the session's cluster keeps its own pools)."""
    added: list[str] = []

    def add(pool_name: str) -> None:
        pool_set = pools_mod.load_pools()
        pool = next(p for p in pool_set.pools if p.name == pool_name)
        nodes = [
            pools_mod.node_manifest(pool, capacity_type, 100 + i, pool_set.zones[i % 3])
            for capacity_type in pool.capacity_types
            for i in range(EXTRA_NODES)
        ]
        admin_kubectl.apply(nodes)
        added.extend(n["metadata"]["name"] for n in nodes)

    yield add
    if added:
        admin_kubectl.run("delete", "node", *added, "--timeout=60s", check=False)
