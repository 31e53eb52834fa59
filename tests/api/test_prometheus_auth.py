"""Credentials for the operator's own Prometheus: sent to its origin only, a rotated
token used at once, bad settings refused before anything is sent (kmock; the real
Prometheus with TLS and basic auth is in tests/integration/test_prometheus_auth.py)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kmock
import pytest

from servingopt.metrics.auth import PrometheusAuth
from servingopt.metrics.pool import PrometheusPool
from servingopt.metrics.prometheus import PrometheusClient, PrometheusError

pytestmark = pytest.mark.kmock(cls=kmock.RawHandler)

ANSWER = {"status": "success", "data": {"resultType": "vector", "result": []}}


def seen_headers(server: kmock.RawHandler) -> list[dict[str, str]]:
    return [dict(r.headers) for r in server["get /api/v1/query"]]


async def query(url: str, auth: PrometheusAuth | None) -> None:
    async with PrometheusClient(url, auth=auth, backoffs=()) as client:
        await client.query("vector(1)")


async def test_the_own_prometheus_gets_the_token_and_a_rotated_one_at_once(
    kmock: kmock.RawHandler, tmp_path: Path
) -> None:
    kmock["get /api/v1/query"] << ANSWER
    token = tmp_path / "token"
    token.write_text("first-token\n")
    url = str(kmock.url)
    auth = PrometheusAuth(url, bearer_token_file=str(token), headers={"X-Scope-OrgID": "ml"})
    await query(url + "/", auth)
    token.write_text("second-token\n")
    await query(url, auth)
    got = seen_headers(kmock)
    assert [h.get("Authorization") for h in got] == ["Bearer first-token", "Bearer second-token"]
    assert {h.get("X-Scope-OrgID") for h in got} == {"ml"}


async def test_another_prometheus_gets_no_credentials(
    kmock: kmock.RawHandler, tmp_path: Path
) -> None:
    """A URL a tenant's ModelServing names (allowed by a policy or not) is another
    origin: no token, no header, even through the shared pool."""
    kmock["get /api/v1/query"] << ANSWER
    token = tmp_path / "token"
    token.write_text("operator-secret")
    own = f"http://{kmock.url.host}:{kmock.url.port + 1}"  # another port: another origin
    auth = PrometheusAuth(own, bearer_token_file=str(token), headers={"X-Scope-OrgID": "ml"})
    pool = PrometheusPool(auth=auth)
    try:
        source = pool.source_for(str(kmock.url))
        await source.client.query("vector(1)")
    finally:
        await pool.close()
    (headers,) = seen_headers(kmock)
    assert "Authorization" not in headers and "X-Scope-OrgID" not in headers
    assert "operator-secret" not in str(headers)


async def test_basic_auth(kmock: kmock.RawHandler, tmp_path: Path) -> None:
    kmock["get /api/v1/query"] << ANSWER
    password = tmp_path / "password"
    password.write_text("p4ss")
    url = str(kmock.url)
    await query(url, PrometheusAuth(url, username="ops", password_file=str(password)))
    (headers,) = seen_headers(kmock)
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"ops:p4ss").decode()


async def test_an_unreadable_token_is_an_error_naming_the_file_not_its_content(
    kmock: kmock.RawHandler, tmp_path: Path
) -> None:
    kmock["get /api/v1/query"] << ANSWER
    token = tmp_path / "token"
    token.write_text("two\nlines")
    url = str(kmock.url)
    with pytest.raises(PrometheusError) as error:
        await query(url, PrometheusAuth(url, bearer_token_file=str(token)))
    assert str(token) in str(error.value) and "two" not in str(error.value)
    assert seen_headers(kmock) == []


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"bearer_token_file": "T", "username": "u", "password_file": "T"}, "exclude"),
        ({"username": "u"}, "needs both"),
        ({"headers": {"Authorization": "x"}}, "not a header"),
        ({"bearer_token_file": "/nonexistent/token"}, "no such file"),
        ({"ca_file": "T", "insecure_skip_verify": True}, "exclude"),
    ],
)
def test_bad_settings_are_named(settings: dict[str, Any], problem: str, tmp_path: Path) -> None:
    token = tmp_path / "T"
    token.write_text("t")
    resolved = {k: str(token) if v == "T" else v for k, v in settings.items()}
    problems = PrometheusAuth("http://prometheus:9090", **resolved).problems()
    assert any(problem in p for p in problems), problems
