"""The Deployment deleted mid-apply, on the real API server: server-side apply would
create a missing object even with a resourceVersion in the body; servingopt's apply
carries the uid it read, so nothing is created, the reconcile holds with a clear
message, no HPA appears, and the next reconcile reports the target missing."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from e2e_support import ScriptedSource, modelserving, workload

from servingopt.controller.reconcile import Deps, reconcile
from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.kube import paths
from servingopt.kube.client import APPLY, Credentials, KubeClient

DEPLOY = "resnet50-classifier"


class DeletesBeforeApply(KubeClient):
    """Deletes the Deployment the first time servingopt is about to apply to it, i.e.
    after ``io.apply_config`` read it and built its body."""

    def __init__(self, *args: Any, namespace: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target = paths.deployment(namespace, DEPLOY)
        self.deleted = False
        self.applies: list[dict[str, Any]] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        if method == "PATCH" and path == self.target and content_type == APPLY:
            self.applies.append(body)
            if not self.deleted:
                self.deleted = await self.delete(path)
        return await super().request(
            method, path, params=params, body=body, content_type=content_type
        )


def conditions(kubectl: Kubectl) -> dict[str, dict[str, Any]]:
    status = kubectl.json("get", "modelserving", DEPLOY)["status"]
    return {c["type"]: c for c in status["conditions"]}


async def test_a_deployment_deleted_mid_apply_is_not_recreated(
    kubectl: Kubectl, policy: str, dev_cluster: DevCluster, namespace: str
) -> None:
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy))
    wait_until(
        lambda: kubectl.json("get", "deployment", DEPLOY)["status"].get("readyReplicas") == 3,
        60,
        "the workload on V100",
    )
    source = ScriptedSource(time.time())
    credentials = Credentials.load(str(dev_cluster.kubeconfig))
    async with DeletesBeforeApply(credentials, namespace=namespace) as kube:
        deps = Deps(
            kube=kube,
            source_for=lambda _u: source,
            default_prometheus_url="http://127.0.0.1:1",
        )
        result = await reconcile(deps, kubectl.json("get", "modelserving", DEPLOY))
        assert kube.deleted
        # The planner wanted a change (the apply was tried); nothing was written to the
        # Deployment and no HPA was applied.
        assert len(kube.applies) == 1 and kube.applies[0]["metadata"]["uid"]
        assert not any(k.startswith("PATCH deployments") for k in kube.writes), kube.writes
        assert not any("horizontalpodautoscalers" in k for k in kube.writes), kube.writes
        assert result.outcome == "Held", result
        optimized = conditions(kubectl)["Optimized"]
        assert optimized["status"] == "False" and optimized["reason"] == "ApplyFailed"
        expected = f"Deployment {namespace}/{DEPLOY} was deleted while servingopt applied to it"
        assert expected in optimized["message"]
        events = kubectl.json("get", "events", "--field-selector", "reason=Held")["items"]
        assert any(expected in e["message"] for e in events)

        time.sleep(1)  # anything the apply had created would be there by now
        missing = kubectl.run("get", "deployment", DEPLOY, check=False)
        assert missing.returncode != 0 and "NotFound" in missing.stderr
        assert kubectl.json("get", "hpa")["items"] == []

        again = await reconcile(deps, kubectl.json("get", "modelserving", DEPLOY))
        assert again.outcome == "Invalid"
        ready = conditions(kubectl)["Ready"]
        assert ready["status"] == "False" and ready["reason"] == "TargetNotFound"
        assert len(kube.applies) == 1  # nothing applied to a missing target
    assert kubectl.json("get", "hpa")["items"] == []
