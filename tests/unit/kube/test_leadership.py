"""What ``servingopt run --leader-elect`` does around kopf: stop it before the Lease can
pass to another replica, release the Lease after it stopped, answer liveness meanwhile."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request

import pytest

from servingopt.controller.leadership import lead, standby_health, stop_grace
from servingopt.kube.leader import ElectionConfig, LeaderElector, LeadershipLost

from .test_leader_elector import FakeLeases

CONFIG = ElectionConfig(identity="a", lease_duration=2, renew_deadline=0.8, retry_period=0.1)


async def leader(store: FakeLeases) -> LeaderElector:
    elector = LeaderElector(store, CONFIG)
    assert await elector.acquire(asyncio.Event())
    return elector


async def test_a_lost_lease_stops_the_operator_within_the_lease_duration() -> None:
    store = FakeLeases()
    elector = await leader(store)
    stopped: list[float] = []

    async def operator(stop: asyncio.Event, ready: asyncio.Event) -> None:
        ready.set()
        store.failing = True  # the API server goes away while the operator runs
        await stop.wait()
        stopped.append(time.monotonic())

    with pytest.raises(LeadershipLost):
        await asyncio.wait_for(lead(elector, operator, asyncio.Event(), CONFIG), 5)
    assert stopped
    # Stopped before a standby could take over: within the lease duration of the last
    # renewal (a standby saw that renewal no earlier than it was sent).
    assert stopped[0] - elector.last_renewed < CONFIG.lease_duration
    assert store.holder == "a"  # never released: it was not ours to give any more


async def test_an_operator_that_ignores_the_stop_flag_is_cancelled() -> None:
    store = FakeLeases()
    elector = await leader(store)
    cancelled: list[bool] = []

    async def stubborn(stop: asyncio.Event, ready: asyncio.Event) -> None:
        store.failing = True
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    start = time.monotonic()
    with pytest.raises(LeadershipLost):
        await asyncio.wait_for(lead(elector, stubborn, asyncio.Event(), CONFIG), 5)
    assert cancelled
    assert time.monotonic() - start < CONFIG.renew_deadline + 2 * stop_grace(CONFIG) + 0.5


async def test_a_stopped_operator_releases_the_lease_afterwards() -> None:
    store = FakeLeases()
    elector = await leader(store)
    order: list[str] = []

    async def operator(stop: asyncio.Event, ready: asyncio.Event) -> None:
        await stop.wait()
        order.append(f"operator stopped, holder {store.holder}")

    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, stop.set)  # SIGTERM
    await asyncio.wait_for(lead(elector, operator, stop, CONFIG), 5)
    assert order == ["operator stopped, holder a"]
    assert store.holder == "" and not elector.leading


async def test_a_crashed_operator_releases_the_lease_and_raises() -> None:
    store = FakeLeases()
    elector = await leader(store)

    async def crashing(stop: asyncio.Event, ready: asyncio.Event) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await asyncio.wait_for(lead(elector, crashing, asyncio.Event(), CONFIG), 5)
    assert store.holder == ""


def test_the_stop_grace_leaves_half_the_margin() -> None:
    assert stop_grace(ElectionConfig(identity="a")) == 1.25  # (15 - 10) / 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fetch(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


async def test_a_standby_answers_liveness_and_frees_the_port() -> None:
    url = f"http://127.0.0.1:{free_port()}/healthz"
    async with standby_health(url, "pod-b"):
        assert await asyncio.to_thread(fetch, url) == {"leader": False, "identity": "pod-b"}
    with pytest.raises(OSError):
        await asyncio.to_thread(fetch, url)  # closed: kopf's endpoint can bind it now
    async with standby_health(None, "pod-b"):
        pass  # liveness disabled: nothing served
