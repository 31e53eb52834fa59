"""The Prometheus source against a mock Prometheus: retries, NaN, empty answers."""

from __future__ import annotations

from typing import Any

import kmock
import pytest

from servingopt.metrics.prometheus import PrometheusClient
from servingopt.metrics.source import (
    NO_DATA,
    NOT_A_NUMBER,
    UNREACHABLE,
    PrometheusSource,
    SampleRequest,
)

pytestmark = pytest.mark.kmock(cls=kmock.RawHandler)

REQUEST = SampleRequest("generic", {"namespace": "ml", "deployment": "d"}, 60)
NOW = 1_800_000_000.0


def vector(value: str) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [NOW, value]}]},
    }


def matrix(value: str) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {}, "values": [[NOW - 60, value], [NOW, value]]}],
        },
    }


EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


def source(server: kmock.RawHandler, **kwargs: Any) -> PrometheusSource:
    kwargs.setdefault("backoffs", (0.01, 0.01))
    return PrometheusSource(PrometheusClient(str(server.url), **kwargs), clock=lambda: NOW)


async def test_a_healthy_answer(kmock: kmock.RawHandler) -> None:
    kmock["get /api/v1/query"] << vector("250")
    kmock["get /api/v1/query_range"] << matrix("250")
    got = await source(kmock).sample(REQUEST)
    assert got.available and got.request_rate == 250.0
    assert got.demand_history == ((NOW - 60, 250.0), (NOW, 250.0))
    query = kmock["get /api/v1/query"][0].params["query"]
    assert 'namespace="ml"' in query and "[60s]" in query


async def test_server_errors_are_retried(kmock: kmock.RawHandler) -> None:
    kmock["get /api/v1/query"][:1] << 503 << b"busy"
    kmock["get /api/v1/query"] << vector("250")
    kmock["get /api/v1/query_range"] << matrix("250")
    got = await source(kmock).sample(REQUEST)
    assert got.available


async def test_prometheus_down_is_a_reason(kmock: kmock.RawHandler) -> None:
    down = kmock["get /api/v1/query"] << 503 << b"down"
    got = await source(kmock).sample(REQUEST)
    assert not got.available and got.reason == UNREACHABLE and got.request_rate is None
    assert len(down) >= 3  # first tries and the retries


async def test_empty_answers_are_no_data(kmock: kmock.RawHandler) -> None:
    kmock["get /api/v1/query"] << EMPTY
    kmock["get /api/v1/query_range"] << EMPTY
    got = await source(kmock).sample(REQUEST)
    assert not got.available and got.reason == NO_DATA


async def test_nan_is_not_a_number(kmock: kmock.RawHandler) -> None:
    kmock["get /api/v1/query"] << vector("NaN")
    kmock["get /api/v1/query_range"] << matrix("NaN")
    got = await source(kmock).sample(REQUEST)
    assert not got.available and got.reason == NOT_A_NUMBER
    assert got.demand_history == ()


async def test_a_refused_query_is_not_retried(kmock: kmock.RawHandler) -> None:
    refused = kmock["get /api/v1/query"] << 400 << {"status": "error", "error": "parse error"}
    got = await source(kmock).sample(REQUEST)
    assert got.reason == UNREACHABLE and "parse error" in got.message
    assert len(refused) == 6  # each preset question once, no retries
