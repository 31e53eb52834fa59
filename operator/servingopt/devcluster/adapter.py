"""prometheus-adapter in the dev cluster: the custom metrics API the HPA controller reads.

The adapter runs on loopback like the other components and is registered with the API
server's aggregation layer as ``v1beta1`` and ``v1beta2`` of ``custom.metrics.k8s.io``.
There is no kube-proxy and loopback is not a valid Endpoints address, so the APIService
points at an ``ExternalName`` Service whose name is ``127.0.0.1``: the aggregator
resolves such a Service to ``externalName:port`` (k8s.io/apiserver's ResolveCluster) and
checks the adapter's serving certificate against the Service's DNS name, which the
certificate carries.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from servingopt.devcluster.pki import ADAPTER_SERVICE, Pki

GROUP = "custom.metrics.k8s.io"
VERSIONS = ("v1beta1", "v1beta2")
#: How often the adapter lists Prometheus' series to find new metrics and pods.
RELIST_SECONDS = 5


def adapter_argv(
    binary: Path, port: int, pki: Pki, kubeconfig: Path, prometheus_url: str, config: Path
) -> list[str]:
    return [
        str(binary),
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.adapter.cert}",
        f"--tls-private-key-file={pki.adapter.key}",
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--prometheus-url={prometheus_url}/",
        f"--metrics-relist-interval={RELIST_SECONDS}s",
        f"--config={config}",
        "--v=1",
    ]


def registration(port: int, pki: Pki) -> list[dict[str, Any]]:
    """The Namespace, ExternalName Service and APIServices that route the custom metrics
    API to the adapter on 127.0.0.1:``port``."""
    namespace, service = ADAPTER_SERVICE
    ca_bundle = base64.b64encode(pki.ca.cert.read_bytes()).decode()
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "namespace": namespace},
            "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
        },
    ]
    for priority, version in enumerate(VERSIONS, start=1):
        objects.append(
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": f"{version}.{GROUP}"},
                "spec": {
                    "group": GROUP,
                    "version": version,
                    "service": {"namespace": namespace, "name": service, "port": port},
                    "caBundle": ca_bundle,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100 + priority,
                },
            }
        )
    return objects
