"""Bounds on what a Prometheus (possibly a tenant's) can make the operator spend: the
size of an answer, the time of a sample, the memory of a 30 MB answer, and the HTTP
sessions and connections of many Prometheus URLs."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from servingopt.metrics.pool import PrometheusPool
from servingopt.metrics.prometheus import AnswerTooLarge, PrometheusClient
from servingopt.metrics.source import UNREACHABLE, PrometheusSource, SampleRequest

REQUEST = SampleRequest("generic", {"namespace": "ml", "deployment": "d"}, 60)
MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakePrometheus:
    """A loopback HTTP server whose every path is answered by ``handler``; it counts
    requests and how many were in flight at once."""

    def __init__(self) -> None:
        self.handler: Handler = _tiny
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.released = asyncio.Event()  # ends hung and trickling answers at teardown
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self.handler(request)
        finally:
            self.in_flight -= 1


async def _tiny(_: web.Request) -> web.StreamResponse:
    await asyncio.sleep(0.001)  # so that concurrent requests overlap
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}}
    return web.json_response(body)


@pytest.fixture
async def prom() -> AsyncIterator[FakePrometheus]:
    fake = FakePrometheus()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}"
    yield fake
    fake.released.set()
    await runner.cleanup()


# A valid 30 MB answer: one vector of many series, produced a chunk at a time.
HEAD = b'{"status":"success","data":{"resultType":"vector","result":['
LINE = b'{"metric":{"pod":"pod-%07d"},"value":[1800000000,"1"]},'
TAIL = b'{"metric":{},"value":[1800000000,"1"]}]}}'
HUGE_LINES = 30 * MIB // len(LINE % 0)
HUGE_BYTES = len(HEAD) + HUGE_LINES * len(LINE % 0) + len(TAIL)


def huge_chunks() -> Iterator[bytes]:
    yield HEAD
    for first in range(0, HUGE_LINES, 1000):
        yield b"".join(LINE % i for i in range(first, min(first + 1000, HUGE_LINES)))
    yield TAIL


def huge(declared: bool) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        if "small" in request.query.get("query", ""):
            return await _tiny(request)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declared:
            resp.content_length = HUGE_BYTES
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for chunk in huge_chunks():
                await resp.write(chunk)
        except (ConnectionResetError, ConnectionError):
            pass  # the client gave up, as it should
        return resp

    return answer


def client(prom: FakePrometheus, **kwargs: object) -> PrometheusClient:
    kwargs.setdefault("backoffs", (0.01, 0.01))
    return PrometheusClient(prom.url, **kwargs)  # type: ignore[arg-type]


# Size cap.


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_an_oversized_answer_is_abandoned_and_not_retried(
    prom: FakePrometheus, declared: bool
) -> None:
    prom.handler = huge(declared)
    started = time.monotonic()
    async with client(prom, max_response_bytes=MIB) as c:
        with pytest.raises(AnswerTooLarge) as caught:
            await c.query("up")
    assert str(caught.value) == f"{prom.url}/api/v1/query: answer larger than {MIB} bytes"
    assert prom.requests == 1
    assert time.monotonic() - started < 5


async def test_a_compressed_bomb_is_stopped_by_its_decompressed_size(prom: FakePrometheus) -> None:
    bomb = gzip.compress(b"{" + b" " * (30 * MIB) + b"}")  # ~30 KB on the wire

    async def answer(_: web.Request) -> web.StreamResponse:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    prom.handler = answer
    async with client(prom, max_response_bytes=MIB) as c:
        with pytest.raises(AnswerTooLarge):
            await c.query("up")


async def test_a_sample_with_an_oversized_answer_is_unavailable(prom: FakePrometheus) -> None:
    prom.handler = huge(declared=False)
    async with client(prom, max_response_bytes=MIB) as c:
        got = await PrometheusSource(c).sample(REQUEST)
    assert got.reason == UNREACHABLE and f"answer larger than {MIB} bytes" in got.message
    assert "pod-" not in got.message


RSS_PROBE = """
import asyncio, json, sys
from servingopt.metrics.prometheus import PrometheusClient, PrometheusError

def kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])

async def main(url, cap):
    async with PrometheusClient(url, backoffs=(), max_response_bytes=cap) as client:
        await client.query("small")  # warm up: imports, session, buffers
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset the peak (VmHWM) to the current RSS
        before = kib("VmRSS")
        try:
            await client.query("huge")
            outcome = "answered"
        except PrometheusError as error:
            outcome = str(error)
        print(json.dumps({"growth_kib": kib("VmHWM") - before, "outcome": outcome}))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def rss_growth(url: str, cap: int) -> dict[str, object]:
    """Peak RSS growth of a fresh process that reads one 30 MB answer with ``cap``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RSS_PROBE, url, str(cap), stdout=asyncio.subprocess.PIPE, env=env
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0
    result: dict[str, object] = json.loads(out)
    print(f"cap {cap} B: peak RSS growth {result['growth_kib']} KiB, {result['outcome']}")
    return result


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_30_mb_answer_costs_little_memory(prom: FakePrometheus, declared: bool) -> None:
    """With the default 8 MiB cap: nothing is read when the length is declared, at most
    the cap (plus a few MiB of slack) when it is not. Without a cap the same answer
    costs well over 30 MiB, which shows that the probe sees growth."""
    prom.handler = huge(declared)
    result = await rss_growth(prom.url, 8 * MIB)
    assert "answer larger than" in str(result["outcome"])
    allowed_kib = (4 if declared else 8 + 4) * 1024
    assert int(str(result["growth_kib"])) < allowed_kib
    if not declared:
        uncapped = await rss_growth(prom.url, 1 << 40)
        assert "answer larger than" not in str(uncapped["outcome"])  # it read it all
        assert int(str(uncapped["growth_kib"])) > 30 * 1024


# Time bounds.


def our_tasks() -> list[asyncio.Task[object]]:
    """Tasks still running the Prometheus client's code."""
    return [
        t
        for t in asyncio.all_tasks()
        if not t.done() and "PrometheusClient" in getattr(t.get_coro(), "__qualname__", "")
    ]


async def test_a_hung_server_holds_a_sample_no_longer_than_the_deadline(
    prom: FakePrometheus,
) -> None:
    async def hang(_: web.Request) -> web.StreamResponse:
        await prom.released.wait()  # accepts, never answers
        return web.Response()

    prom.handler = hang
    async with client(prom, timeout=30.0) as c:  # the per-request timeout alone would be 30 s
        started = time.monotonic()
        got = await PrometheusSource(c, deadline=1.0).sample(REQUEST)
        elapsed = time.monotonic() - started
    print(f"hung server: sample ended after {elapsed:.2f} s")
    assert got.reason == UNREACHABLE and "no complete answer within 1 s" in got.message
    assert 0.9 < elapsed < 3.0
    assert our_tasks() == []  # no query left running behind the reconcile


async def test_a_trickling_server_holds_a_sample_no_longer_than_the_deadline(
    prom: FakePrometheus,
) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(b'{"status":"success",')
        try:
            while not prom.released.is_set():
                await resp.write(b" ")  # valid JSON whitespace, one byte at a time
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass
        return resp

    prom.handler = trickle
    async with client(prom, timeout=30.0) as c:
        started = time.monotonic()
        got = await PrometheusSource(c, deadline=1.0).sample(REQUEST)
        elapsed = time.monotonic() - started
    assert got.reason == UNREACHABLE and "within 1 s" in got.message
    assert 0.9 < elapsed < 3.0
    assert our_tasks() == []


async def test_the_request_timeout_still_ends_each_try(prom: FakePrometheus) -> None:
    async def hang(_: web.Request) -> web.StreamResponse:
        await prom.released.wait()
        return web.Response()

    prom.handler = hang
    async with client(prom, timeout=0.2, backoffs=(0.01,)) as c:
        got = await PrometheusSource(c, deadline=10.0).sample(REQUEST)
    assert got.reason == UNREACHABLE and "no answer within 0.2 s (2 tries)" in got.message


# Pooled sessions.


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_thousand_urls_share_one_bounded_session(prom: FakePrometheus) -> None:
    pool = PrometheusPool(limit=8, limit_per_host=4)
    fds_before = open_fds()
    try:
        sources = [pool.source_for(f"{prom.url}/tenant-{i}") for i in range(1000)]
        sessions = {id(s.client._client()) for s in sources}
        assert sessions == {id(pool.session())}
        answers = await asyncio.gather(*(s.client.query("up") for s in sources))
        assert all(a[0].last == 1.0 for a in answers)
        assert prom.requests == 1000
        assert prom.max_in_flight <= 4  # limit_per_host
        await asyncio.sleep(0.1)
        # Connections are closed after each answer: none stay open per URL.
        assert open_fds() - fds_before <= 4
    finally:
        await pool.close()


async def test_a_closed_pool_opens_nothing_new(prom: FakePrometheus) -> None:
    pool = PrometheusPool()
    await pool.close()
    got = await pool.source_for(prom.url).sample(REQUEST)
    assert got.reason == UNREACHABLE and "closed" in got.message
    assert prom.requests == 0
