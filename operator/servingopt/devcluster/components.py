"""Command lines of the control-plane components, loopback only.

Flags follow what controller-runtime's envtest and kwokctl's binary runtime pass, plus
RBAC, a real CA and service-account keys so that the cluster behaves like a real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from servingopt.devcluster.binaries import Binaries
from servingopt.devcluster.pki import FRONT_PROXY_CLIENT, Pki

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
KWOK_NODE_SELECTOR = "kwok.x-k8s.io/node=fake"
ALWAYS_ALLOW = "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics"


@dataclass(frozen=True)
class Ports:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def from_list(cls, ports: list[int]) -> Ports:
        return cls(*ports[:6])


def etcd_argv(b: Binaries, ports: Ports, data_dir: Path) -> list[str]:
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    client = f"http://127.0.0.1:{ports.etcd}"
    return [
        str(b.etcd),
        "--name=servingopt",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=servingopt={peer}",
        "--unsafe-no-fsync=true",  # a throwaway test store: durability buys nothing here
        "--auto-compaction-retention=1",
        "--quota-backend-bytes=2147483648",
        "--log-level=warn",
    ]


def apiserver_argv(b: Binaries, ports: Ports, pki: Pki) -> list[str]:
    return [
        str(b.kube_apiserver),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={pki.apiserver.cert}",
        f"--tls-private-key-file={pki.apiserver.key}",
        f"--client-ca-file={pki.ca.cert}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--endpoint-reconciler-type=none",  # loopback is not a valid Endpoints address
        # the aggregation layer, for extension API servers (the metrics adapter)
        f"--requestheader-client-ca-file={pki.front_proxy_ca.cert}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.front_proxy_client.cert}",
        f"--proxy-client-key-file={pki.front_proxy_client.key}",
        "--v=0",
    ]


def controller_manager_argv(b: Binaries, ports: Ports, pki: Pki, kubeconfig: Path) -> list[str]:
    return [
        str(b.kube_controller_manager),
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        ALWAYS_ALLOW,
        f"--root-ca-file={pki.ca.cert}",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--cluster-name=servingopt-dev",
        "--leader-elect=false",
        "--node-monitor-period=2s",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--v=0",
    ]


def scheduler_argv(b: Binaries, ports: Ports, kubeconfig: Path) -> list[str]:
    return [
        str(b.kube_scheduler),
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        ALWAYS_ALLOW,
        "--leader-elect=false",
        "--v=0",
    ]


def kwok_argv(b: Binaries, ports: Ports, pki: Pki, kubeconfig: Path, stages: Path) -> list[str]:
    return [
        str(b.kwok),
        f"--kubeconfig={kubeconfig}",
        f"--config={stages}",
        # Only nodes annotated as fake are kwok's; the controller-manager keeps the rest.
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_SELECTOR}",
        f"--cidr={POD_CIDR}",
        f"--node-port={ports.kwok}",
        f"--server-address=127.0.0.1:{ports.kwok}",
        f"--tls-cert-file={pki.apiserver.cert}",
        f"--tls-private-key-file={pki.apiserver.key}",
        "--node-lease-duration-seconds=40",
    ]
