"""A small Prometheus HTTP API client (instant and range queries) on aiohttp.

Timeouts on every request, retries with exponential backoff on connection errors,
timeouts, 429 and 5xx; 4xx other than 429 is a bad query and is not retried.

The Prometheus URL may be chosen by a tenant, so an answer is untrusted input:

- it is read incrementally and abandoned past ``max_response_bytes`` (a declared
  ``Content-Length`` above the cap is refused before reading anything);
- redirects are not followed (they could lead past the URLs an admin allowed);
- no byte of an answer ever reaches a :class:`PrometheusError`'s text, which ends up in
  status conditions and Events. Errors say the HTTP status, Prometheus' ``errorType``
  when it is one of the documented values, and servingopt's own words. The URL is shown
  without userinfo, query or fragment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from .auth import AuthError, PrometheusAuth
from .limits import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT_SECONDS

# An error answer is read only this far, to find its errorType.
ERROR_BODY_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
# servingopt's queries aggregate to one series; more is a wrong or hostile answer, and
# each series costs far more memory as objects than as bytes.
MAX_SERIES = 100
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Prometheus' documented errorType values (web/api/v1); anything else is not repeated.
ERROR_TYPES = frozenset(
    {"bad_data", "execution", "canceled", "timeout", "internal", "unavailable", "not_found"}
)


class PrometheusError(RuntimeError):
    """Prometheus could not answer (unreachable, timed out, or refused the query).

    The text is servingopt's own words only, never bytes of the answer."""


class AnswerTooLarge(PrometheusError):
    """The answer is larger than the cap; the same query is not retried."""


@dataclass(frozen=True)
class Series:
    """One result series: its labels and its (unix seconds, value) samples."""

    labels: dict[str, str]
    samples: tuple[tuple[float, float], ...]

    @property
    def last(self) -> float:
        return self.samples[-1][1] if self.samples else math.nan


def redacted(url: str) -> str:
    """``url`` without userinfo, query and fragment: safe to show in a status."""
    try:
        parsed = URL(url)
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "the Prometheus URL"


class _Retry(Exception):
    """An answer worth another try (429, 5xx); the text is our own words."""


class PrometheusClient:
    """Queries one Prometheus server. Use as an async context manager or call close().

    With ``session`` given, the session belongs to the caller (a shared pool) and is
    never closed here."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        backoffs: Sequence[float] = (0.2, 0.5, 1.0),
        session: aiohttp.ClientSession | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        auth: PrometheusAuth | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # Only the operator's own Prometheus gets its credentials (see metrics.auth).
        self.auth = auth if auth is not None and auth.applies_to(self.url) else None
        self._ssl: ssl.SSLContext | bool | None = None
        self.where = redacted(self.url)
        self.timeout = timeout
        self.backoffs = tuple(backoffs)
        self.max_response_bytes = max_response_bytes
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
        if not self._own_session:
            assert self._session is not None
            if self._session.closed:
                raise PrometheusError(f"{self.where}: the HTTP session is closed")
            return self._session
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def query(self, promql: str, at: float | None = None) -> list[Series]:
        """An instant query. Scalars come back as one series without labels."""
        params = {"query": promql, "timeout": f"{self.timeout:g}s"}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._parse(await self._get("/api/v1/query", params))

    async def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """A range query from ``start`` to ``end`` (unix seconds) every ``step`` seconds."""
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
            "timeout": f"{self.timeout:g}s",
        }
        return self._parse(await self._get("/api/v1/query_range", params))

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        last_error = "no attempt"
        for attempt in range(len(self.backoffs) + 1):
            if attempt:
                await asyncio.sleep(self.backoffs[attempt - 1])
            try:
                return await self._attempt(path, params)
            except _Retry as retry:
                last_error = str(retry)
            except (aiohttp.ClientError, TimeoutError) as error:
                last_error = self._describe(error)
        tries = len(self.backoffs) + 1
        raise PrometheusError(f"{self.where}{path}: {last_error} ({tries} tries)")

    def _credentials(self) -> tuple[dict[str, str], ssl.SSLContext | bool]:
        if self.auth is None:
            return {}, True
        try:
            if self._ssl is None:
                self._ssl = self.auth.ssl_context()
            return self.auth.request_headers(), self._ssl
        except AuthError as error:
            raise PrometheusError(f"{self.where}: credentials: {error}") from None

    async def _attempt(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        headers, tls = self._credentials()
        async with self._client().get(
            self.url + path,
            params=params,
            headers=headers,
            ssl=tls,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            allow_redirects=False,
        ) as resp:
            if resp.status in RETRY_STATUSES:
                raise _Retry(await _refusal(resp))
            if resp.status >= 300:
                raise PrometheusError(f"{self.where}{path}: query refused ({await _refusal(resp)})")
            try:
                raw = await read_capped(resp, self.max_response_bytes)
            except AnswerTooLarge:
                raise AnswerTooLarge(
                    f"{self.where}{path}: answer larger than {self.max_response_bytes} bytes"
                ) from None
        return self._data(path, raw)

    def _data(self, path: str, raw: bytes | bytearray) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise PrometheusError(f"{self.where}{path}: the answer is not JSON") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            kind = _error_type(body)
            raise PrometheusError(
                f"{self.where}{path}: query refused (HTTP 200, status not success{kind})"
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"{self.where}{path}: malformed answer (no data object)")
        return data

    def _describe(self, error: BaseException) -> str:
        """Our words for a transport error: aiohttp's texts may quote what the server sent
        (a bad status line, a header)."""
        if isinstance(error, TimeoutError):
            return f"no answer within {self.timeout:g} s"
        if isinstance(error, aiohttp.ClientConnectorCertificateError):
            return "TLS certificate not trusted (see --prometheus-ca-file)"
        if isinstance(error, aiohttp.ClientSSLError):
            return "TLS handshake failed"
        if isinstance(error, aiohttp.ClientConnectorError):
            return "cannot connect"
        if isinstance(error, aiohttp.ServerDisconnectedError):
            return "the server closed the connection"
        if isinstance(error, aiohttp.ClientPayloadError):
            return "the answer was cut short"
        return f"HTTP client error ({type(error).__name__})"

    def _parse(self, data: dict[str, Any]) -> list[Series]:
        result = data.get("result")
        if isinstance(result, list) and len(result) > MAX_SERIES:
            raise PrometheusError(f"{self.where}: more than {MAX_SERIES} series in a result")
        try:
            return _series(data)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            raise PrometheusError(f"{self.where}: malformed query result") from None


async def read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytearray:
    """The body of ``resp``, read a chunk at a time; :class:`AnswerTooLarge` past ``cap``
    bytes (at once when ``Content-Length`` already says so). Decompressed bytes count, so
    a small gzip bomb is stopped too."""
    declared = resp.content_length
    if declared is not None and declared > cap:
        raise AnswerTooLarge(f"answer larger than {cap} bytes")
    body = bytearray()
    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
        body += chunk
        if len(body) > cap:
            raise AnswerTooLarge(f"answer larger than {cap} bytes")
    return body


def _error_type(body: object) -> str:
    """``, errorType X`` when the answer names a documented one, else nothing."""
    kind = body.get("errorType") if isinstance(body, dict) else None
    return f", errorType {kind}" if kind in ERROR_TYPES else ""


async def _refusal(resp: aiohttp.ClientResponse) -> str:
    """``HTTP <status>`` plus a documented errorType found in a small JSON error body."""
    body: object = None
    # Not JSON, too large or cut short: the status says enough.
    with contextlib.suppress(
        ValueError, RecursionError, PrometheusError, aiohttp.ClientError, TimeoutError
    ):
        body = json.loads(await read_capped(resp, ERROR_BODY_BYTES))
    return f"HTTP {resp.status}{_error_type(body)}"


def _value(raw: Sequence[Any]) -> tuple[float, float]:
    return float(raw[0]), float(raw[1])  # "NaN", "+Inf" parse as floats


def _series(data: dict[str, Any]) -> list[Series]:
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
    raise ValueError("unexpected result type")
