"""Local certificates and keys for the dev cluster, made with the `openssl` CLI.

One throwaway CA signs the API server's serving certificate and the client certificates
(admin in `system:masters`, a non-admin developer for RBAC tests) and the metrics
adapter's serving certificate. A second CA, the front proxy's, signs only the client
certificate the API server's aggregation layer presents to extension API servers (the
adapter), as kubeadm keeps them apart. The service-account token signing key is a
separate EC key pair. Everything lives in the cluster's state
dir and dies with it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "30"
SERVICE_IP = "10.96.0.1"
API_SANS = (
    "IP:127.0.0.1",
    f"IP:{SERVICE_IP}",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)
#: The client name the aggregation layer presents (``--requestheader-allowed-names``).
FRONT_PROXY_CLIENT = "front-proxy-client"
#: The adapter's Service, whose DNS name the aggregator checks the serving cert against.
ADAPTER_SERVICE = ("custom-metrics", "prometheus-adapter")


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: CertPair
    apiserver: CertPair
    admin: CertPair
    developer: CertPair
    sa_key: Path
    sa_pub: Path
    front_proxy_ca: CertPair
    front_proxy_client: CertPair
    adapter: CertPair


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("the openssl CLI is needed to make the dev cluster's certificates")
    subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True)


def _new_key(path: Path) -> None:
    # EC P-256: generation is instant, and every component accepts it.
    _openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        str(path),
        cwd=path.parent,
    )
    path.chmod(0o600)


def make_ca(d: Path, name: str = "ca", subject: str = "/CN=servingopt-dev-ca") -> CertPair:
    pair = CertPair(d / f"{name}.crt", d / f"{name}.key")
    _new_key(pair.key)
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(pair.key),
        "-out",
        str(pair.cert),
        "-days",
        DAYS,
        "-subj",
        subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )
    return pair


def sign(d: Path, ca: CertPair, name: str, subject: str, ext: list[str]) -> CertPair:
    """Issues `name`.crt/.key for `subject`; `ext` are X.509v3 extension lines."""
    pair = CertPair(d / f"{name}.crt", d / f"{name}.key")
    _new_key(pair.key)
    csr, extfile = d / f"{name}.csr", d / f"{name}.ext"
    extfile.write_text("\n".join(["keyUsage=critical,digitalSignature,keyEncipherment", *ext]))
    _openssl("req", "-new", "-key", str(pair.key), "-subj", subject, "-out", str(csr), cwd=d)
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca.cert),
        "-CAkey",
        str(ca.key),
        "-CAcreateserial",
        "-days",
        DAYS,
        "-extfile",
        str(extfile),
        "-out",
        str(pair.cert),
        cwd=d,
    )
    csr.unlink()
    extfile.unlink()
    return pair


def make_pki(d: Path, developer_user: str, developer_group: str) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    ca = make_ca(d)
    server_ext = ["extendedKeyUsage=serverAuth", "subjectAltName=" + ",".join(API_SANS)]
    client_ext = ["extendedKeyUsage=clientAuth"]
    apiserver = sign(d, ca, "apiserver", "/CN=kube-apiserver", server_ext)
    admin = sign(d, ca, "admin", "/O=system:masters/CN=servingopt-admin", client_ext)
    dev_subject = f"/O={developer_group}/CN={developer_user}"
    developer = sign(d, ca, "developer", dev_subject, client_ext)
    sa_key, sa_pub = d / "sa.key", d / "sa.pub"
    _new_key(sa_key)
    _openssl("pkey", "-in", str(sa_key), "-pubout", "-out", str(sa_pub), cwd=d)
    proxy_ca = make_ca(d, "front-proxy-ca", "/CN=servingopt-dev-front-proxy-ca")
    proxy_client = sign(d, proxy_ca, "front-proxy-client", f"/CN={FRONT_PROXY_CLIENT}", client_ext)
    namespace, service = ADAPTER_SERVICE
    adapter_sans = f"subjectAltName=IP:127.0.0.1,DNS:{service}.{namespace}.svc"
    adapter = sign(
        d, ca, "adapter", f"/CN={service}", ["extendedKeyUsage=serverAuth", adapter_sans]
    )
    return Pki(ca, apiserver, admin, developer, sa_key, sa_pub, proxy_ca, proxy_client, adapter)


def load_pki(d: Path) -> Pki:
    """The PKI of an existing state dir (paths only)."""

    def pair(n: str) -> CertPair:
        return CertPair(d / f"{n}.crt", d / f"{n}.key")

    return Pki(
        pair("ca"),
        pair("apiserver"),
        pair("admin"),
        pair("developer"),
        d / "sa.key",
        d / "sa.pub",
        pair("front-proxy-ca"),
        pair("front-proxy-client"),
        pair("adapter"),
    )
