"""Expiring credentials against a mock API server (kmock): a rotated token file or exec
plugin is read again after a 401, once per request and a few times a minute at most;
credentials the server keeps refusing end in ApiError 401, never in a loop."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml

from servingopt.kube import paths
from servingopt.kube.client import ApiError, Credentials, KubeClient

pytestmark = pytest.mark.kmock(cls=kmock.KubernetesScaffold)

NODE = paths.node("n1")
UNAUTHORIZED = {"kind": "Status", "code": 401, "reason": "Unauthorized", "message": "Unauthorized"}


def kubeconfig(path: Path, server: str, user: dict[str, Any]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mock", "cluster": {"server": server}}],
        "users": [{"name": "operator", "user": user}],
        "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "operator"}}],
        "current-context": "mock",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def accept_only(server: kmock.RawHandler, token: str) -> tuple[Any, Any]:
    """The node answers requests bearing ``token``; every other request gets 401."""
    accepted = server[f"get {NODE}"][kmock.headers({"Authorization": f"Bearer {token}"})] << {
        "metadata": {"name": "n1"}
    }
    refused = server[f"get {NODE}"] << 401 << UNAUTHORIZED
    return accepted, refused


def client_with_token_file(server: kmock.RawHandler, tmp_path: Path, **kwargs: Any) -> KubeClient:
    token = tmp_path / "token"
    token.write_text("old")
    config = kubeconfig(tmp_path / "config", str(server.url), {"tokenFile": str(token)})
    return KubeClient(Credentials.load(str(config)), backoffs=(), **kwargs)


async def test_a_rotated_token_file_is_read_once_and_used(
    kmock: kmock.RawHandler, tmp_path: Path
) -> None:
    accepted, refused = accept_only(kmock, "new")
    async with client_with_token_file(kmock, tmp_path) as kube:
        assert kube.credentials.headers["Authorization"] == "Bearer old"
        # The server stops accepting the old token; the file holds the new one (with the
        # newline many writers leave). Five requests in flight at once: one reading.
        (tmp_path / "token").write_text("new\n")
        results = await asyncio.gather(*(kube.get(NODE) for _ in range(5)))
        assert all(r == {"metadata": {"name": "n1"}} for r in results)
        assert kube.renewals == 1
        assert len(refused) == 5 and len(accepted) == 5
        assert {r.headers["Authorization"] for r in refused} == {"Bearer old"}
        # Later requests go with the new token straight away.
        await kube.get(NODE)
    assert len(refused) == 5 and len(accepted) == 6


async def test_a_revoked_token_ends_in_401_not_a_loop(
    kmock: kmock.RawHandler, tmp_path: Path
) -> None:
    refused = kmock[f"get {NODE}"] << 401 << UNAUTHORIZED
    async with client_with_token_file(kmock, tmp_path, renew_interval=0.3) as kube:
        with pytest.raises(ApiError) as error:
            await kube.get(NODE)
        assert error.value.status == 401
        assert (len(refused), kube.renewals) == (1, 1)  # read again: unchanged, no retry
        # A new token the server refuses too: one retry with it, then the 401.
        (tmp_path / "token").write_text("newer")
        await asyncio.sleep(0.35)
        with pytest.raises(ApiError):
            await kube.get(NODE)
        assert (len(refused), kube.renewals) == (3, 2)
        # A burst inside the renew interval: one request each, no reading.
        outcomes = await asyncio.gather(
            *(kube.get(NODE) for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(o, ApiError) and o.status == 401 for o in outcomes)
        assert (len(refused), kube.renewals) == (23, 2)
        # Over time: at most one reading (and one extra request) per interval.
        started = time.monotonic()
        calls = 0
        while time.monotonic() - started < 1.0:
            calls += 1
            with pytest.raises(ApiError):
                await kube.get(NODE)
            await asyncio.sleep(0.02)
        assert 2 + 2 <= kube.renewals <= 2 + 4  # one per 0.3 s at most
        assert len(refused) == 23 + calls  # the same token read again: no retry


async def test_an_exec_plugin_runs_again_after_a_401(
    kmock: kmock.RawHandler, tmp_path: Path
) -> None:
    accepted, refused = accept_only(kmock, "from-exec-2")
    source = tmp_path / "exec-token"
    source.write_text("from-exec-1")
    plugin = tmp_path / "plugin.py"
    credential = {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential"}
    plugin.write_text(
        "import json, pathlib\n"
        f"doc = {json.dumps(credential)}\n"
        f"doc['status'] = {{'token': pathlib.Path({str(source)!r}).read_text()}}\n"
        "print(json.dumps(doc))\n"
    )
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin)],
            "interactiveMode": "Never",
        }
    }
    config = kubeconfig(tmp_path / "config", str(kmock.url), user)
    async with KubeClient(Credentials.load(str(config)), backoffs=()) as kube:
        source.write_text("from-exec-2")
        assert await kube.get(NODE) == {"metadata": {"name": "n1"}}
        assert kube.renewals == 1
    assert (len(refused), len(accepted)) == (1, 1)


async def test_fixed_credentials_are_not_read_again(kmock: kmock.RawHandler) -> None:
    refused = kmock[f"get {NODE}"] << 401 << UNAUTHORIZED
    async with KubeClient.for_url(str(kmock.url), backoffs=()) as kube:
        with pytest.raises(ApiError):
            await kube.get(NODE)
        assert kube.renewals == 0
    assert len(refused) == 1


async def test_other_errors_do_not_read_the_credentials(
    kmock: kmock.RawHandler, tmp_path: Path
) -> None:
    kmock[f"get {NODE}"] << 403 << {"kind": "Status", "reason": "Forbidden"}
    async with client_with_token_file(kmock, tmp_path) as kube:
        (tmp_path / "token").write_text("new")
        with pytest.raises(ApiError) as error:
            await kube.get(NODE)
        assert error.value.status == 403 and kube.renewals == 0
        assert kube.credentials.headers["Authorization"] == "Bearer old"


async def test_kopf_login_reads_token_file_and_context(tmp_path: Path) -> None:
    """kopf's login handler: ``tokenFile`` and ``--context`` honoured, the file read again
    at each login; unchanged refused credentials are waited for, then handed back."""
    import kopf

    from servingopt.controller import handlers
    from servingopt.controller.settings import Options

    token = tmp_path / "token"
    token.write_text("first\n")
    config = kubeconfig(tmp_path / "config", "https://127.0.0.1:1", {"tokenFile": str(token)})
    doc = yaml.safe_load(config.read_text())
    doc["clusters"].append({"name": "other", "cluster": {"server": "https://10.0.0.1:6443"}})
    doc["contexts"].append({"name": "other", "context": {"cluster": "other", "user": "operator"}})
    config.write_text(yaml.safe_dump(doc))
    memo = kopf.Memo(options=Options(kubeconfig=str(config), context="other"))
    settings = kopf.OperatorSettings()

    info = await handlers.login(memo=memo, retry=0, settings=settings)
    assert (info.server, info.scheme, info.token) == ("https://10.0.0.1:6443", "Bearer", "first")
    # kopf logs in again after a 401: the file has not been rewritten yet.
    with pytest.raises(kopf.TemporaryError):
        await handlers.login(memo=memo, retry=0, settings=settings)
    token.write_text("second")
    info = await handlers.login(memo=memo, retry=1, settings=settings)
    assert info.token == "second"
    # Never rewritten: after the bounded wait the same credentials go back to kopf.
    info = await handlers.login(memo=memo, retry=handlers.LOGIN_WAIT_TRIES, settings=settings)
    assert info.token == "second"
