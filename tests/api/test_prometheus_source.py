"""The Prometheus source against a mock Prometheus: retries, NaN, empty answers, stale
samples, and error answers whose bytes must never reach the sample's message."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import kmock
import pytest
from kmock import Response

from servingopt.metrics.prometheus import PrometheusClient
from servingopt.metrics.promql import PRESETS
from servingopt.metrics.source import (
    NO_DATA,
    NOT_A_NUMBER,
    STALE,
    UNREACHABLE,
    PrometheusSource,
    SampleRequest,
)

pytestmark = pytest.mark.kmock(cls=kmock.RawHandler)

REQUEST = SampleRequest("generic", {"namespace": "ml", "deployment": "d"}, 60)
NOW = 1_800_000_000.0
SECRET = "s3cr3t-TOKEN-do-not-echo"


def vector(value: str, at: float = NOW) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [at, value]}]},
    }


def matrix(value: str, end: float = NOW) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {}, "values": [[end - 60, value], [end, value]]}],
        },
    }


EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


def is_freshness(request: kmock.Request) -> bool:
    return str(request.params["query"]).startswith("max(timestamp(")


def instant(value: str, newest: float = NOW - 1, at: float = NOW) -> Callable[..., Any]:
    """Every question answers ``value``; the freshness query the newest sample's time."""

    def answer(request: kmock.Request) -> dict[str, Any]:
        return vector(f"{newest}" if is_freshness(request) else value, at)

    return answer


@pytest.fixture
async def clients() -> AsyncIterator[list[PrometheusClient]]:
    made: list[PrometheusClient] = []
    yield made
    for client in made:
        await client.close()


@pytest.fixture
def source(clients: list[PrometheusClient]) -> Callable[..., PrometheusSource]:
    def make(server: kmock.RawHandler, url: str = "", **kwargs: Any) -> PrometheusSource:
        kwargs.setdefault("backoffs", (0.01, 0.01))
        max_age = kwargs.pop("max_age", 180.0)
        client = PrometheusClient(url or str(server.url), **kwargs)
        clients.append(client)
        return PrometheusSource(client, clock=lambda: NOW, max_age=max_age)

    return make


async def test_a_healthy_answer(kmock: kmock.RawHandler, source: Any) -> None:
    kmock["get /api/v1/query"] << instant("250")
    kmock["get /api/v1/query_range"] << matrix("250")
    got = await source(kmock).sample(REQUEST)
    assert got.available and got.request_rate == 250.0
    # The series began within the range: its first window-long stretch is left out.
    assert got.demand_history == ((NOW, 250.0),)
    query = kmock["get /api/v1/query"][0].params["query"]
    assert 'namespace="ml"' in query and "[60s]" in query


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (NOW - 180, [250.0, 250.0, 250.0]),  # began within the range: first window dropped
        (NOW - 49 * 3600, [40.0, 250.0, 250.0, 250.0]),  # older than the range: all kept
    ],
)
async def test_a_new_series_loses_its_partial_first_window_only(
    kmock: kmock.RawHandler, source: Any, first: float, expected: list[float]
) -> None:
    """Where a series begins, a rate covers part of its window and reads low."""
    kmock["get /api/v1/query"] << instant("250")
    times = [first, NOW - 120, NOW - 60, NOW]
    values = [[t, v] for t, v in zip(times, ("40", "250", "250", "250"), strict=True)]
    kmock["get /api/v1/query_range"] << {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
    }
    got = await source(kmock).sample(REQUEST)
    assert [v for _, v in got.demand_history] == expected


async def test_server_errors_are_retried(kmock: kmock.RawHandler, source: Any) -> None:
    kmock["get /api/v1/query"][:1] << 503 << b"busy"
    kmock["get /api/v1/query"] << instant("250")
    kmock["get /api/v1/query_range"] << matrix("250")
    got = await source(kmock).sample(REQUEST)
    assert got.available


async def test_prometheus_down_is_a_reason(kmock: kmock.RawHandler, source: Any) -> None:
    down = kmock["get /api/v1/query"] << 503 << b"down"
    kmock["get /api/v1/query_range"] << 503 << b"down"
    got = await source(kmock).sample(REQUEST)
    assert not got.available and got.reason == UNREACHABLE and got.request_rate is None
    assert "HTTP 503" in got.message
    assert len(down) >= 3  # first tries and the retries


async def test_empty_answers_are_no_data(kmock: kmock.RawHandler, source: Any) -> None:
    kmock["get /api/v1/query"] << EMPTY
    kmock["get /api/v1/query_range"] << EMPTY
    got = await source(kmock).sample(REQUEST)
    assert not got.available and got.reason == NO_DATA


async def test_nan_is_not_a_number(kmock: kmock.RawHandler, source: Any) -> None:
    kmock["get /api/v1/query"] << instant("NaN")
    kmock["get /api/v1/query_range"] << matrix("NaN")
    got = await source(kmock).sample(REQUEST)
    assert not got.available and got.reason == NOT_A_NUMBER
    assert got.demand_history == ()


async def test_a_refused_query_is_not_retried(kmock: kmock.RawHandler, source: Any) -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
    refused = kmock["get /api/v1/query"] << 400 << body
    kmock["get /api/v1/query_range"] << 400 << body
    got = await source(kmock).sample(REQUEST)
    assert got.reason == UNREACHABLE
    assert "HTTP 400, errorType bad_data" in got.message
    assert "parse error" not in got.message  # Prometheus' own text is not repeated
    assert len(refused) <= 7  # each instant query (six questions, freshness) at most once


# Stale samples.


async def test_an_answer_for_another_time_is_stale(kmock: kmock.RawHandler, source: Any) -> None:
    """A lagging proxy or remote store evaluates at a time other than the one asked."""
    kmock["get /api/v1/query"] << instant("250", newest=NOW - 3601, at=NOW - 3600)
    kmock["get /api/v1/query_range"] << matrix("250", end=NOW - 3600)
    got = await source(kmock).sample(REQUEST)
    assert not got.available and got.reason == STALE
    assert "3600 s" in got.message and "180 s" in got.message


async def test_a_range_answer_outside_the_range_is_stale(
    kmock: kmock.RawHandler, source: Any
) -> None:
    kmock["get /api/v1/query"] << instant("250")
    kmock["get /api/v1/query_range"] << matrix("250", end=NOW + 900)
    got = await source(kmock).sample(REQUEST)
    assert got.reason == STALE and "900 s" in got.message


async def test_an_old_newest_sample_is_stale(kmock: kmock.RawHandler, source: Any) -> None:
    """Prometheus stopped scraping: the counter's newest sample is ten minutes old."""
    kmock["get /api/v1/query"] << instant("250", newest=NOW - 600)
    kmock["get /api/v1/query_range"] << matrix("250")
    got = await source(kmock).sample(REQUEST)
    assert not got.available and got.reason == STALE
    assert "600 s old" in got.message and "180 s" in got.message
    freshness = [r for r in kmock["get /api/v1/query"] if is_freshness(r)]
    assert len(freshness) == 1
    assert freshness[0].params["query"] == (
        'max(timestamp(serving_requests_total{deployment="d",namespace="ml"})) or vector(0)'
    )


async def test_the_bound_is_configurable(kmock: kmock.RawHandler, source: Any) -> None:
    kmock["get /api/v1/query"] << instant("250", newest=NOW - 600)
    kmock["get /api/v1/query_range"] << matrix("250")
    assert (await source(kmock, max_age=900.0).sample(REQUEST)).available
    assert (await source(kmock, max_age=60.0).sample(REQUEST)).reason == STALE


async def test_a_time_shifting_proxy_is_stale_even_without_data(
    kmock: kmock.RawHandler, source: Any
) -> None:
    """The freshness query always answers (``or vector(0)``), so its evaluation time
    gives a proxy away even when every other question finds nothing at that time."""
    shifted = NOW - 3600
    kmock["get /api/v1/query"] << (lambda r: vector("0", shifted) if is_freshness(r) else EMPTY)
    kmock["get /api/v1/query_range"] << EMPTY
    got = await source(kmock).sample(REQUEST)
    assert got.reason == STALE and "3600 s" in got.message


async def test_no_raw_sample_in_the_lookback_is_no_data(
    kmock: kmock.RawHandler, source: Any
) -> None:
    kmock["get /api/v1/query"] << (lambda r: vector("0") if is_freshness(r) else EMPTY)
    kmock["get /api/v1/query_range"] << EMPTY
    assert (await source(kmock).sample(REQUEST)).reason == NO_DATA


async def test_no_freshness_answer_leaves_the_decision_to_the_rate(
    kmock: kmock.RawHandler, source: Any
) -> None:
    kmock["get /api/v1/query"] << (lambda r: EMPTY if is_freshness(r) else vector("250"))
    kmock["get /api/v1/query_range"] << matrix("250")
    assert (await source(kmock).sample(REQUEST)).available


def test_every_preset_has_a_freshness_query() -> None:
    for preset in PRESETS.values():
        query = preset.freshness_query({"namespace": 'a"b'})
        assert query.startswith("max(timestamp(") and 'namespace="a\\"b"' in query
        # The raw counter is one the preset's own queries read.
        assert preset.counter in preset.queries({"namespace": "x"}, 60)["request_rate"]


# Nothing of an answer reaches the message.

HTML = b"<html><body><h1>Login</h1><p>" + SECRET.encode() + b"</p></body></html>"
ERRORS: dict[str, tuple[int, Any]] = {
    "json 400": (400, {"status": "error", "errorType": SECRET, "error": SECRET}),
    "json 422": (422, {"status": "error", "errorType": "execution", "error": SECRET}),
    "json 503": (503, {"status": "error", "errorType": SECRET, "error": SECRET}),
    "html 400": (400, HTML),
    "html 200": (200, HTML),
    "html 500": (500, HTML),
    "200 not success": (200, {"status": SECRET, "error": SECRET, "data": SECRET}),
    "200 odd type": (200, {"status": "success", "data": {"resultType": SECRET, "result": 1}}),
    "200 bad value": (200, vector(SECRET)),
    "200 list": (200, [SECRET]),
    "200 deep": (200, b"[" * 100_000),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
async def test_no_byte_of_an_error_answer_is_echoed(
    kmock: kmock.RawHandler, source: Any, case: str
) -> None:
    status, body = ERRORS[case]
    kmock["get /api/v1/query"] << status << body
    kmock["get /api/v1/query_range"] << status << body
    got = await source(kmock).sample(REQUEST)
    assert got.reason == UNREACHABLE and not got.available
    assert SECRET not in got.message and "<html" not in got.message
    if case == "json 422":
        assert "HTTP 422, errorType execution" in got.message


async def test_a_redirect_is_not_followed(kmock: kmock.RawHandler, source: Any) -> None:
    redirect = Response(status=302, reason=SECRET, headers={"Location": f"/elsewhere?{SECRET}"})
    kmock["get /api/v1/query"] << redirect
    kmock["get /api/v1/query_range"] << redirect
    elsewhere = kmock["get /elsewhere"] << instant("250")
    got = await source(kmock).sample(REQUEST)
    assert got.reason == UNREACHABLE and "HTTP 302" in got.message
    assert SECRET not in got.message and len(elsewhere) == 0


async def test_the_url_userinfo_and_query_are_not_echoed(
    kmock: kmock.RawHandler, source: Any
) -> None:
    kmock["get /api/v1/query"] << 503
    kmock["get /api/v1/query_range"] << 503
    port = kmock.url.port
    url = f"http://admin:{SECRET}@127.0.0.1:{port}/?token={SECRET}#{SECRET}"
    got = await source(kmock, url=url).sample(REQUEST)
    assert got.reason == UNREACHABLE and SECRET not in got.message
    assert f"127.0.0.1:{port}" in got.message


async def test_an_unreachable_server_says_so_in_our_words(source: Any) -> None:
    got = await source(None, url="http://127.0.0.1:9").sample(REQUEST)
    assert got.reason == UNREACHABLE and "cannot connect" in got.message


async def test_an_answer_with_too_many_series_is_refused(
    kmock: kmock.RawHandler, source: Any
) -> None:
    many = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"pod": f"p{i}"}, "value": [NOW, "1"]} for i in range(101)],
        },
    }
    kmock["get /api/v1/query"] << many
    kmock["get /api/v1/query_range"] << matrix("250")
    got = await source(kmock).sample(REQUEST)
    assert got.reason == UNREACHABLE and "more than 100 series" in got.message


async def test_an_instant_matrix_without_points_is_no_data(
    kmock: kmock.RawHandler, source: Any
) -> None:
    empty_series = {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": []}]},
    }
    kmock["get /api/v1/query"] << empty_series
    kmock["get /api/v1/query_range"] << empty_series
    got = await source(kmock).sample(REQUEST)  # a sample, not an exception
    assert got.reason in (NOT_A_NUMBER, NO_DATA) and not got.available
