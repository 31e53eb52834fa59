"""A small Prometheus HTTP API client (instant and range queries) on aiohttp.

Timeouts on every request, retries with exponential backoff on connection errors,
timeouts, 429 and 5xx; 4xx other than 429 is a bad query and is not retried.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp


class PrometheusError(RuntimeError):
    """Prometheus could not answer (unreachable, timed out, or refused the query)."""


@dataclass(frozen=True)
class Series:
    """One result series: its labels and its (unix seconds, value) samples."""

    labels: dict[str, str]
    samples: tuple[tuple[float, float], ...]

    @property
    def last(self) -> float:
        return self.samples[-1][1] if self.samples else math.nan


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class PrometheusClient:
    """Queries one Prometheus server. Use as an async context manager or call close()."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        backoffs: Sequence[float] = (0.2, 0.5, 1.0),
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.backoffs = tuple(backoffs)
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def query(self, promql: str, at: float | None = None) -> list[Series]:
        """An instant query. Scalars come back as one series without labels."""
        params = {"query": promql, "timeout": f"{self.timeout:g}s"}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return _parse(await self._get("/api/v1/query", params))

    async def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """A range query from ``start`` to ``end`` (unix seconds) every ``step`` seconds."""
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
            "timeout": f"{self.timeout:g}s",
        }
        return _parse(await self._get("/api/v1/query_range", params))

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        last_error = "no attempt"
        for attempt in range(len(self.backoffs) + 1):
            if attempt:
                await asyncio.sleep(self.backoffs[attempt - 1])
            try:
                async with self._client().get(
                    self.url + path,
                    params=params,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as resp:
                    if resp.status in RETRY_STATUSES:
                        last_error = f"HTTP {resp.status}"
                        continue
                    body = await resp.json(content_type=None)
                    if resp.status >= 400 or body.get("status") != "success":
                        raise PrometheusError(
                            f"query refused ({resp.status}): {body.get('error', body)}"
                        )
                    data: dict[str, Any] = body["data"]
                    return data
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                last_error = f"{type(error).__name__}: {error}"
        raise PrometheusError(f"{self.url}{path}: {last_error}")


def _value(raw: Sequence[Any]) -> tuple[float, float]:
    return float(raw[0]), float(raw[1])  # "NaN", "+Inf" parse as floats


def _parse(data: dict[str, Any]) -> list[Series]:
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        return [Series({}, (_value(result),))]  # type: ignore[arg-type]
    if kind == "vector":
        return [Series(dict(r.get("metric", {})), (_value(r["value"]),)) for r in result or []]
    if kind == "matrix":
        return [
            Series(dict(r.get("metric", {})), tuple(_value(v) for v in r["values"]))
            for r in result or []
        ]
    raise PrometheusError(f"unexpected result type {kind!r}")
