"""The elector's I/O loop against an in-memory Lease store that behaves like the API
server where it matters: create refuses an existing name, a write carrying a stale
resourceVersion gets 409 Conflict."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping
from typing import Any

import pytest

from servingopt.kube.client import ApiError
from servingopt.kube.leader import Action, ElectionConfig, LeaderElector, LeadershipLost


class FakeLeases:
    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.failing = False  # every request answers 503
        self.hanging = False  # every request hangs
        self.writes = 0
        self.no_namespace = False  # create answers 404

    async def _enter(self) -> None:
        if self.hanging:
            await asyncio.sleep(3600)
        if self.failing:
            raise ApiError(503, "ServiceUnavailable", "down")

    async def get(self, path: str) -> dict[str, Any] | None:
        await self._enter()
        return copy.deepcopy(self.lease)

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        await self._enter()
        if self.no_namespace:
            raise ApiError(404, "NotFound", 'namespaces "servingopt-system" not found')
        if self.lease is not None:
            raise ApiError(409, "AlreadyExists", "exists")
        return self._store(body)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        await self._enter()
        assert method == "PUT"
        if self.lease is None:
            raise ApiError(404, "NotFound", "gone")
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        return self._store(body)

    def _store(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.writes += 1
        lease = copy.deepcopy(dict(body))
        lease["metadata"]["resourceVersion"] = str(self.version)
        self.lease = lease
        return copy.deepcopy(lease)

    @property
    def holder(self) -> str | None:
        return None if self.lease is None else self.lease["spec"]["holderIdentity"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(store: FakeLeases, identity: str, clock: Clock, **config: Any) -> LeaderElector:
    return LeaderElector(store, ElectionConfig(identity=identity, **config), clock=clock)


async def test_one_creates_the_other_waits_until_it_expires() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    assert await a.step() is Action.CREATE
    a.leading = True
    assert await b.step() is Action.WAIT
    clock.now += 10
    assert await a.step() is Action.RENEW  # renewTime changes: b's clock starts again
    assert await b.step() is Action.WAIT  # b sees the renewal now
    clock.now += 14
    assert await b.step() is Action.WAIT
    clock.now += 1
    assert await b.step() is Action.ACQUIRE
    assert store.holder == "b"
    assert store.lease is not None and store.lease["spec"]["leaseTransitions"] == 1
    assert await a.step() is Action.LOST


async def test_two_candidates_racing_for_an_expired_lease_one_wins() -> None:
    store, clock = FakeLeases(), Clock()
    gone = elector(store, "gone", clock)
    await gone.step()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    await a.step(), await b.step()  # both see the same record
    clock.now += 15
    results = await asyncio.gather(a.step(), b.step())
    assert sorted(r.value for r in results) == ["acquire", "wait"]
    assert store.holder in ("a", "b")


async def test_a_released_lease_is_taken_at_the_next_try() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    assert await a.acquire(asyncio.Event())
    assert await b.step() is Action.WAIT
    assert await a.release()
    assert store.holder == "" and not a.leading
    assert await b.step() is Action.ACQUIRE  # no waiting out the lease duration


async def test_acquire_returns_false_when_stopped() -> None:
    store, clock = FakeLeases(), Clock()
    await elector(store, "a", clock).step()
    stop = asyncio.Event()
    b = elector(store, "b", clock, retry_period=0.05, renew_deadline=1.0)
    task = asyncio.create_task(b.acquire(stop))
    await asyncio.sleep(0.2)
    stop.set()
    assert await asyncio.wait_for(task, 1) is False
    assert store.holder == "a"


@pytest.mark.parametrize("fault", ["failing", "hanging"])
async def test_a_leader_that_cannot_renew_loses_at_its_renew_deadline(fault: str) -> None:
    store = FakeLeases()
    changes: list[bool] = []
    a = LeaderElector(
        store,
        ElectionConfig(identity="a", lease_duration=2, renew_deadline=0.8, retry_period=0.1),
        on_change=changes.append,
    )
    assert await a.acquire(asyncio.Event())
    renewed = a.last_renewed
    setattr(store, fault, True)
    start = time.monotonic()
    with pytest.raises(LeadershipLost):
        await asyncio.wait_for(a.keep(), 5)
    # Lost no earlier than the deadline after the last renewal, and not much later.
    assert time.monotonic() - renewed >= 0.8
    assert time.monotonic() - start < 0.8 + 0.5
    assert changes == [True, False]


async def test_a_leader_keeps_renewing_while_the_api_answers() -> None:
    store = FakeLeases()
    a = elector(store, "a", Clock(), lease_duration=2, renew_deadline=0.8, retry_period=0.05)
    a.clock = time.monotonic
    assert await a.acquire(asyncio.Event())
    task = asyncio.create_task(a.keep())
    await asyncio.sleep(0.5)
    assert not task.done()
    task.cancel()
    assert store.writes >= 5 and store.holder == "a"


async def test_a_leader_that_reads_another_holder_loses_at_once() -> None:
    store, clock = FakeLeases(), Clock()
    a = elector(store, "a", clock, lease_duration=2, renew_deadline=0.8, retry_period=0.05)
    assert await a.acquire(asyncio.Event())
    assert store.lease is not None
    store.lease["spec"]["holderIdentity"] = "intruder"
    with pytest.raises(LeadershipLost, match="intruder"):
        await asyncio.wait_for(a.keep(), 2)


async def test_a_missing_namespace_keeps_the_candidate_waiting() -> None:
    store, clock = FakeLeases(), Clock()
    store.no_namespace = True
    a = elector(store, "a", clock)
    assert await a.step() is Action.WAIT
    store.no_namespace = False
    assert await a.step() is Action.CREATE
