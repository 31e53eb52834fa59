"""Pods are really scheduled by kube-scheduler onto kwok node pools and rolled by the
real controller-manager."""

from __future__ import annotations

from typing import Any

from servingopt.devcluster import Kubectl, wait_until

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"node.kubernetes.io/instance-type": "g4dn.xlarge"},
                    "tolerations": [GPU_TOLERATION],
                    "containers": [
                        {
                            "name": "model",
                            "image": "example.com/model-server:1",
                            "resources": {
                                "requests": {"cpu": "1", "memory": "2Gi"},
                                "limits": {"nvidia.com/gpu": "1"},
                            },
                        }
                    ],
                },
            },
        },
    }


def _running_pods(kubectl: Kubectl, app: str) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = kubectl.json("get", "pods", "-l", f"app={app}")["items"]
    return [
        p for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]  # fmt: skip


def _node_labels(kubectl: Kubectl, node: str) -> dict[str, str]:
    labels: dict[str, str] = kubectl.json("get", "node", node)["metadata"]["labels"]
    return labels


def test_gpu_deployment_runs_on_t4_nodes_then_moves_to_cpu_pool(kubectl: Kubectl) -> None:
    kubectl.apply(_deployment("classifier", replicas=3))
    pods = wait_until(
        lambda: (p := _running_pods(kubectl, "classifier")) and len(p) == 3 and p,
        60,
        "3 running pods on the T4 pool",
    )
    nodes = {p["spec"]["nodeName"] for p in pods}
    for node in nodes:
        labels = _node_labels(kubectl, node)
        assert labels["servingopt.io/pool"] == "gpu-t4"
        assert labels["nvidia.com/gpu.product"] == "Tesla-T4"
    assert len(nodes) == 3  # one GPU each: three pods need three nodes

    # Move to the CPU pool: new selector, no GPU. The controller-manager rolls it out.
    patch = (
        '[{"op":"replace","path":"/spec/template/spec/nodeSelector",'
        '"value":{"servingopt.io/pool":"cpu-c6i"}},'
        '{"op":"remove","path":"/spec/template/spec/containers/0/resources/limits"}]'
    )
    kubectl.run("patch", "deployment", "classifier", "--type=json", "-p", patch)
    kubectl.run("rollout", "status", "deployment/classifier", "--timeout=60s")

    def moved() -> list[dict[str, Any]] | None:
        pods = _running_pods(kubectl, "classifier")
        on_cpu = [
            p for p in pods
            if _node_labels(kubectl, p["spec"]["nodeName"])["servingopt.io/pool"] == "cpu-c6i"
        ]  # fmt: skip
        return pods if len(pods) == 3 and len(on_cpu) == 3 else None

    wait_until(moved, 60, "all pods on the c6i pool")
    rs = kubectl.json("get", "replicasets", "-l", "app=classifier")["items"]
    assert len(rs) == 2  # a real rolling update: old and new ReplicaSet


def test_gpu_pod_without_toleration_stays_pending(kubectl: Kubectl) -> None:
    dep = _deployment("untolerated", replicas=1)
    dep["spec"]["template"]["spec"]["tolerations"] = []
    kubectl.apply(dep)

    def unschedulable() -> str | None:
        pods = kubectl.json("get", "pods", "-l", "app=untolerated")["items"]
        for c in pods[0]["status"].get("conditions", []) if pods else []:
            if c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable":
                return str(c.get("message", ""))
        return None

    message = wait_until(unschedulable, 30, "the scheduler to report Unschedulable")
    assert "had untolerated taint" in message


def test_kwok_pods_report_ready_conditions_and_ips(kubectl: Kubectl) -> None:
    dep = _deployment("probe", replicas=1)
    dep["spec"]["template"]["spec"]["nodeSelector"] = {"servingopt.io/pool": "cpu-c6i"}
    del dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    kubectl.apply(dep)
    pod = wait_until(lambda: (p := _running_pods(kubectl, "probe")) and p[0], 60, "a pod")
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    assert pod["status"]["podIP"].startswith("10.244.")
    assert pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    kubectl.run("wait", "--for=condition=Available", "deployment/probe", "--timeout=30s")


def test_job_pods_run_to_completion(kubectl: Kubectl) -> None:
    kubectl.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "warmup"},
            "spec": {
                "completions": 2,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "nodeSelector": {"servingopt.io/pool": "cpu-c6i-2x"},
                        "containers": [{"name": "warmup", "image": "example.com/warmup:1"}],
                    }
                },
            },
        }
    )
    kubectl.run("wait", "--for=condition=Complete", "job/warmup", "--timeout=60s")
