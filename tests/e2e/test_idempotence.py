"""A second reconcile with nothing changed sends no write to the real API server.

Runs the loop in-process (no kopf) with metrics that do not move, so any write on the
second pass would be servingopt's own churn. Every API request is counted."""

from __future__ import annotations

import time

from e2e_support import modelserving, workload

from servingopt.controller.reconcile import Deps, reconcile
from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.kube.client import Credentials, KubeClient
from servingopt.metrics.source import SampleRequest
from servingopt.values import MetricsSample

DEPLOY = "resnet50-classifier"


class FrozenSource:
    """Metrics that never change: 1500 req/s for the last hour, three replicas."""

    def __init__(self, now: float) -> None:
        history = tuple((now - 60 * i, 1500.0) for i in range(60, -1, -1))
        self.frozen = MetricsSample(request_rate=1500.0, replicas=3, demand_history=history)

    async def sample(self, _: SampleRequest) -> MetricsSample:
        return self.frozen


async def test_second_pass_sends_no_writes(
    kubectl: Kubectl, policy: str, dev_cluster: DevCluster
) -> None:
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy))
    # The first pass applies only once the workload as created has rolled out (a
    # rollout in flight is held, rightly).
    wait_until(
        lambda: kubectl.json("get", "deployment", DEPLOY)["status"].get("availableReplicas") == 3,
        90,
        "the workload as created",
    )
    now = [time.time()]
    source = FrozenSource(now[0])
    async with KubeClient(Credentials.load(str(dev_cluster.kubeconfig))) as kube:
        deps = Deps(
            kube=kube,
            source_for=lambda _url: source,
            clock=lambda: now[0],
            default_prometheus_url="http://127.0.0.1:1",
        )

        async def once() -> tuple[str, int, int]:
            body = kubectl.json("get", "modelserving", DEPLOY)
            before_writes, before_requests = kube.write_count, kube.requests
            result = await reconcile(deps, body)
            now[0] += 60
            return result.outcome, kube.write_count - before_writes, kube.requests - before_requests

        outcome, writes, _ = await once()
        assert outcome == "Applied" and writes >= 3  # Deployment, HPA, status (+ state)
        pool = kubectl.json("get", "modelserving", DEPLOY)["status"]["applied"]["pool"]

        def settled() -> bool:
            d = kubectl.json("get", "deployment", DEPLOY)
            return bool(
                d["status"].get("updatedReplicas")
                == d["status"].get("readyReplicas")
                == d["spec"]["replicas"]
                and d["status"].get("replicas") == d["spec"]["replicas"]
            )

        wait_until(settled, 120, f"the rollout to {pool}")
        await once()  # sees the finished rollout: cost and conditions settle
        outcome, writes, requests = await once()
    assert outcome == "Unchanged"
    assert writes == 0
    assert requests > 0  # it did read the cluster
