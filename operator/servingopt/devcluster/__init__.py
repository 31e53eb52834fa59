"""The local dev cluster: a real Kubernetes control plane (etcd, kube-apiserver,
controller-manager, scheduler) built from Go modules, kwok for fake GPU/CPU node pools,
and optionally a real Prometheus. Used by the integration tests and the demo."""

from servingopt.devcluster.cluster import (
    DEV_NAMESPACE,
    DEV_USER,
    ClusterError,
    DevCluster,
    state_root,
)
from servingopt.devcluster.kubectl import Kubectl, KubectlError, wait_until
from servingopt.devcluster.prometheus import Prometheus

__all__ = [
    "DEV_NAMESPACE",
    "DEV_USER",
    "ClusterError",
    "DevCluster",
    "Kubectl",
    "KubectlError",
    "Prometheus",
    "state_root",
    "wait_until",
]
