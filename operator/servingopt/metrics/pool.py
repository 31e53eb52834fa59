"""One bounded HTTP pool for every Prometheus the operator queries.

Each ModelServing may name its own Prometheus, so the number of distinct URLs is not
ours to bound. Instead of a session (and its idle connections) per URL kept forever,
all queries share one aiohttp session whose connector caps the connections open at
once, in total and per host. Connections are closed after each answer
(``force_close``): aiohttp does not count idle kept-alive connections against its
limits, so keep-alive would let every URL ever seen hold a socket. A query costs a
TCP (or TLS) handshake, which is small next to the replan interval.

A source is built on demand per URL and holds nothing but the URL and settings, so
:meth:`PrometheusPool.source_for` keeps no per-URL state at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from .auth import PrometheusAuth
from .limits import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
)
from .prometheus import PrometheusClient
from .source import PrometheusSource

# One reconcile sends its instant and range queries concurrently (about ten).
DEFAULT_LIMIT = 64
DEFAULT_LIMIT_PER_HOST = 16


@dataclass
class PrometheusPool:
    """Hands out :class:`PrometheusSource`\\ s that share one bounded session."""

    timeout: float = DEFAULT_TIMEOUT_SECONDS  # per request
    deadline: float = DEFAULT_DEADLINE_SECONDS  # per sample, retries included
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_age: float = DEFAULT_MAX_AGE_SECONDS
    limit: int = DEFAULT_LIMIT
    limit_per_host: int = DEFAULT_LIMIT_PER_HOST
    clock: Callable[[], float] = time.time
    auth: PrometheusAuth | None = None  # the operator's own Prometheus only
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    def session(self) -> aiohttp.ClientSession:
        """The shared session, created on first use (it needs a running event loop).
        Once the pool is closed it stays closed: sources then answer unavailable."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.limit, limit_per_host=self.limit_per_host, force_close=True
            )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def source_for(self, url: str) -> PrometheusSource:
        client = PrometheusClient(
            url,
            timeout=self.timeout,
            session=self.session(),
            max_response_bytes=self.max_response_bytes,
            auth=self.auth,
        )
        return PrometheusSource(
            client, clock=self.clock, deadline=self.deadline, max_age=self.max_age
        )

    async def close(self) -> None:
        # Through session(): a pool closed before its first query keeps a closed
        # session too, so nothing opens a new one afterwards.
        await self.session().close()
