"""Production fault: the API server stops for a minute and comes back.

The real kube-apiserver of the test cluster is stopped (SIGTERM) under a running
operator that has applied its configuration, kept down for 60 s, and started again on
the same ports with the same etcd. The operator must still be alive, act on a spec
edit made after the restart, leave exactly one HPA, and, once caught up, write nothing
while nothing changes.

Note: the outage stops the whole cluster's API for every test of this session; the
test leaves it up again (or the session's other tests fail loudly).
"""

from __future__ import annotations

import json
import time

from e2e_support import Exporter, Operator, modelserving, workload
from fault_support import (
    DEPLOY,
    Footprint,
    converged,
    nodes_ready,
    owned_hpas,
    rollout_done,
    status_of,
    wait_settled,
)

from servingopt.devcluster import DevCluster, Kubectl, wait_until

OUTAGE_S = 60.0
RESUME_BOUND_S = 90.0  # the spec edit seen in status after the API is back
QUIET_WINDOW_S = 75.0  # longer than two re-plan intervals (30 s, +-10 %)
AFTERSHOCKS_S = 120.0  # node grace period (50 s) plus the controllers' relist backoff


def test_the_operator_rides_out_a_minute_without_api_server(
    dev_cluster: DevCluster, kubectl: Kubectl, policy: str, exporter: Exporter, operator: Operator
) -> None:
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy))
    converged(kubectl, operator)
    before = Footprint.take(kubectl, operator)

    dev_cluster.stop_component("kube-apiserver")
    try:
        deadline = time.monotonic() + OUTAGE_S
        while time.monotonic() < deadline:
            assert operator.proc is not None
            assert operator.proc.poll() is None, f"operator exited\n{operator.log_tail(80)}"
            time.sleep(1)
    finally:
        ready_s = dev_cluster.start_component("kube-apiserver")
    back = time.monotonic()
    assert operator.proc is not None and operator.proc.poll() is None, operator.log_tail(80)
    print(f"\nAPI server ready {ready_s:.1f} s after its start")

    # A spec edit after the restart reaches the status: the operator resumed.
    patch = {"spec": {"slo": {"latencyP99Ms": 45}}}
    kubectl.run("patch", "modelserving", DEPLOY, "--type=merge", "-p", json.dumps(patch))
    generation = kubectl.json("get", "modelserving", DEPLOY)["metadata"]["generation"]
    wait_until(
        lambda: status_of(kubectl).get("observedGeneration") == generation,
        RESUME_BOUND_S,
        f"status.observedGeneration {generation}\n{operator.log_tail(80)}",
        interval=0.5,
    )
    resumed_s = time.monotonic() - back
    print(f"spec edit reflected in status {resumed_s:.1f} s after the API server was back")
    assert operator.proc.poll() is None

    # One HPA for the Deployment, still the ModelServing's own.
    hpas = owned_hpas(kubectl)
    assert len(hpas) == 1, [h["metadata"]["name"] for h in hpas]
    uid = kubectl.json("get", "modelserving", DEPLOY)["metadata"]["uid"]
    assert hpas[0]["metadata"]["ownerReferences"][0]["uid"] == uid
    assert before.hpa[0][0] == hpas[0]["metadata"]["name"]

    # The cluster's own aftershocks first: the node lifecycle controller, its informers
    # back late, may mark every (kwok) node NotReady a minute or more after the restart,
    # so pods turn unready and back (the operator rightly reports it). Then caught up
    # (the edit may have changed the plan), then a quiet window: no writes at all.
    wait_until(
        lambda: (
            time.monotonic() - back > AFTERSHOCKS_S
            and nodes_ready(kubectl)
            and rollout_done(kubectl)
        ),
        AFTERSHOCKS_S + 120,
        "nodes Ready and the Deployment available after the restart",
        interval=1,
    )
    caught_up_s = wait_settled(operator, quiet_s=45, timeout=300)
    quiet = Footprint.take(kubectl, operator)
    time.sleep(QUIET_WINDOW_S)
    after = Footprint.take(kubectl, operator)
    print(
        f"writes: {before.writes:.0f} before the outage, {quiet.writes:.0f} once caught up "
        f"({caught_up_s:.0f} s later), {after.writes - quiet.writes:.0f} in {QUIET_WINDOW_S:.0f} s "
        f"of quiet"
    )
    assert quiet.changes(after) == [], operator.log_tail(80)
    assert operator.proc.poll() is None
