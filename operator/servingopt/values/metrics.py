"""Live serving metrics as values: one sample of a workload, and its history aligned.

A metric source (``metrics/``: Prometheus today) answers with a :class:`MetricsSample`;
the loop reads its histories as one :class:`MetricHistory` (numpy columns on the demand's
timestamps), which a replay builds directly from what it recorded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .observation import FloatArray

Points = tuple[tuple[float, float], ...]


def _empty() -> FloatArray:
    return np.zeros(0, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class MetricHistory:
    """Per-interval history on the demand's timestamps (increasing unix seconds).

    ``p99_latency_ms`` and ``replicas`` hold NaN where that interval was not measured.
    """

    timestamps_s: FloatArray = field(default_factory=_empty)
    requests_per_second: FloatArray = field(default_factory=_empty)
    p99_latency_ms: FloatArray = field(default_factory=_empty)
    replicas: FloatArray = field(default_factory=_empty)
    peak_rps: FloatArray = field(default_factory=_empty)
    """Each interval's peak short-window request rate (NaN where unmeasured; empty:
    not measured at all), for bursts within the interval."""

    def __post_init__(self) -> None:
        n = self.timestamps_s.size
        for name in ("requests_per_second", "p99_latency_ms", "replicas"):
            if getattr(self, name).size != n:
                raise ValueError(f"{name} has {getattr(self, name).size} entries, expected {n}")
        if self.peak_rps.size not in (0, n):
            raise ValueError(f"peak_rps has {self.peak_rps.size} entries, expected 0 or {n}")

    def __len__(self) -> int:
        return int(self.timestamps_s.size)

    def points(self) -> tuple[Points, Points, Points, Points]:
        """The history as a metric source gives it: (time, value) pairs of the demand,
        p99, replica and peak-rate series, each without its unmeasured (NaN) points."""
        times = self.timestamps_s.tolist()

        def pairs(values: FloatArray) -> Points:
            return tuple(
                (t, v) for t, v in zip(times, values.tolist(), strict=True) if math.isfinite(v)
            )

        return (
            tuple(zip(times, self.requests_per_second.tolist(), strict=True)),
            pairs(self.p99_latency_ms),
            pairs(self.replicas),
            pairs(self.peak_rps) if self.peak_rps.size else (),
        )


def _on(times: Sequence[float], points: Points) -> FloatArray:
    """``points`` looked up at ``times`` (NaN where a time has no point)."""
    by_time = dict(points)
    return np.array([by_time.get(t, math.nan) for t in times], dtype=np.float64)


@dataclass(frozen=True)
class MetricsSample:
    """Live serving metrics of one workload. ``None`` means not measured."""

    request_rate: float | None = None
    error_ratio: float | None = None
    p99_latency_ms: float | None = None
    mean_batch_size: float | None = None
    queue_ms: float | None = None
    replicas: int | None = None
    demand_history: Points = ()
    p99_history: Points = ()
    replicas_history: Points = ()
    peak_history: Points = ()  # each interval's peak short-window request rate
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

    def history(self) -> MetricHistory:
        """The histories on the demand's timestamps (p99 and replicas NaN where their
        series has no point at that time)."""
        times = [t for t, _ in self.demand_history]
        return MetricHistory(
            timestamps_s=np.array(times, dtype=np.float64),
            requests_per_second=np.array([v for _, v in self.demand_history], dtype=np.float64),
            p99_latency_ms=_on(times, self.p99_history),
            replicas=_on(times, self.replicas_history),
            peak_rps=_on(times, self.peak_history),
        )
