"""The custom metrics API, served by the real prometheus-adapter from a real Prometheus.

The traffic twin plays three replicas of the resnet50 sample on kwok nodes and exports
each pod's counters; Prometheus scrapes them; the adapter, configured with
`servingopt adapter-config`'s rules and registered with the API server's aggregation
layer, must serve each pod's request rate and requests in flight through
``/apis/custom.metrics.k8s.io/v1beta2`` — what the HPA controller reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.utils.quantity import parse_quantity

from servingopt.devcluster import DevCluster, Kubectl, Prometheus
from servingopt.devcluster.kubectl import wait_until
from servingopt.devcluster.twin import GroundTruth, TrafficTwin, load_spec, serving

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = "resnet50-classifier"
TOTAL_RPS = 150.0  # 50 per pod: well within one V100's capacity, so all are served


@pytest.fixture
def twin(
    custom_metrics: DevCluster, prometheus: Prometheus, kubectl: Kubectl, namespace: str
) -> Iterator[TrafficTwin]:
    kubectl.apply(yaml.safe_load((ROOT / "samples/workloads/resnet50-classifier.yaml").read_text()))
    kubectl.run("rollout", "status", f"deployment/{DEPLOY}", "--timeout=90s")
    with serving(
        kubeconfig=custom_metrics.kubeconfig,
        prometheus=prometheus,
        namespace=namespace,
        deployment=DEPLOY,
        truth=GroundTruth(load_spec(ROOT / "samples/modelservings/resnet50-classifier.yaml"), {}),
        demand=lambda _: TOTAL_RPS,
    ) as t:
        yield t


def pods_metric(kubectl: Kubectl, namespace: str, metric: str) -> dict[str, float]:
    path = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/pods/*/{metric}"
    proc = kubectl.run("get", "--raw", path, check=False)
    if proc.returncode != 0:
        return {}
    items: list[dict[str, Any]] = json.loads(proc.stdout)["items"]
    return {i["describedObject"]["name"]: float(parse_quantity(i["value"])) for i in items}


def test_the_api_server_serves_each_pods_request_rate(
    twin: TrafficTwin, admin_kubectl: Kubectl, namespace: str
) -> None:
    perf = {state.name: p for state, p in twin.snapshot() if p is not None}
    pods = set(perf)
    assert len(pods) == 3
    assert all(p.served_rps == pytest.approx(TOTAL_RPS / 3) for p in perf.values())

    def served() -> bool:
        rates = pods_metric(admin_kubectl, namespace, "requests_per_second")
        return set(rates) == pods and all(
            r == pytest.approx(perf[pod].served_rps, rel=0.05) for pod, r in rates.items()
        )

    started = time.monotonic()
    wait_until(served, 90, "the adapter to serve each pod's request rate")
    print(f"served after {time.monotonic() - started:.1f} s")
    rates = pods_metric(admin_kubectl, namespace, "requests_per_second")
    print("requests_per_second", rates)

    # Little's law: a pod's requests in flight are its rate times its mean latency.
    in_flight = {pod: p.served_rps * p.mean_latency_ms / 1000 for pod, p in perf.items()}
    wait_until(
        lambda: set(pods_metric(admin_kubectl, namespace, "concurrent_requests")) == pods,
        30,
        "the adapter to serve concurrent_requests",
    )
    concurrency = pods_metric(admin_kubectl, namespace, "concurrent_requests")
    print("concurrent_requests", concurrency, "expected", in_flight)
    for pod, value in concurrency.items():
        assert value == pytest.approx(in_flight[pod], rel=0.1)


def test_another_namespace_sees_none_of_these_pods(
    twin: TrafficTwin, admin_kubectl: Kubectl, namespace: str
) -> None:
    wait_until(
        lambda: len(pods_metric(admin_kubectl, namespace, "requests_per_second")) == 3,
        90,
        "the adapter to serve the pods",
    )
    assert pods_metric(admin_kubectl, "default", "requests_per_second") == {}
