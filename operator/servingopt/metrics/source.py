"""Metric sources: one interface, one implementation per backend (Prometheus today).

A source answers a :class:`SampleRequest` with a :class:`~servingopt.values.MetricsSample`
(a value of the ground floor, also importable from here) and never
raises for missing data: an unreachable, hung or oversized server, an empty answer, NaN
or samples too old become a sample that says so (``reason``), and the guard holds
instead of acting on it. The sample's message is servingopt's own words: nothing of a
(possibly tenant-chosen) server's answer is echoed into status.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from servingopt.values import HISTORY_SECONDS, MetricsSample

from .limits import DEFAULT_DEADLINE_SECONDS, DEFAULT_MAX_AGE_SECONDS
from .prometheus import PrometheusClient, PrometheusError, Series
from .promql import preset

# Why metrics are unusable (MetricsAvailable=False reasons).
UNREACHABLE = "PrometheusUnavailable"
NO_DATA = "NoData"
NOT_A_NUMBER = "NotANumber"
STALE = "MetricsStale"

# Questions whose history is read with a range query (and the peak short-window rate).
HISTORIES = ("request_rate", "p99_latency_ms", "replicas")
PEAK_RATE = "peak_rate"
T = TypeVar("T")


@dataclass(frozen=True)
class SampleRequest:
    """What to fetch for one ModelServing."""

    preset: str
    labels: Mapping[str, str]
    window_seconds: int
    history_seconds: int = HISTORY_SECONDS
    history_step_seconds: int = 60
    burst_window_seconds: int = 0  # 0: the peak short-window rate is not read


class MetricSource(Protocol):
    """Anything that can sample a workload's serving metrics."""

    async def sample(self, request: SampleRequest) -> MetricsSample: ...


def _finite_samples(series: list[Series]) -> tuple[tuple[float, float], ...]:
    return tuple((t, v) for t, v in (series[0].samples if series else ()) if math.isfinite(v))


def _after_start(
    samples: tuple[tuple[float, float], ...], start: float, window_s: float
) -> tuple[tuple[float, float], ...]:
    """A rate history without the points whose window reaches back to where the series
    began (it began within the range when its first point comes after ``start``): such
    a rate covers part of its window only, so a new workload's first minute reads far
    below its demand, and that one miss would widen the forecast's error band for the
    two days the point stays in the history."""
    if not samples or samples[0][0] <= start:
        return samples
    first = samples[0][0]
    return tuple(point for point in samples if point[0] >= first + window_s)


async def _none() -> list[Series]:
    return []


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


async def _all(coroutines: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; the first failure cancels the rest (``asyncio.gather`` would
    leave them running, each with its own retries, after the sample has given up)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coroutines]
    except BaseExceptionGroup as failed:
        # A bug (not a PrometheusError) is the more important news.
        errors = sorted(failed.exceptions, key=lambda e: isinstance(e, PrometheusError))
        raise errors[0] from None
    return [task.result() for task in tasks]


@dataclass(frozen=True)
class _Answers:
    """Everything one sample asked for."""

    instant: dict[str, list[Series]]  # by question
    freshness: list[Series]
    histories: list[list[Series]]  # in the order of HISTORIES
    start: float  # of the history range
    end: float


def _lag(answers: _Answers, now: float) -> float:
    """How far (seconds) the answers' timestamps lie from the times asked for: an instant
    query is evaluated at ``now``, range points lie between ``start`` and ``end``."""
    lag = 0.0
    for series in (*answers.instant.values(), answers.freshness):
        for s in series:
            for t, _ in s.samples:
                lag = max(lag, abs(t - now))
    for series in answers.histories:
        for s in series:
            for t, _ in s.samples:
                lag = max(lag, answers.start - t, t - answers.end)
    return lag


@dataclass
class PrometheusSource:
    """Samples a workload from Prometheus with a preset's queries.

    All queries of one sample run concurrently under one ``deadline`` (retries
    included), so a Prometheus that accepts connections and never answers, or trickles
    its answer, holds a reconcile for at most that long. Samples older than ``max_age``
    seconds are not acted on (reason ``MetricsStale``)."""

    client: PrometheusClient
    clock: Callable[[], float] = time.time
    deadline: float = DEFAULT_DEADLINE_SECONDS
    max_age: float = DEFAULT_MAX_AGE_SECONDS

    async def sample(self, request: SampleRequest) -> MetricsSample:
        queries = preset(request.preset).queries(request.labels, request.window_seconds)
        freshness = preset(request.preset).freshness_query(request.labels)
        now = self.clock()
        try:
            async with asyncio.timeout(self.deadline):
                answers = await self._fetch(queries, freshness, request, now)
        except TimeoutError:
            return MetricsSample(
                reason=UNREACHABLE,
                message=f"{self.client.where}: no complete answer within {self.deadline:g} s",
            )
        except PrometheusError as error:
            return MetricsSample(reason=UNREACHABLE, message=str(error))
        stale = self._staleness(answers, now)
        if stale:
            return MetricsSample(reason=STALE, message=stale)
        return _measured(queries, answers, request.window_seconds)

    async def _fetch(
        self, queries: dict[str, str], freshness: str, request: SampleRequest, now: float
    ) -> _Answers:
        # History points on multiples of the step: within one step the same data gives
        # the same history (a range aligned to ``now`` re-samples the partial window where
        # a series starts differently on every call), so an unchanged workload gives the
        # planner, and the status, the same input.
        step = float(request.history_step_seconds)
        end = math.floor(now / step) * step
        start = end - request.history_seconds
        instant = [self.client.query(q, at=now) for q in (*queries.values(), freshness)]
        ranges = [
            self.client.query_range(queries[q], start, end, step) if q in queries else _none()
            for q in HISTORIES
        ]
        if request.burst_window_seconds > 0:
            peak = preset(request.preset).peak_rate_query(
                request.labels, request.burst_window_seconds, request.history_step_seconds
            )
            ranges.append(self.client.query_range(peak, start, end, step))
        got = await _all([*instant, *ranges])
        n = len(queries)
        return _Answers(dict(zip(queries, got[:n], strict=True)), got[n], got[n + 1 :], start, end)

    def _staleness(self, answers: _Answers, now: float) -> str:
        """Why the answers are too old to act on, or ''."""
        lag = _lag(answers, now)
        if lag > self.max_age:
            return (
                f"Prometheus answered for times {lag:.0f} s away from those asked "
                f"(more than {self.max_age:g} s): a lagging proxy or remote store"
            )
        # 0: no raw sample within the lookback; the other queries find no data then.
        newest = answers.freshness[0].last if answers.freshness else math.nan
        if math.isfinite(newest) and newest > 0 and now - newest > self.max_age:
            return (
                f"the newest sample of the request counter is {now - newest:.0f} s old "
                f"(more than {self.max_age:g} s): it is no longer scraped"
            )
        return ""


def _measured(queries: dict[str, str], answers: _Answers, window_s: float) -> MetricsSample:
    values: dict[str, float | None] = {}
    nan = []
    for question, series in answers.instant.items():
        if not series:
            values[question] = None
            continue
        values[question] = _finite(series[0].last)
        if values[question] is None:
            nan.append(question)
    missing = tuple(q for q in queries if values[q] is None)
    if values.get("request_rate") is None:
        reason = NOT_A_NUMBER if "request_rate" in nan else NO_DATA
        what = "is NaN" if reason == NOT_A_NUMBER else "returned no series"
        return MetricsSample(
            reason=reason,
            message=f"request rate query {what}: {queries['request_rate']}",
            missing=missing,
        )
    replicas = values.get("replicas")
    history, p99_history, replicas_history, *peak = answers.histories
    return MetricsSample(
        request_rate=values.get("request_rate"),
        error_ratio=values.get("error_ratio"),
        p99_latency_ms=values.get("p99_latency_ms"),
        mean_batch_size=values.get("mean_batch_size"),
        queue_ms=values.get("queue_ms"),
        replicas=int(replicas) if replicas is not None else None,
        demand_history=_after_start(_finite_samples(history), answers.start, window_s),
        p99_history=_finite_samples(p99_history),
        replicas_history=_finite_samples(replicas_history),
        peak_history=_finite_samples(peak[0]) if peak else (),
        missing=missing,
    )
