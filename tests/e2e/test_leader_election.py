"""Two ``servingopt run --leader-elect`` replicas on the real control plane: exactly one
acts; a killed leader is replaced within a bound derived from the settings; a stopped
one hands over at once; a leader that could not renew exits non-zero; the shipped Role
is enough for the election.

The handover figures are printed (run with ``-s`` to see them); docs/operator.md quotes
them."""

from __future__ import annotations

import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import (
    Exporter,
    Operator,
    PrometheusProxy,
    free_port,
    modelserving,
    service_account_kubeconfig,
    shipped_rbac,
    workload,
)

from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.kube.leader import JITTER, LEASE_DURATION_S, RETRY_PERIOD_S

DEPLOY = "resnet50-classifier"
LEASE = "servingopt"
# API requests and process wake-ups on a shared 2-core machine.
SLACK = 3.0
# Killed: the standby saw the leader's last renewal up to one (jittered) retry after it
# was written, waits a lease duration from that sight, and tries at most one retry later.
KILL_BOUND = LEASE_DURATION_S + 2 * RETRY_PERIOD_S * (1 + JITTER) + SLACK
# ...and never before a lease duration from the last renewal, at most a retry before the kill.
KILL_FLOOR = LEASE_DURATION_S - RETRY_PERIOD_S - 1.0
# Stopped gracefully: the Lease is released; the standby takes it at its next try.
TERM_BOUND = RETRY_PERIOD_S * (1 + JITTER) + SLACK
# Acting needs kopf to start, list, and reconcile on top of holding the Lease.
ACT_MARGIN = 30.0


def replica(
    name: str, config: Path, proxy: PrometheusProxy, namespace: str, tmp_path: Path
) -> Operator:
    """A replica with its own identity and liveness port; the Lease lives in the test's
    namespace, which is also the only one it serves."""
    return Operator(
        config,
        proxy.url,
        tmp_path / f"{name}.log",
        namespaces=(namespace,),
        extra_args=(
            "--leader-elect",
            f"--leader-election-namespace={namespace}",
            f"--leader-election-identity={name}",
            f"--liveness=http://127.0.0.1:{free_port()}/healthz",
        ),
    )


def liveness(op: Operator) -> Any:
    url = next(a.partition("=")[2] for a in reversed(op.extra_args) if a.startswith("--liveness"))
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        return yaml.safe_load(resp.read())


def scrape(op: Operator) -> str:
    url = f"http://127.0.0.1:{op.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text: str = resp.read().decode()
        return text


def leading(op: Operator, identity: str) -> bool:
    return op.metric("servingopt_leader", identity=identity) == 1.0


def standing_by(op: Operator, identity: str) -> bool:
    try:
        return f'servingopt_leader{{identity="{identity}"}} 0.0' in scrape(op)
    except OSError:
        return False


def lease(kubectl: Kubectl) -> dict[str, Any]:
    spec: dict[str, Any] = kubectl.json("get", "lease", LEASE)["spec"]
    return spec


def started_kopf(op: Operator) -> bool:
    return "Starting Kopf" in op.log_path.read_text(errors="replace")


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.1) -> float:
    """Seconds until ``check()`` is true (polled every ``interval``)."""
    start = time.monotonic()
    wait_until(check, timeout, what, interval=interval)
    return time.monotonic() - start


def stop_all(*ops: Operator) -> None:
    for op in ops:
        if op.proc is not None and op.proc.poll() is None:
            op.proc.send_signal(signal.SIGCONT)
        op.stop()
        print(f"--- {op.log_path.name} (tail) ---\n{op.log_tail(40)}")


@pytest.fixture
def replicas(
    dev_cluster: DevCluster,
    installed: Kubectl,
    proxy: PrometheusProxy,
    namespace: str,
    tmp_path: Path,
) -> Iterator[tuple[Operator, Operator]]:
    """Replica a, the leader, and replica b, standing by."""
    a = replica("replica-a", dev_cluster.kubeconfig, proxy, namespace, tmp_path)
    b = replica("replica-b", dev_cluster.kubeconfig, proxy, namespace, tmp_path)
    a.start()
    try:
        wait_until(lambda: leading(a, "replica-a"), 60, "replica a to lead")
        b.start()
        wait_until(lambda: standing_by(b, "replica-b"), 60, "replica b to stand by")
        yield a, b
    finally:
        stop_all(a, b)


def test_exactly_one_acts_and_a_killed_leader_is_replaced_in_time(
    kubectl: Kubectl, policy: str, exporter: Exporter, replicas: tuple[Operator, Operator]
) -> None:
    a, b = replicas
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy, mode="Recommend"))
    wait_until(
        lambda: kubectl.json("get", "modelserving", DEPLOY).get("status", {}).get("recommendation"),
        120,
        "the leader's recommendation",
    )
    key = {"namespace": kubectl.namespace or "", "modelserving": DEPLOY}
    # Exactly one holds the Lease, and only that one acts: the standby never started
    # kopf, reconciled nothing and wrote nothing, and still answers liveness.
    assert lease(kubectl)["holderIdentity"] == "replica-a"
    assert leading(a, "replica-a") and standing_by(b, "replica-b")
    assert a.metric("servingopt_reconcile_duration_seconds_count", **key) >= 1
    assert "servingopt_reconcile_duration_seconds_count{" not in scrape(b)
    assert "servingopt_api_writes_total{" not in scrape(b)
    assert started_kopf(a) and not started_kopf(b)
    assert liveness(b) == {"leader": False, "identity": "replica-b"}

    # Kill the leader, then change the spec: only the next leader can notice.
    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    a.proc.wait(10)
    kubectl.run(
        "patch",
        "modelserving",
        DEPLOY,
        "--type=merge",
        "-p",
        '{"spec":{"metrics":{"windowSeconds":31}}}',
    )
    generation = kubectl.json("get", "modelserving", DEPLOY)["metadata"]["generation"]
    wait_until(lambda: leading(b, "replica-b"), KILL_BOUND + 30, "replica b to take over")
    held = time.monotonic() - killed

    def observed() -> bool:
        status = kubectl.json("get", "modelserving", DEPLOY).get("status") or {}
        return bool(status.get("observedGeneration") == generation)

    wait_until(observed, ACT_MARGIN + 30, "replica b to reconcile the edit", interval=0.5)
    acted = time.monotonic() - killed
    spec = lease(kubectl)
    print(
        f"\nSIGKILL handover: standby held the Lease after {held:.1f} s "
        f"(bound {KILL_FLOOR:.1f}..{KILL_BOUND:.1f} s), reconciled a spec edit made "
        f"after the kill {acted:.1f} s after it"
    )
    assert spec["holderIdentity"] == "replica-b"
    assert spec["leaseTransitions"] == 1
    assert KILL_FLOOR <= held <= KILL_BOUND
    assert acted <= held + ACT_MARGIN
    assert b.metric("servingopt_api_writes_total", **key) >= 1


def test_a_stopped_leader_releases_the_lease_and_the_standby_takes_it_at_once(
    kubectl: Kubectl, replicas: tuple[Operator, Operator]
) -> None:
    a, b = replicas
    assert a.proc is not None
    a.proc.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    wait_until(lambda: leading(b, "replica-b"), 30, "replica b to take over")
    held = time.monotonic() - stopped
    assert a.proc.wait(15) == 0
    print(
        f"\nSIGTERM handover: standby held the Lease after {held:.1f} s (bound {TERM_BOUND:.1f} s)"
    )
    assert held <= TERM_BOUND
    # It took a released Lease (no holder), not an expired one.
    assert "is held by nobody" in b.log_path.read_text()
    assert lease(kubectl)["holderIdentity"] == "replica-b"
    assert started_kopf(b)


def test_a_leader_that_could_not_renew_stops_and_exits_non_zero(
    kubectl: Kubectl, replicas: tuple[Operator, Operator]
) -> None:
    a, b = replicas
    assert a.proc is not None
    a.proc.send_signal(signal.SIGSTOP)  # a frozen leader renews nothing
    frozen = time.monotonic()
    try:
        wait_until(lambda: leading(b, "replica-b"), KILL_BOUND + 30, "replica b to take over")
    finally:
        a.proc.send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    code = a.proc.wait(RETRY_PERIOD_S + 15)
    print(
        f"\nSIGSTOP: standby held the Lease after {resumed - frozen:.1f} s; the resumed "
        f"leader exited {code} after {time.monotonic() - resumed:.1f} s"
    )
    assert resumed - frozen <= KILL_BOUND
    assert code == 5  # EXIT_LEADERSHIP_LOST: restarted, it campaigns as a standby
    assert "lost the lease" in a.log_path.read_text()
    assert lease(kubectl)["holderIdentity"] == "replica-b"


def can_i(admin: Kubectl, namespace: str, verb: str, what: str) -> bool:
    account = f"system:serviceaccount:{namespace}:servingopt"
    proc = admin.run("auth", "can-i", verb, what, f"--as={account}", f"-n={namespace}", check=False)
    return proc.stdout.strip() == "yes"


def test_the_shipped_role_grants_exactly_what_the_election_needs(
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
    docs = shipped_rbac(namespace)
    assert {d["kind"] for d in docs} >= {"Role", "RoleBinding"}
    admin_kubectl.apply(docs)
    try:
        # Exactly get/create/update, and get/update only on the Lease named servingopt.
        assert can_i(admin_kubectl, namespace, "get", f"leases.coordination.k8s.io/{LEASE}")
        assert can_i(admin_kubectl, namespace, "update", f"leases.coordination.k8s.io/{LEASE}")
        assert can_i(admin_kubectl, namespace, "create", "leases.coordination.k8s.io")
        for verb, what in (
            ("get", "leases.coordination.k8s.io/another"),
            ("update", "leases.coordination.k8s.io/another"),
            ("delete", f"leases.coordination.k8s.io/{LEASE}"),
            ("patch", f"leases.coordination.k8s.io/{LEASE}"),
            ("list", "leases.coordination.k8s.io"),
            ("watch", "leases.coordination.k8s.io"),
        ):
            assert not can_i(admin_kubectl, namespace, verb, what), (verb, what)
        assert not can_i(admin_kubectl, "default", "create", "leases.coordination.k8s.io")

        token = kubectl.run("create", "token", "servingopt", "--duration=1h").stdout.strip()
        config = service_account_kubeconfig(
            dev_cluster.kubeconfig, token, tmp_path / "sa.kubeconfig"
        )
        op = replica("sa-replica", config, proxy, namespace, tmp_path)
        op.start()
        try:
            wait_until(lambda: leading(op, "sa-replica"), 60, "the service account to lead")
            kubectl.apply(workload())
            kubectl.apply(modelserving(policy, mode="Recommend"))
            wait_until(
                lambda: (
                    kubectl.json("get", "modelserving", DEPLOY)
                    .get("status", {})
                    .get("recommendation")
                ),
                120,
                "a recommendation under the shipped RBAC",
            )
            # Renewals keep succeeding (update by name), then a graceful release.
            time.sleep(2 * RETRY_PERIOD_S + 1)
            assert lease(kubectl)["holderIdentity"] == "sa-replica"
        finally:
            stop_all(op)
        assert lease(kubectl).get("holderIdentity", "") == ""  # released: update allowed
        assert "Forbidden" not in op.log_path.read_text()
    finally:
        admin_kubectl.run("delete", "clusterrolebinding", f"servingopt-{namespace}", check=False)
