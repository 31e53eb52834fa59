"""Metric sources: one interface, one implementation per backend (Prometheus today).

A source answers a :class:`SampleRequest` with a :class:`MetricsSample` and never
raises for missing data: an unreachable server, an empty answer or NaN become a sample
that says so (``reason``), and the guard holds instead of acting on it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from servingopt.optimize.observation import HISTORY_SECONDS

from .prometheus import PrometheusClient, PrometheusError, Series
from .promql import preset

# Why metrics are unusable (MetricsAvailable=False reasons).
UNREACHABLE = "PrometheusUnavailable"
NO_DATA = "NoData"
NOT_A_NUMBER = "NotANumber"


@dataclass(frozen=True)
class SampleRequest:
    """What to fetch for one ModelServing."""

    preset: str
    labels: Mapping[str, str]
    window_seconds: int
    history_seconds: int = HISTORY_SECONDS
    history_step_seconds: int = 60


@dataclass(frozen=True)
class MetricsSample:
    """Live serving metrics of one workload. ``None`` means not measured."""

    request_rate: float | None = None
    error_ratio: float | None = None
    p99_latency_ms: float | None = None
    mean_batch_size: float | None = None
    queue_ms: float | None = None
    replicas: int | None = None
    demand_history: tuple[tuple[float, float], ...] = ()
    p99_history: tuple[tuple[float, float], ...] = ()
    replicas_history: tuple[tuple[float, float], ...] = ()
    reason: str = ""
    message: str = ""
    missing: tuple[str, ...] = field(default=())

    @property
    def available(self) -> bool:
        """Whether demand is known: without it nothing may scale down or move."""
        return not self.reason and self.request_rate is not None

    @property
    def per_replica_rps(self) -> float | None:
        if self.request_rate is None or not self.replicas:
            return None
        return self.request_rate / self.replicas


class MetricSource(Protocol):
    """Anything that can sample a workload's serving metrics."""

    async def sample(self, request: SampleRequest) -> MetricsSample: ...


def _finite_samples(series: list[Series]) -> tuple[tuple[float, float], ...]:
    return tuple((t, v) for t, v in (series[0].samples if series else ()) if math.isfinite(v))


async def _none() -> list[Series]:
    return []


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass
class PrometheusSource:
    """Samples a workload from Prometheus with a preset's queries."""

    client: PrometheusClient
    clock: Callable[[], float] = time.time

    async def sample(self, request: SampleRequest) -> MetricsSample:
        queries = preset(request.preset).queries(request.labels, request.window_seconds)
        now = self.clock()
        try:
            answers = await asyncio.gather(
                *(self.client.query(q, at=now) for q in queries.values())
            )
            span = (now - request.history_seconds, now, float(request.history_step_seconds))
            history, p99_history, replicas_history = await asyncio.gather(
                *(
                    self.client.query_range(queries[q], *span) if q in queries else _none()
                    for q in ("request_rate", "p99_latency_ms", "replicas")
                )
            )
        except PrometheusError as error:
            return MetricsSample(reason=UNREACHABLE, message=str(error))
        values: dict[str, float | None] = {}
        nan = []
        for question, series in zip(queries, answers, strict=True):
            if not series:
                values[question] = None
                continue
            values[question] = _finite(series[0].last)
            if values[question] is None:
                nan.append(question)
        missing = tuple(q for q in queries if values[q] is None)
        replicas = values.get("replicas")
        sample = MetricsSample(
            request_rate=values.get("request_rate"),
            error_ratio=values.get("error_ratio"),
            p99_latency_ms=values.get("p99_latency_ms"),
            mean_batch_size=values.get("mean_batch_size"),
            queue_ms=values.get("queue_ms"),
            replicas=int(replicas) if replicas is not None else None,
            demand_history=_finite_samples(history),
            p99_history=_finite_samples(p99_history),
            replicas_history=_finite_samples(replicas_history),
            missing=missing,
        )
        if sample.request_rate is None:
            reason = NOT_A_NUMBER if "request_rate" in nan else NO_DATA
            what = "is NaN" if reason == NOT_A_NUMBER else "returned no series"
            return MetricsSample(
                reason=reason,
                message=f"request rate query {what}: {queries['request_rate']}",
                missing=missing,
            )
        return sample
