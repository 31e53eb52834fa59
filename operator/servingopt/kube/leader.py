"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

Two or more ``servingopt run --leader-elect`` processes campaign for one Lease; the one
named in ``spec.holderIdentity`` is the leader and the only one that runs kopf.

- Every write carries the ``resourceVersion`` that was read (optimistic concurrency):
  of two candidates that saw the same expired Lease, one write wins and the other gets
  409 Conflict.
- A candidate does not compare the holder's ``renewTime`` with its own wall clock (the
  clocks of two nodes may disagree). Like client-go, it remembers *when, by its own
  monotonic clock, it first saw the current record*; the Lease has expired once
  ``leaseDurationSeconds`` (the holder's figure, read from the Lease) have passed on that
  clock without the record changing.
- The leader renews every retry period. When no renewal has succeeded for the renew
  deadline (shorter than the lease duration), it has lost: it must stop acting before
  any candidate may take over. When it reads another holder, it has lost at once.
- On a graceful stop the leader releases the Lease (empty holder, 1 s duration, as
  client-go's ``ReleaseOnCancel``): a candidate takes over at its next retry.

The decision rules are plain functions (:func:`observe`, :func:`decide`,
:func:`next_spec`, :func:`renew_overdue`); :class:`LeaderElector` is the thin I/O loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from .client import ApiError

log = logging.getLogger("servingopt.leader")
T = TypeVar("T")

GROUP_VERSION = "coordination.k8s.io/v1"
DEFAULT_NAMESPACE = "servingopt-system"
DEFAULT_NAME = "servingopt"
# client-go's defaults (and controller-runtime's): 15 s / 10 s / 2 s.
LEASE_DURATION_S = 15.0
RENEW_DEADLINE_S = 10.0
RETRY_PERIOD_S = 2.0
# A candidate waits retry * uniform(1, 1 + JITTER) between tries (client-go: 1.2, which
# spreads many candidates; with two replicas a small jitter keeps the handover short).
JITTER = 0.2
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class LeaseApi(Protocol):
    """What the elector needs of the API client (:class:`~.client.KubeClient` fits)."""

    async def get(self, path: str) -> dict[str, Any] | None: ...

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ElectionConfig:
    """Which Lease, who I am, and the three durations (seconds)."""

    namespace: str = DEFAULT_NAMESPACE
    name: str = DEFAULT_NAME
    identity: str = ""
    lease_duration: float = LEASE_DURATION_S
    renew_deadline: float = RENEW_DEADLINE_S
    retry_period: float = RETRY_PERIOD_S
    jitter: float = JITTER

    def problems(self) -> list[str]:
        """What is wrong with these settings (client-go's checks plus names)."""
        out = []
        if not self.identity:
            out.append("the identity is empty")
        if len(self.namespace) > 63 or not _DNS_LABEL.fullmatch(self.namespace):
            out.append(f"namespace {self.namespace!r} is not a DNS label")
        if len(self.name) > 253 or not _DNS_SUBDOMAIN.fullmatch(self.name):
            out.append(f"lease name {self.name!r} is not a DNS subdomain")
        if self.retry_period <= 0:
            out.append("the retry period must be positive")
        if self.lease_duration <= self.renew_deadline:
            out.append("the lease duration must be longer than the renew deadline")
        if self.renew_deadline <= self.retry_period * (1 + self.jitter):
            out.append("the renew deadline must be longer than the retry period (with jitter)")
        return out

    @property
    def lease_seconds(self) -> int:
        """``leaseDurationSeconds`` is an integer in the API; round up, never shorten."""
        return max(1, math.ceil(self.lease_duration))

    @property
    def path(self) -> str:
        return f"/apis/{GROUP_VERSION}/namespaces/{self.namespace}/leases/{self.name}"

    @property
    def collection(self) -> str:
        return f"/apis/{GROUP_VERSION}/namespaces/{self.namespace}/leases"


def default_identity(environ: Mapping[str, str] | None = None) -> str:
    """``$POD_NAME`` (unique among live pods; a restarted container keeps it, so it takes
    its own Lease back at once), else hostname, pid and a random suffix."""
    env = os.environ if environ is None else environ
    if env.get("POD_NAME"):
        return env["POD_NAME"]
    return f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(4)}"


# The rules (pure).


@dataclass(frozen=True)
class LeaseSpec:
    """``spec`` of a Lease as leader election uses it. ``holder`` is '' when released."""

    holder: str = ""
    duration_s: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Mapping[str, Any]) -> LeaseSpec:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration_s=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_s,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time is not None:
            spec["renewTime"] = self.renew_time
        return spec


@dataclass(frozen=True)
class Observation:
    """The Lease as last read, and when (monotonic seconds) this record was first seen."""

    spec: LeaseSpec
    resource_version: str
    since: float


class Action(enum.Enum):
    CREATE = "create"  # no Lease yet: create it, holding it
    ACQUIRE = "acquire"  # free or expired: take it over (transitions + 1)
    RENEW = "renew"  # mine: write a new renewTime
    WAIT = "wait"  # someone else holds it and it has not expired
    LOST = "lost"  # I was leading and it is no longer mine


def observe(
    previous: Observation | None, spec: LeaseSpec, resource_version: str, now: float
) -> Observation:
    """The new observation; the clock restarts only when the record changed (a holder that
    keeps renewing keeps changing renewTime, so its Lease never expires for others)."""
    if previous is not None and previous.spec == spec:
        return Observation(spec, resource_version, previous.since)
    return Observation(spec, resource_version, now)


def expired(observation: Observation, now: float) -> bool:
    return now >= observation.since + observation.spec.duration_s


def decide(observation: Observation | None, me: str, leading: bool, now: float) -> Action:
    """What to do about the Lease (``None``: it does not exist)."""
    if observation is None:
        # A leader whose Lease was deleted stops: a candidate may be creating it now.
        return Action.LOST if leading else Action.CREATE
    holder = observation.spec.holder
    if holder == me:
        return Action.RENEW  # also after a container restart with the same identity
    if leading:
        return Action.LOST
    if not holder or expired(observation, now):
        return Action.ACQUIRE
    return Action.WAIT


def micro_time(at: datetime) -> str:
    """A ``MicroTime`` as the API writes it: RFC 3339, microseconds, UTC."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def next_spec(action: Action, old: LeaseSpec | None, me: str, seconds: int, wall: str) -> LeaseSpec:
    """The spec to write for CREATE / ACQUIRE / RENEW (``wall``: now as a MicroTime)."""
    if action is Action.CREATE or old is None:
        return LeaseSpec(me, seconds, wall, wall, 0)
    if action is Action.RENEW:
        return LeaseSpec(me, seconds, old.acquire_time or wall, wall, old.transitions)
    if action is Action.ACQUIRE:
        return LeaseSpec(me, seconds, wall, wall, old.transitions + 1)
    raise ValueError(f"nothing to write for {action}")


def released(old: LeaseSpec, wall: str) -> LeaseSpec:
    """What a leader writes when it stops gracefully: no holder, expiring in 1 s."""
    return LeaseSpec("", 1, wall, wall, old.transitions)


def renew_overdue(last_renewed: float, now: float, renew_deadline: float) -> bool:
    """No successful renewal for the renew deadline: the leader must stop acting."""
    return now - last_renewed >= renew_deadline


# The I/O loop.


class LeadershipLost(RuntimeError):
    """This process was leading and no longer holds the Lease."""


class LeaderElector:
    """Campaigns for the Lease (:meth:`acquire`), keeps it (:meth:`keep`), gives it back
    (:meth:`release`). ``on_change(leading)`` is called when leadership changes."""

    def __init__(
        self,
        kube: LeaseApi,
        config: ElectionConfig,
        *,
        on_change: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kube = kube
        self.config = config
        self.on_change = on_change
        self.clock = clock
        self.wall = wall
        self.leading = False
        self.observation: Observation | None = None
        self.last_renewed = 0.0  # monotonic time the last successful write was sent
        self.last_holder: str | None = None

    @property
    def identity(self) -> str:
        return self.config.identity

    async def step(self) -> Action:
        """One read, one decision and, where needed, one write. Returns what happened:
        CREATE / ACQUIRE / RENEW only when the write succeeded; WAIT when it did not."""
        started = self.clock()
        lease = await self.kube.get(self.config.path)
        now = self.clock()
        if lease is None:
            self.observation = None
        else:
            spec = LeaseSpec.from_lease(lease)
            rv = str((lease.get("metadata") or {}).get("resourceVersion", ""))
            self.observation = observe(self.observation, spec, rv, now)
            self._note_holder(spec.holder)
        action = decide(self.observation, self.identity, self.leading, now)
        if action in (Action.WAIT, Action.LOST):
            return action
        old = self.observation.spec if self.observation else None
        spec = next_spec(action, old, self.identity, self.config.lease_seconds, self._wall())
        try:
            written = await self._write(spec, create=action is Action.CREATE)
        except ApiError as error:
            if error.status == 404 and action is Action.CREATE:
                log.warning("leader: cannot create lease %s: %s", self._desc(), error.message)
                return Action.WAIT  # its namespace does not exist (yet)
            if error.status in (409, 404):  # someone else wrote first (or deleted it)
                log.info("leader: %s of %s lost a race: %s", action.value, self._desc(), error)
                return Action.WAIT
            raise
        rv = str((written.get("metadata") or {}).get("resourceVersion", ""))
        self.observation = Observation(spec, rv, self.clock())
        self.last_renewed = started
        self._note_holder(self.identity)
        return action

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Campaign until this process holds the Lease (True) or ``stop`` is set (False)."""
        log.info("leader: %s campaigning for lease %s", self.identity, self._desc())
        while not stop.is_set():
            try:
                action = await self._bounded(self.step(), self.config.renew_deadline)
            except (ApiError, TimeoutError) as error:
                log.warning("leader: trying lease %s failed: %s", self._desc(), error)
                action = Action.WAIT
            if action in (Action.CREATE, Action.ACQUIRE, Action.RENEW):
                self._set_leading(True, action)
                return True
            pause = self.config.retry_period * random.uniform(1, 1 + self.config.jitter)
            await _wait(stop, pause)
        return False

    async def keep(self) -> None:
        """Renew every retry period; returns (as :class:`LeadershipLost`) when lost."""
        try:
            while True:
                await asyncio.sleep(self.config.retry_period)
                await self._renew_once()
        except LeadershipLost:
            self._set_leading(False, Action.LOST)
            raise

    async def _renew_once(self) -> None:
        """Retry the renewal every retry period until it succeeds or the deadline passes."""
        while True:
            if renew_overdue(self.last_renewed, self.clock(), self.config.renew_deadline):
                raise LeadershipLost(
                    f"no renewal of lease {self._desc()} for {self.config.renew_deadline:g} s"
                )
            try:
                action = await self._bounded(self.step(), self._until_deadline())
            except (ApiError, TimeoutError) as error:
                log.warning("leader: renewing lease %s failed: %s", self._desc(), error)
                action = Action.WAIT
            if action is Action.RENEW:
                return
            if action is Action.LOST:
                holder = self.observation.spec.holder if self.observation else ""
                raise LeadershipLost(f"lease {self._desc()} is held by {holder or 'nobody'}")
            await asyncio.sleep(min(self.config.retry_period, max(0.0, self._until_deadline())))

    async def release(self) -> bool:
        """Give the Lease back if this process holds it (graceful stop)."""
        if not self.leading or self.observation is None:
            return False
        self._set_leading(False, None)
        spec = released(self.observation.spec, self._wall())
        try:
            await self._bounded(self._write(spec), self.config.retry_period * 2)
        except (ApiError, TimeoutError) as error:
            log.warning("leader: releasing lease %s failed: %s", self._desc(), error)
            return False
        log.info("leader: %s released lease %s", self.identity, self._desc())
        return True

    async def _write(self, spec: LeaseSpec, *, create: bool = False) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.config.name, "namespace": self.config.namespace}
        body = {"apiVersion": GROUP_VERSION, "kind": "Lease", "metadata": metadata}
        body["spec"] = spec.to_spec()
        if create:
            return await self.kube.create(self.config.collection, body)
        assert self.observation is not None
        # The resourceVersion read: a write based on a stale read is refused with 409.
        metadata["resourceVersion"] = self.observation.resource_version
        return await self.kube.request("PUT", self.config.path, body=body)

    async def _bounded(self, call: Awaitable[T], seconds: float) -> T:
        """``call``, cancelled after ``seconds``: a hung API server must not hold the
        leader past its renew deadline."""
        return await asyncio.wait_for(call, timeout=max(seconds, 0.001))

    def _until_deadline(self) -> float:
        return self.last_renewed + self.config.renew_deadline - self.clock()

    def _set_leading(self, leading: bool, action: Action | None) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        if leading:
            log.info(
                "leader: %s is now the leader (%s lease %s)",
                self.identity,
                action.value if action else "held",
                self._desc(),
            )
        if self.on_change is not None:
            self.on_change(leading)

    def _note_holder(self, holder: str) -> None:
        if holder != self.last_holder:
            self.last_holder = holder
            log.info("leader: lease %s is held by %s", self._desc(), holder or "nobody")

    def _wall(self) -> str:
        return micro_time(self.wall())

    def _desc(self) -> str:
        return f"{self.config.namespace}/{self.config.name}"


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
