"""What the planner knows about the running system: a plain, I/O-free snapshot.

The operator builds an :class:`Observation` from Prometheus and the cluster; the
``servingopt plan`` command builds one from a history CSV or ``--rps``.  Every field
is optional except that some demand must be known (a history or ``demand_rps``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .correction import ProfileCorrection

FloatArray = npt.NDArray[np.float64]

#: How far back the planner reads the history: two days, so that the forecast can
#: compare each hour with the same hour the day before and check its own errors over
#: the last day, plus the hour that comparison starts from.
HISTORY_SECONDS = 49 * 3600

#: Key of a learned correction: (instance type, variant name).
CorrectionKey = tuple[str, str]


def _empty() -> FloatArray:
    return np.zeros(0, dtype=np.float64)


@dataclass(frozen=True)
class RunningConfig:
    """The configuration serving now (what the observed metrics describe)."""

    instance_type: str | None = None
    variant: str | None = None
    capacity_type: str | None = None
    replicas: int | None = None
    max_batch_size: int | None = None
    max_queue_delay_ms: float | None = None
    cache_enabled: bool | None = None
    cache_size_mib: int | None = None


@dataclass(frozen=True, eq=False)
class Observation:
    """Demand history and observed behaviour, as arrays (one entry per interval).

    Attributes:
        timestamps_s: interval start times in unix seconds, increasing.
        requests_per_second: demand per interval (all replicas together).
        p99_latency_ms: observed p99 per interval (NaN where unknown); same length.
        replicas: replicas serving per interval (NaN where unknown).
        instance_types: instance type per interval ("" where unknown).
        variants: variant per interval ("" where unknown).
        max_batch_sizes: max batch size per interval (NaN where unknown).
        peak_requests_per_second: peak short-window demand per interval (NaN where
            unknown; empty: not measured), for bursts within the interval.
        demand_rps: demand to plan for when there is no history (or to override the
            forecast's level), requests per second.
        cache_hit_rate: observed response-cache hit rate (0..1), if a cache runs.
        current: the configuration running now.
        corrections: service-time corrections learned by earlier plans, by
            (instance type, variant); the plan folds the new evidence in and returns
            the result in :attr:`Decision.corrections`.
        namespace_spend_hourly: $/h of the other ModelServings of the namespace (for
            the policy's per-namespace budget).
    """

    timestamps_s: FloatArray = field(default_factory=_empty)
    requests_per_second: FloatArray = field(default_factory=_empty)
    p99_latency_ms: FloatArray = field(default_factory=_empty)
    replicas: FloatArray = field(default_factory=_empty)
    instance_types: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    max_batch_sizes: FloatArray = field(default_factory=_empty)
    peak_requests_per_second: FloatArray = field(default_factory=_empty)
    demand_rps: float | None = None
    cache_hit_rate: float | None = None
    current: RunningConfig = RunningConfig()
    corrections: Mapping[CorrectionKey, ProfileCorrection] = field(default_factory=dict)
    namespace_spend_hourly: float = 0.0

    def __post_init__(self) -> None:
        n = self.requests_per_second.size
        if self.timestamps_s.size != n:
            raise ValueError("timestamps_s and requests_per_second differ in length")
        for name in ("p99_latency_ms", "replicas", "max_batch_sizes", "peak_requests_per_second"):
            size = getattr(self, name).size
            if size not in (0, n):
                raise ValueError(f"{name} has {size} entries, expected 0 or {n}")
        for name in ("instance_types", "variants"):
            size = len(getattr(self, name))
            if size not in (0, n):
                raise ValueError(f"{name} has {size} entries, expected 0 or {n}")

    @property
    def has_history(self) -> bool:
        return self.requests_per_second.size > 0

    @classmethod
    def from_rps(cls, demand_rps: float, **kwargs: object) -> Observation:
        """An observation that only says how much demand to plan for."""
        return cls(demand_rps=demand_rps, **kwargs)  # type: ignore[arg-type]
