"""One component of the dev cluster stopped and started again (``DevCluster.stop_component``
/ ``start_component``): same command line, ports and state, a new process, and the
cluster works again. The scheduler, because an outage of it is easy to see: a pod made
meanwhile waits, and is scheduled once it is back."""

from __future__ import annotations

from typing import Any

import pytest

from servingopt.devcluster import DevCluster, Kubectl, wait_until
from servingopt.devcluster.cluster import ClusterError
from servingopt.devcluster.process import is_alive


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"servingopt.io/pool": "cpu-c6i-2x"},
            "containers": [{"name": "main", "image": "example.com/idle:1"}],
        },
    }


def node_of(kubectl: Kubectl, name: str) -> str | None:
    node: str | None = kubectl.json("get", "pod", name)["spec"].get("nodeName")
    return node


def test_a_stopped_scheduler_comes_back_as_it_was(
    dev_cluster: DevCluster, kubectl: Kubectl
) -> None:
    before = dev_cluster.records["kube-scheduler"]
    dev_cluster.stop_component("kube-scheduler")
    try:
        assert not is_alive(before)
        kubectl.create(pod("waits"))
        wait_until(lambda: kubectl.json("get", "pod", "waits"), 10, "the pod")
        assert node_of(kubectl, "waits") is None  # nobody schedules it
    finally:
        took = dev_cluster.start_component("kube-scheduler")
    after = dev_cluster.records["kube-scheduler"]
    assert after.pid != before.pid and is_alive(after)
    assert after.argv == before.argv  # same flags, hence the same ports
    assert took < 30
    wait_until(lambda: node_of(kubectl, "waits"), 60, "the pod to be scheduled")
    with pytest.raises(ClusterError, match="still running"):
        dev_cluster.start_component("kube-scheduler")
