"""The operator's Prometheus client against a real Prometheus that requires TLS (a
private CA) and basic auth (its --web.config.file): with the credentials the query is
answered; without them, or with a wrong password, Prometheus refuses and the error says
so without the secret; an untrusted certificate is refused unless verification is off."""

from __future__ import annotations

import crypt  # bcrypt ($2b$) through libxcrypt: the hash Prometheus' web config wants
import shutil
import ssl
import subprocess
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from servingopt.devcluster import pki
from servingopt.devcluster.process import free_ports
from servingopt.metrics.auth import PrometheusAuth
from servingopt.metrics.prometheus import PrometheusClient, PrometheusError

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """(https URL, CA file, password file) of a Prometheus behind TLS and basic auth."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: `make system-deps` installs it")
    d = tmp_path_factory.mktemp("secured-prometheus")
    ca = pki.make_ca(d)
    server = pki.sign(d, ca, "server", "/CN=127.0.0.1", ["subjectAltName=IP:127.0.0.1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH))
    (d / "web.yml").write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": str(server.cert), "key_file": str(server.key)},
                "basic_auth_users": {"ops": hashed},
            }
        )
    )
    (d / "prometheus.yml").write_text(yaml.safe_dump({"global": {"scrape_interval": "15s"}}))
    (d / "password").write_text(PASSWORD + "\n")
    (port,) = free_ports(1)
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={d / 'prometheus.yml'}",
            f"--web.config.file={d / 'web.yml'}",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(d / "prometheus.log").open("wb"),
    )
    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(ca.cert))
    deadline = time.monotonic() + 30
    while True:  # /-/ready answers 401 once TLS is up: up enough
        try:
            urllib.request.urlopen(f"{url}/-/ready", context=context, timeout=2)
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail((d / "prometheus.log").read_text()[-2000:])
            time.sleep(0.2)
    try:
        yield url, ca.cert, d / "password"
    finally:
        proc.terminate()
        proc.wait(10)


async def answer(url: str, auth: PrometheusAuth | None) -> float:
    async with PrometheusClient(url, auth=auth, backoffs=()) as client:
        (series,) = await client.query("vector(42)")
        return series.last


async def test_tls_and_basic_auth_are_answered(secured: tuple[str, Path, Path]) -> None:
    url, ca, password = secured
    auth = PrometheusAuth(url, username="ops", password_file=str(password), ca_file=str(ca))
    assert auth.problems() == []
    assert await answer(url, auth) == 42.0


async def test_without_credentials_or_with_a_wrong_password_prometheus_refuses(
    secured: tuple[str, Path, Path], tmp_path: Path
) -> None:
    url, ca, _ = secured
    with pytest.raises(PrometheusError, match="401"):
        await answer(url, PrometheusAuth(url, ca_file=str(ca)))
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    with pytest.raises(PrometheusError, match="401") as error:
        await answer(
            url, PrometheusAuth(url, username="ops", password_file=str(wrong), ca_file=str(ca))
        )
    assert "not-the-password" not in str(error.value)


async def test_an_untrusted_certificate_is_refused_unless_verification_is_off(
    secured: tuple[str, Path, Path],
) -> None:
    url, _, password = secured
    with pytest.raises(PrometheusError, match="TLS certificate not trusted"):
        await answer(url, PrometheusAuth(url, username="ops", password_file=str(password)))
    insecure = PrometheusAuth(
        url, username="ops", password_file=str(password), insecure_skip_verify=True
    )
    assert await answer(url, insecure) == 42.0
