"""A hostile or broken Prometheus end to end: the real operator, API server and
Prometheus behind a proxy that hangs, answers 30 MB, answers for an hour ago, or puts a
marker string in an error body. For each: the operator keeps running, the ModelServing
says MetricsAvailable=False with the right reason within a bounded time, the Deployment
is not touched, the marker appears nowhere; and the loop recovers when Prometheus
answers again. One operator serves every mode, to keep the file short."""

from __future__ import annotations

import json
import time
from typing import Any

from e2e_support import ECHO_MARKER, Exporter, Operator, PrometheusProxy, modelserving, workload

from servingopt.devcluster import Kubectl, wait_until

DEPLOY = "resnet50-classifier"
# mode, reason, words of the message, seconds allowed to get there. Each mode change is
# followed by a spec change, so the update handler samples at once.
FAULTS: tuple[tuple[str, str, str, float], ...] = (
    ("echo", "PrometheusUnavailable", "query refused (HTTP 400)", 60),
    ("huge", "PrometheusUnavailable", "answer larger than 8388608 bytes", 60),
    ("stale", "MetricsStale", "3600 s away", 60),
    # The 15 s deadline of one sample, plus the status write and the polling.
    ("hang", "PrometheusUnavailable", "no complete answer within 15 s", 45),
)


def metrics_condition(kubectl: Kubectl) -> dict[str, Any]:
    status = kubectl.json("get", "modelserving", DEPLOY).get("status") or {}
    for condition in status.get("conditions", []):
        if condition["type"] == "MetricsAvailable":
            return dict(condition)
    return {}


def set_window(kubectl: Kubectl, seconds: int) -> None:
    patch = {"spec": {"metrics": {"windowSeconds": seconds}}}
    kubectl.run("patch", "modelserving", DEPLOY, "--type=merge", "-p", json.dumps(patch))


def untouched(kubectl: Kubectl, before: dict[str, Any]) -> None:
    """The Deployment as it was before the ModelServing, and no HPA."""
    now = kubectl.json("get", "deployment", DEPLOY)
    assert now["metadata"]["generation"] == before["metadata"]["generation"]
    assert now["spec"]["template"] == before["spec"]["template"]
    assert kubectl.json("get", "hpa")["items"] == []


def no_marker_anywhere(kubectl: Kubectl, operator: Operator) -> None:
    ms = kubectl.run("get", "modelserving", DEPLOY, "-o", "json").stdout
    events = kubectl.run("get", "events", "-o", "json").stdout
    assert ECHO_MARKER not in ms and ECHO_MARKER not in events
    assert ECHO_MARKER not in operator.log_path.read_text(errors="replace")


def test_a_broken_prometheus_holds_the_workload_and_leaks_nothing(
    kubectl: Kubectl, policy: str, exporter: Exporter, proxy: PrometheusProxy, operator: Operator
) -> None:
    proxy.mode = FAULTS[0][0]
    kubectl.apply(workload())
    before = kubectl.json("get", "deployment", DEPLOY)
    kubectl.apply(modelserving(policy))
    timings: dict[str, float] = {}
    for step, (mode, reason, words, allowed) in enumerate(FAULTS):
        proxy.mode = mode
        started = time.monotonic()
        if step:
            set_window(kubectl, 31 + step)
        condition = wait_until(
            lambda r=reason, w=words: (
                (c := metrics_condition(kubectl)).get("reason") == r and w in c["message"] and c
            ),
            allowed,
            f"MetricsAvailable=False ({reason}: {words}) in mode {mode}\n{operator.log_tail()}",
            interval=1.0,
        )
        timings[mode] = time.monotonic() - started
        assert condition["status"] == "False"
        assert operator.proc is not None and operator.proc.poll() is None  # still running
        untouched(kubectl, before)
    print(f"seconds from fault to condition: {timings}")
    no_marker_anywhere(kubectl, operator)

    # Prometheus answers again: the loop picks it up.
    proxy.mode = "pass"
    started = time.monotonic()
    set_window(kubectl, 30)
    wait_until(
        lambda: metrics_condition(kubectl).get("status") == "True",
        60,
        f"MetricsAvailable=True after the faults\n{operator.log_tail()}",
        interval=1.0,
    )
    print(f"seconds to recover: {time.monotonic() - started:.1f}")
    no_marker_anywhere(kubectl, operator)
