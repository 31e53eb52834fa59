"""KEDA in the dev cluster: its CRDs (fetched from its Go module by hack/keda-crds.sh),
its operator and its metrics API server (built from the same module by
hack/build-controlplane.sh), on loopback like the other components.

The two talk gRPC over mutual TLS, from certificates in one directory (``ca.crt``,
``tls.crt``, ``tls.key``: what KEDA's own certificate rotation would write to its
Secret); the metrics API server is registered with the aggregation layer as
``v1beta1.external.metrics.k8s.io`` through an ``ExternalName`` Service named
``127.0.0.1``, as prometheus-adapter is (see :mod:`.adapter`).
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

from servingopt.devcluster.pki import CertPair, make_ca, sign

ROOT = Path(__file__).resolve().parents[3]
NAMESPACE = "keda"
OPERATOR = "keda-operator"
METRICS_SERVER = "keda-metrics-apiserver"
GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"


def keda_crds_dir() -> Path:
    """The directory with KEDA's CRD YAML files (fetched on first use)."""
    script = ROOT / "hack" / "keda-crds.sh"
    out = subprocess.run([str(script)], check=True, capture_output=True, text=True, timeout=600)
    return Path(out.stdout.strip().splitlines()[-1])


def make_certs(d: Path) -> CertPair:
    """KEDA's CA and the one certificate both components serve and present: valid for
    loopback and for the Services the aggregator and the gRPC client name."""
    d.mkdir(parents=True, exist_ok=True)
    ca = make_ca(d, "ca", "/CN=servingopt-dev-keda-ca")
    names = [f"DNS:{s}.{NAMESPACE}.svc" for s in (OPERATOR, METRICS_SERVER)]
    sans = ",".join(["IP:127.0.0.1", "DNS:localhost", *names])
    ext = ["extendedKeyUsage=serverAuth,clientAuth", f"subjectAltName={sans}"]
    sign(d, ca, "tls", "/CN=keda", ext)
    return ca


def environment(kubeconfig: Path) -> list[str]:
    """``env`` arguments: both read the kubeconfig and their namespace from the env."""
    return [
        "env",
        f"KUBECONFIG={kubeconfig}",
        f"KEDA_CLUSTER_OBJECT_NAMESPACE={NAMESPACE}",
        f"POD_NAMESPACE={NAMESPACE}",
        "WATCH_NAMESPACE=",
    ]


def operator_argv(
    binary: Path, kubeconfig: Path, certs: Path, ports: tuple[int, int, int]
) -> list[str]:
    """``ports``: metrics, health probe, gRPC metrics service."""
    metrics, probe, grpc = ports
    return [
        *environment(kubeconfig),
        str(binary),
        f"--metrics-bind-address=127.0.0.1:{metrics}",
        f"--health-probe-bind-address=127.0.0.1:{probe}",
        f"--metrics-service-bind-address=127.0.0.1:{grpc}",
        f"--cert-dir={certs}",
        f"--ca-dir={certs}",
        "--leader-elect=false",
        "--enable-cert-rotation=false",
        "--zap-log-level=info",
    ]


def metrics_server_argv(
    binary: Path, kubeconfig: Path, certs: Path, port: int, metrics_port: int, grpc: int
) -> list[str]:
    return [
        *environment(kubeconfig),
        str(binary),
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={certs}",  # also the gRPC client's certificates
        f"--tls-cert-file={certs / 'tls.crt'}",
        f"--tls-private-key-file={certs / 'tls.key'}",
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--metrics-service-address=127.0.0.1:{grpc}",
        "--metrics-service-grpc-authority=localhost",
        f"--port={metrics_port}",
        "--zap-log-level=info",
    ]


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}


def registration(port: int, ca: Path) -> list[dict[str, Any]]:
    """The Namespace, ExternalName Service and APIService routing the external metrics
    API to KEDA's metrics API server on 127.0.0.1:``port``."""
    return [
        namespace(),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": METRICS_SERVER, "namespace": NAMESPACE},
            "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": f"{VERSION}.{GROUP}"},
            "spec": {
                "group": GROUP,
                "version": VERSION,
                "service": {"namespace": NAMESPACE, "name": METRICS_SERVER, "port": port},
                "caBundle": base64.b64encode(ca.read_bytes()).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]
