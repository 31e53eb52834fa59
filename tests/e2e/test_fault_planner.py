"""A planner that raises, on the real API server (in-process reconciles): the failing
ModelServing holds with ``PlannerFailed`` (type and message, one line, no traceback) and
a Warning Event, the traceback goes to the log, the other ModelServing is planned and
applied as usual, and the condition clears once the planner works again."""

from __future__ import annotations

import copy
import logging
import time
from collections import Counter
from typing import Any

import pytest
from e2e_support import ScriptedSource, modelserving, workload

from servingopt.controller.reconcile import Deps, reconcile
from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.kube.client import Credentials, KubeClient
from servingopt.optimize.planner import plan

BROKEN, HEALTHY = "broken", "healthy"
LONG_TAIL = "x" * 2000


class FlakyPlanner:
    """The real planner, except for one target while ``broken``."""

    def __init__(self, failing: str) -> None:
        self.failing = failing
        self.broken = True
        self.calls: Counter[str] = Counter()

    def __call__(self, spec: Any, *args: Any) -> Any:
        self.calls[spec.target_ref.name] += 1
        if self.broken and spec.target_ref.name == self.failing:
            raise ZeroDivisionError(f"float division by zero\n  at a made-up spot {LONG_TAIL}")
        return plan(spec, *args)


def named(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """``doc`` (the sample workload or ModelServing) renamed, with its own pod labels."""
    out = copy.deepcopy(doc)
    out["metadata"]["name"] = name
    if out["kind"] == "Deployment":
        labels = {"app.kubernetes.io/name": name}
        out["metadata"]["labels"] = labels
        out["spec"]["replicas"] = 2
        out["spec"]["selector"]["matchLabels"] = labels
        out["spec"]["template"]["metadata"]["labels"] = labels
    else:
        out["spec"]["targetRef"]["name"] = name
    return out


def conditions(kubectl: Kubectl, name: str) -> dict[str, dict[str, Any]]:
    status = kubectl.json("get", "modelserving", name)["status"]
    return {c["type"]: c for c in status["conditions"]}


def warnings_about(kubectl: Kubectl, name: str) -> list[dict[str, Any]]:
    selector = f"involvedObject.name={name},type=Warning"
    items: list[dict[str, Any]] = kubectl.json("get", "events", "--field-selector", selector)[
        "items"
    ]
    return items


async def test_a_failing_planner_holds_one_modelserving_only(
    kubectl: Kubectl, policy: str, dev_cluster: DevCluster, caplog: pytest.LogCaptureFixture
) -> None:
    for name in (BROKEN, HEALTHY):
        kubectl.apply(named(workload(), name))
        kubectl.apply(named(modelserving(policy), name))
    for name in (BROKEN, HEALTHY):
        wait_until(
            lambda n=name: kubectl.json("get", "deployment", n)["status"].get("readyReplicas") == 2,
            90,
            f"Deployment {name} on V100",
        )
    planner = FlakyPlanner(BROKEN)
    source = ScriptedSource(time.time())
    async with KubeClient(Credentials.load(str(dev_cluster.kubeconfig))) as kube:
        deps = Deps(
            kube=kube,
            source_for=lambda _u: source,
            planner=planner,
            default_prometheus_url="http://127.0.0.1:1",
        )

        async def once(name: str) -> str:
            result = await reconcile(deps, kubectl.json("get", "modelserving", name))
            return result.outcome

        with caplog.at_level(logging.ERROR, logger="servingopt.controller"):
            assert await once(BROKEN) == "Held"
        assert await once(HEALTHY) == "Applied"
        assert planner.calls == {BROKEN: 1, HEALTHY: 1}

        # The failing one: a condition that says what broke, in one bounded line.
        cond = conditions(kubectl, BROKEN)
        for kind in ("Optimized", "Degraded"):
            assert cond[kind]["reason"] == "PlannerFailed", cond[kind]
        assert cond["Optimized"]["status"] == "False" and cond["Degraded"]["status"] == "True"
        message = cond["Degraded"]["message"]
        assert message.startswith(
            "the planner failed (ZeroDivisionError: float division by zero at a made-up spot x"
        )
        assert "\n" not in message and "Traceback" not in message and len(message) < 400
        assert cond["MetricsAvailable"]["status"] == "True"  # the metrics were fine
        assert cond["Ready"]["status"] == "True"
        # ... a Warning Event, the traceback in the log, and nothing changed.
        (event,) = warnings_about(kubectl, BROKEN)
        assert event["reason"] == "Held" and "ZeroDivisionError" in event["message"]
        (record,) = [r for r in caplog.records if "planner failed" in r.getMessage()]
        assert record.exc_info is not None and record.getMessage().endswith(f"/{BROKEN}")
        template = kubectl.json("get", "deployment", BROKEN)["spec"]["template"]["spec"]
        assert template["nodeSelector"]["servingopt.io/pool"] == "gpu-v100"
        assert [h["metadata"]["name"] for h in kubectl.json("get", "hpa")["items"]] == [HEALTHY]

        # The other one was planned and applied as usual.
        healthy = conditions(kubectl, HEALTHY)
        assert healthy["Optimized"]["reason"] == "Applied"
        assert healthy["Degraded"]["status"] == "False"
        moved = kubectl.json("get", "deployment", HEALTHY)["spec"]["template"]["spec"]
        assert moved["nodeSelector"]["servingopt.io/pool"] != "gpu-v100"

        # Still failing: the same episode, no second Event.
        assert await once(BROKEN) == "Held"
        assert len(warnings_about(kubectl, BROKEN)) == 1

        # The planner works again: the condition clears and the change goes through.
        planner.broken = False
        assert await once(BROKEN) == "Applied"
        cond = conditions(kubectl, BROKEN)
        assert cond["Degraded"]["status"] == "False", cond["Degraded"]
        assert cond["Optimized"]["reason"] == "Applied"
        assert "PlannerFailed" not in str(cond)
    assert {h["metadata"]["name"] for h in kubectl.json("get", "hpa")["items"]} == {
        BROKEN,
        HEALTHY,
    }
