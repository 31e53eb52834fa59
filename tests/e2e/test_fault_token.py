"""An expired bearer token on the real control plane: the operator runs as a service
account through a kubeconfig with ``tokenFile:``; its token is invalidated (the Secret it
is bound to is deleted). With a new token written to the file, servingopt's client and
kopf read it again after their 401s and the operator goes on reconciling; with none, the
operator ends with an error. Either way the 401s in its log stay few (no loop)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import Exporter, Operator, PrometheusProxy, modelserving, shipped_rbac, workload

from servingopt.devcluster import DevCluster, Kubectl, wait_until

DEPLOY = "resnet50-classifier"
SA = "servingopt"
UNAUTHORIZED = "401 Unauthorized"
RENEWED = "refused the credentials (401"  # servingopt's client, once per reading
RELOGIN = "Re-authentication has been initiated"  # kopf, once per login after a 401


def kubeconfig(admin: Path, user: dict[str, Any], target: Path) -> Path:
    cluster = yaml.safe_load(admin.read_text())["clusters"][0]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": SA, "user": user}],
        "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": SA}}],
        "current-context": "sa",
    }
    target.write_text(yaml.safe_dump(doc))
    return target


def bound_token(kubectl: Kubectl, secret: str) -> str:
    """A TokenRequest token that is valid while the Secret ``secret`` exists."""
    kubectl.run("create", "secret", "generic", secret)
    args = ("create", "token", SA, "--bound-object-kind=Secret", f"--bound-object-name={secret}")
    return kubectl.run(*args, "--duration=1h").stdout.strip()


def refused(kubectl: Kubectl, config: Path) -> bool:
    """Whether the API server answers 401 to the credentials of ``config``."""
    probe = dataclasses.replace(kubectl, kubeconfig=config, namespace=None)
    proc = probe.run("get", "--raw", "/api", check=False)
    return proc.returncode != 0 and "Unauthorized" in proc.stderr


def lines(log: Path, text: str) -> list[str]:
    """Log records (not kopf's DEBUG dumps of whole objects) that contain ``text``."""
    return [
        line
        for line in log.read_text(errors="replace").splitlines()
        if text in line and "[DEBUG" not in line
    ]


def count(log: Path, text: str) -> int:
    return len(lines(log, text))


def reconciled(kubectl: Kubectl) -> bool:
    ms = kubectl.json("get", "modelserving", DEPLOY)
    status = ms.get("status") or {}
    ready = {c["type"]: c for c in status.get("conditions") or []}.get("Ready") or {}
    return (
        status.get("observedGeneration") == ms["metadata"]["generation"]
        and ready.get("status") == "True"
    )


@dataclass
class Setup:
    operator: Operator
    log: Path
    token_file: Path
    old_token: Path  # a kubeconfig with the first token inline, to see when it is refused


@pytest.fixture
def as_service_account(
    kubectl: Kubectl,
    admin_kubectl: Kubectl,
    dev_cluster: DevCluster,
    namespace: str,
    policy: str,
    exporter: Exporter,
    proxy: PrometheusProxy,
    tmp_path: Path,
) -> Iterator[Setup]:
    """The operator with the shipped ClusterRole, through a kubeconfig with ``tokenFile``
    holding a token bound to the Secret ``token-a``; the sample reconciled once."""
    kubectl.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA}})
    admin_kubectl.apply(shipped_rbac(namespace))
    token_file = tmp_path / "token"
    token_file.write_text(bound_token(kubectl, "token-a"))
    config = kubeconfig(dev_cluster.kubeconfig, {"tokenFile": str(token_file)}, tmp_path / "sa")
    old_token = kubeconfig(
        dev_cluster.kubeconfig, {"token": token_file.read_text()}, tmp_path / "a"
    )
    log = tmp_path / "operator.log"
    operator = Operator(config, proxy.url, log, namespaces=(namespace,))
    operator.start()
    try:
        kubectl.apply(workload())
        kubectl.apply(modelserving(policy))
        wait_until(lambda: reconciled(kubectl), 120, "the first reconcile as the service account")
        assert count(log, UNAUTHORIZED) == 0
        yield Setup(operator, log, token_file, old_token)
    finally:
        operator.stop()
        print(operator.log_tail(80))
        admin_kubectl.run("delete", "clusterrolebinding", f"servingopt-{namespace}", check=False)


def invalidate(kubectl: Kubectl, setup: Setup) -> None:
    """Delete the Secret the token is bound to; wait until the API server refuses it
    (it caches good tokens for up to 10 s); then edit the spec, so that servingopt's
    client and kopf both have requests to send."""
    kubectl.run("delete", "secret", "token-a")
    invalid_at = time.monotonic()
    wait_until(lambda: refused(kubectl, setup.old_token), 30, "the old token to be refused")
    print(f"old token refused {time.monotonic() - invalid_at:.1f} s after the delete")
    edit_slo(kubectl, 45)
    wait_until(lambda: count(setup.log, UNAUTHORIZED) > 0, 30, "the operator to meet a 401")


def edit_slo(kubectl: Kubectl, ms: int) -> None:
    patch = f'{{"spec":{{"slo":{{"latencyP99Ms":{ms}}}}}}}'
    kubectl.run("patch", "modelserving", DEPLOY, "--type=merge", "-p", patch)


def test_a_rotated_token_file_keeps_the_operator_working(
    kubectl: Kubectl, as_service_account: Setup
) -> None:
    setup, log = as_service_account, as_service_account.log
    invalidate(kubectl, setup)
    time.sleep(3)  # the file is not rewritten yet: both clients hold back
    assert not reconciled(kubectl)

    setup.token_file.write_text(bound_token(kubectl, "token-b"))
    written = time.monotonic()
    wait_until(lambda: reconciled(kubectl), 60, "a reconcile with the new token")
    recovered = time.monotonic() - written
    edit_slo(kubectl, 42)  # one more edit, after the switch, goes through at once
    wait_until(lambda: reconciled(kubectl), 30, "the edit after the switch")
    seen = (count(log, UNAUTHORIZED), count(log, RENEWED), count(log, RELOGIN))
    time.sleep(5)  # settled: no further 401s
    assert (count(log, UNAUTHORIZED), count(log, RENEWED), count(log, RELOGIN)) == seen
    print(
        f"recovered {recovered:.1f} s after the new token was written; 401 lines {seen[0]}, "
        f"servingopt readings {seen[1]}, kopf re-logins {seen[2]}"
    )
    print("\n".join(line[:200] for line in lines(log, UNAUTHORIZED)))
    assert 1 <= seen[1] <= 4  # servingopt's client read the file again
    assert 1 <= seen[2] <= 3  # kopf logged in again (its own requests met a 401 too)
    assert seen[0] <= 20
    assert setup.operator.proc is not None and setup.operator.proc.poll() is None
    assert "Ran out of valid credentials" not in log.read_text()


def test_a_revoked_token_ends_the_operator_not_in_a_loop(
    kubectl: Kubectl, as_service_account: Setup
) -> None:
    """No new token ever comes: kopf's login waits 30 s for one, then kopf gives up
    (LoginError) and the process exits non-zero; the pod would restart and show it."""
    setup = as_service_account
    proc = setup.operator.proc
    assert proc is not None
    invalidate(kubectl, setup)
    started = time.monotonic()
    wait_until(lambda: proc.poll() is not None, 90, "the operator to give up")
    ended = time.monotonic() - started
    refusals = count(setup.log, UNAUTHORIZED)
    print(f"exited {proc.returncode} {ended:.1f} s after the first 401; 401 lines {refusals}")
    assert proc.returncode != 0
    assert "Ran out of valid credentials" in setup.log.read_text()
    assert count(setup.log, RELOGIN) == 1  # one re-login, waiting for a new token
    assert refusals <= 20
    assert not reconciled(kubectl)
