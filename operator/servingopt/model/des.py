"""Discrete-event simulation of one replica with a dynamic batcher.

This is the reference the analytical queue model (:mod:`servingopt.model.queue`) is
validated against, and a building block for the trace simulator (it accepts any
sorted arrival times, not only Poisson ones).

Batcher semantics (Triton-style dynamic batcher, one model instance):

* Requests wait in one FIFO queue.
* When the server is free and the queue is not empty, the next batch is dispatched as
  soon as either the queue holds ``max_batch`` requests, or the *oldest* waiting
  request has waited ``max_delay_ms``.  The batch takes ``min(queue, max_batch)``
  requests from the head of the queue.
* A batch of ``b`` requests occupies the server for ``t(b)`` ms (the latency profile),
  optionally multiplied by a random jitter factor.

With the arrival times ``a`` sorted and ``i`` the first request not yet dispatched,
the dispatch time of the next batch is therefore

    d = max(server_free, min(a[i] + D, a[i + B - 1]))

(``a[i + B - 1]`` is +inf when fewer than ``B`` requests are left), and its size is the
number of requests with index >= i that arrived by ``d``, capped at ``B``.  The loop
runs once per *batch*, not per request, with bisection over a Python list, which keeps
100k requests well under a second.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from servingopt.model.profile import LatencyProfile

__all__ = ["SimulationResult", "poisson_arrivals_ms", "simulate_batching"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Outcome of :func:`simulate_batching`.

    Attributes:
        latencies_ms: per request, completion minus arrival (ms), in arrival order.
        batch_sizes: size of every dispatched batch, in dispatch order.
        busy_ms: total time the server spent executing batches.
        horizon_ms: time of the last completion minus time of the first arrival.
    """

    latencies_ms: FloatArray
    batch_sizes: IntArray
    busy_ms: float
    horizon_ms: float

    def quantile_ms(self, q: float, *, warmup: float = 0.0) -> float:
        """Latency quantile (``q`` in [0, 1]) after dropping the first ``warmup`` fraction."""
        lat = self.latencies_ms[int(warmup * self.latencies_ms.size) :]
        return float(np.quantile(lat, q))

    def mean_ms(self, *, warmup: float = 0.0) -> float:
        """Mean latency after dropping the first ``warmup`` fraction of requests."""
        lat = self.latencies_ms[int(warmup * self.latencies_ms.size) :]
        return float(np.mean(lat))

    @property
    def mean_batch(self) -> float:
        """Mean dispatched batch size."""
        return float(np.mean(self.batch_sizes))

    @property
    def utilisation(self) -> float:
        """Fraction of the horizon the server was busy."""
        return self.busy_ms / self.horizon_ms if self.horizon_ms > 0 else 0.0


def poisson_arrivals_ms(
    rate_rps: float, n_requests: int, rng: np.random.Generator, *, start_ms: float = 0.0
) -> FloatArray:
    """``n_requests`` Poisson arrival times (ms, sorted) at ``rate_rps`` requests/second."""
    if rate_rps <= 0.0 or n_requests < 0:
        raise ValueError("need rate_rps > 0 and n_requests >= 0")
    gaps = rng.exponential(1000.0 / rate_rps, size=n_requests)
    return np.asarray(start_ms + np.cumsum(gaps), dtype=np.float64)


def simulate_batching(
    arrivals_ms: FloatArray | npt.ArrayLike,
    profile: LatencyProfile,
    max_batch: int,
    max_delay_ms: float,
    *,
    service_jitter_cv: float = 0.0,
    rng: np.random.Generator | None = None,
) -> SimulationResult:
    """Simulate one replica's dynamic batcher over the given arrivals.

    Args:
        arrivals_ms: arrival times (ms), non-decreasing.
        profile: service time of a batch as a function of its size.
        max_batch: ``B``, the largest batch the server takes (>= 1).
        max_delay_ms: ``D``, how long the oldest request may wait for a batch to fill.
        service_jitter_cv: coefficient of variation of a lognormal factor (mean 1)
            applied to every batch's service time; 0 keeps service deterministic.
        rng: random generator for the jitter (required when the jitter is non-zero).

    Returns:
        Per-request latencies, batch sizes and busy time.
    """
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")
    if max_delay_ms < 0.0:
        raise ValueError("max_delay_ms must be >= 0")
    arr = np.asarray(arrivals_ms, dtype=np.float64).reshape(-1)
    n = int(arr.size)
    if n == 0:
        return SimulationResult(
            latencies_ms=np.zeros(0),
            batch_sizes=np.zeros(0, dtype=np.int64),
            busy_ms=0.0,
            horizon_ms=0.0,
        )
    if np.any(np.diff(arr) < 0.0):
        raise ValueError("arrival times must be sorted")

    table = profile.service_time_table(max_batch).tolist()
    a: list[float] = arr.tolist()
    big_b = int(max_batch)
    delay = float(max_delay_ms)

    jitter: list[float] | None = None
    if service_jitter_cv > 0.0:
        if rng is None:
            raise ValueError("rng is required when service_jitter_cv > 0")
        sigma2 = float(np.log1p(service_jitter_cv**2))
        # enough factors for the worst case of one request per batch
        jitter = rng.lognormal(-0.5 * sigma2, np.sqrt(sigma2), size=n).tolist()

    sizes: list[int] = []
    completions: list[float] = []
    busy = 0.0
    free = -np.inf
    i = 0
    k = 0
    bisect_right = bisect.bisect_right
    while i < n:
        fill_idx = i + big_b - 1
        ready = a[i] + delay
        if fill_idx < n and a[fill_idx] < ready:
            ready = a[fill_idx]
        d = free if free > ready else ready
        hi = i + big_b if i + big_b < n else n
        j = bisect_right(a, d, i, hi)
        s = table[j - i]
        if jitter is not None:
            s *= jitter[k]
        free = d + s
        busy += s
        sizes.append(j - i)
        completions.append(free)
        i = j
        k += 1

    size_arr = np.asarray(sizes, dtype=np.int64)
    lat = np.repeat(np.asarray(completions, dtype=np.float64), size_arr) - arr
    return SimulationResult(
        latencies_ms=lat,
        batch_sizes=size_arr,
        busy_ms=busy,
        horizon_ms=float(completions[-1] - arr[0]),
    )
