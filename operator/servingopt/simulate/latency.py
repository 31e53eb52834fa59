"""Ground-truth latency of one replica in the replay: a closed form, vectorised per tick.

The simulator needs, for every second of a week-long replay, the fraction of requests
that finish within the SLO and the latency quantiles, at whatever load each replica
sees.  A discrete-event simulation per second is far too slow, so each replica is
described by a closed-form approximation of a dynamic batcher (maximum batch ``B``,
maximum queue delay ``D``, service time ``t(b)`` of a batch of ``b``):

* batch size: ``b = clip(max(1 + lamD, lam t(b)), 1, B)`` (fixed point) — at low load a
  batch is the first request plus whatever arrives during the delay window; at high
  load it is what arrives while the previous batch runs;
* a request waits ``F ~ Uniform[0, f]`` before its batch starts, with
  ``f = (1 - rho) min(D, (b - 1)/lam) + rho t(b)`` (batch formation when the server is idle,
  the residual of the running batch when it is busy; ``rho = lam t(b) / b`` is the busy
  fraction);
* plus, near saturation, a queue of whole batches: with probability ``u = lam / mu_B``
  (load relative to the largest throughput ``mu_B = B / t(B)``) an exponential extra
  wait with mean ``theta = t(B) / (2 B (1 - u))`` (the diffusion approximation of a bulk
  service queue: arrivals during one batch have variance ``u B``, the queue drains
  ``(1 - u) B`` per batch);
* then the batch's own service time ``t(b)``.

``P(latency > x) = (1 - u) P(F > y) + u P(F + E > y)`` with ``y = x - t(b)``, which has
a closed form.  This model is deliberately separate from :mod:`servingopt.model` (the
planner's model): the replay must not grade the planner with its own yardstick.  Its
accuracy against the discrete-event batcher of :mod:`servingopt.model.des` is checked
in the unit tests.

Everything per-tick is tabulated once per (profile, B, D) on a grid of loads and
interpolated, so evaluating a week of ticks costs a few array operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Loads at or above this fraction of the largest throughput are treated as saturated.
SATURATION = 0.995
_GRID = 257


@dataclass(frozen=True)
class ServiceCurve:
    """Service time (ms) of one batch as a function of batch size, piecewise linear.

    Beyond the last point the last segment's slope continues (one point: proportional).
    """

    batches: tuple[float, ...]
    times_ms: tuple[float, ...]

    @classmethod
    def from_points(cls, points: Sequence[tuple[float, float]]) -> ServiceCurve:
        if not points:
            raise ValueError("a service curve needs at least one point")
        ordered = sorted((float(b), float(t)) for b, t in points)
        if ordered[0][0] < 1 or any(t <= 0 for _, t in ordered):
            raise ValueError("batch sizes must be >= 1 and times > 0")
        times = np.maximum.accumulate([t for _, t in ordered])
        return cls(tuple(b for b, _ in ordered), tuple(float(t) for t in times))

    def scaled(self, factor: float) -> ServiceCurve:
        """Every service time multiplied by ``factor`` (> 1: slower than declared)."""
        return ServiceCurve(self.batches, tuple(t * factor for t in self.times_ms))

    def __call__(self, batch: npt.ArrayLike) -> FloatArray:
        x = np.maximum(np.asarray(batch, dtype=np.float64), 1.0)
        bs = np.asarray(self.batches)
        ts = np.asarray(self.times_ms)
        if bs.size == 1:
            return np.asarray(ts[0] * x / bs[0], dtype=np.float64)
        y = np.interp(x, bs, ts)
        tail = (ts[-1] - ts[-2]) / (bs[-1] - bs[-2])
        head = (ts[1] - ts[0]) / (bs[1] - bs[0])
        y = np.where(x > bs[-1], ts[-1] + tail * (x - bs[-1]), y)
        y = np.where(x < bs[0], np.maximum(ts[0] - head * (bs[0] - x), 0.05 * ts[0]), y)
        return np.asarray(y, dtype=np.float64)


@dataclass(frozen=True)
class ReplicaLatency:
    """Latency distribution of one replica as a function of its request rate."""

    curve: ServiceCurve
    max_batch: int
    max_delay_ms: float

    @cached_property
    def max_rps(self) -> float:
        """Largest sustainable request rate (full batches back to back)."""
        return float(1000.0 * self.max_batch / self.curve(self.max_batch))

    @cached_property
    def _table(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """Per load fraction u: service time s, formation window f, queue share u, theta."""
        u = np.linspace(0.0, SATURATION, _GRID)
        lam = u * self.max_rps / 1000.0  # requests per ms
        big_b = float(self.max_batch)
        b = np.ones_like(lam)
        for _ in range(60):  # monotone fixed point; converges in a few dozen steps
            b = np.clip(np.maximum(1.0 + lam * self.max_delay_ms, lam * self.curve(b)), 1.0, big_b)
        busy = np.minimum(lam * self.curve(b) / b, 1.0)
        # Batch sizes vary (Poisson arrivals): the batch running when a request arrives
        # and the one it joins are, in the tail, about one standard deviation larger.
        spread = np.minimum(b + np.sqrt(b) * busy, big_b)
        s = self.curve(spread)
        fill = np.where(
            lam > 0, np.minimum(self.max_delay_ms, (b - 1.0) / np.maximum(lam, 1e-12)), 0
        )
        f = (1.0 - busy) * fill + busy * s
        theta = float(self.curve(big_b)) / (2.0 * big_b * (1.0 - u))
        return u, s, f, u.copy(), theta

    def parameters(self, rate_rps: npt.ArrayLike) -> tuple[FloatArray, ...]:
        """(s, f, q, theta) at each rate: service time, formation window, queue share, mean."""
        u = np.clip(np.asarray(rate_rps, dtype=np.float64) / self.max_rps, 0.0, SATURATION)
        grid, s, f, q, theta = self._table
        return (
            np.interp(u, grid, s),
            np.interp(u, grid, f),
            np.interp(u, grid, q),
            np.interp(u, grid, theta),
        )

    def survival(self, x_ms: npt.ArrayLike, rate_rps: npt.ArrayLike) -> FloatArray:
        """P(latency > x) at the given per-replica rate(s); broadcasts."""
        s, f, q, theta = self.parameters(rate_rps)
        return survival(np.asarray(x_ms, dtype=np.float64), s, f, q, theta)

    def mean_ms(self, rate_rps: npt.ArrayLike) -> FloatArray:
        s, f, q, theta = self.parameters(rate_rps)
        return np.asarray(s + f / 2.0 + q * theta, dtype=np.float64)

    def quantile_ms(self, p: float, rate_rps: float) -> float:
        """The ``p`` quantile of latency (ms) at a per-replica rate, by bisection."""
        lo, hi = 0.0, 1.0
        while float(self.survival(hi, rate_rps)) > 1.0 - p:
            hi *= 2.0
        for _ in range(60):
            mid = (lo + hi) / 2.0
            if float(self.survival(mid, rate_rps)) > 1.0 - p:
                lo = mid
            else:
                hi = mid
        return hi

    def capacity_at(self, slo_ms: float, quantile: float = 0.99) -> float:
        """Highest per-replica rate whose ``quantile`` latency is within ``slo_ms`` (0 if none)."""
        grid, s, f, q, theta = self._table
        tail = survival(np.full_like(grid, slo_ms), s, f, q, theta)
        over = np.nonzero(tail > 1.0 - quantile)[0]
        if over.size == 0:
            return float(grid[-1] * self.max_rps)
        i = int(over[0])
        if i == 0:
            return 0.0
        lo, hi = float(grid[i - 1]), float(grid[i])
        for _ in range(30):  # refine between two grid loads
            mid = (lo + hi) / 2.0
            if float(self.survival(slo_ms, mid * self.max_rps)) > 1.0 - quantile:
                hi = mid
            else:
                lo = mid
        return lo * self.max_rps

    def survival_table(self, x_ms: FloatArray) -> FloatArray:
        """P(latency > x) for every tabulated load (rows) and every ``x`` (columns)."""
        key = tuple(np.round(x_ms, 9).tolist())
        cache = self._tables
        if key not in cache:
            _, s, f, q, theta = self._table
            cache[key] = survival(x_ms[None, :], s[:, None], f[:, None], q[:, None], theta[:, None])
        return cache[key]

    @cached_property
    def _tables(self) -> dict[tuple[float, ...], FloatArray]:
        return {}

    def survival_at_loads(self, x_ms: FloatArray, rate_rps: FloatArray) -> FloatArray:
        """Rows of P(latency > x) for per-replica rates, interpolated from the table."""
        table = self.survival_table(x_ms)
        u = np.clip(rate_rps / self.max_rps, 0.0, SATURATION) / SATURATION * (_GRID - 1)
        i = np.minimum(u.astype(np.int64), _GRID - 2)
        w = (u - i)[:, None]
        return np.asarray(table[i] * (1.0 - w) + table[i + 1] * w, dtype=np.float64)


def survival(
    x_ms: FloatArray, s: FloatArray, f: FloatArray, q: FloatArray, theta: FloatArray
) -> FloatArray:
    """P(s + F + E > x) with F ~ U[0, f] and E = 0 w.p. 1-q, Exp(theta) w.p. q; broadcasts."""
    y = np.asarray(x_ms - s, dtype=np.float64)
    yp = np.maximum(y, 0.0)
    th = np.maximum(theta, 1e-9)
    fs = np.maximum(f, 1e-9)
    uniform_tail = np.clip(1.0 - yp / fs, 0.0, 1.0)
    decay = np.exp(-yp / th)
    inside = ((fs - yp) + th * (1.0 - decay)) / fs
    beyond = (th / fs) * (np.exp(-np.maximum(yp - fs, 0.0) / th) - decay)
    mixed = np.where(yp < fs, inside, beyond)
    out = (1.0 - q) * uniform_tail + q * np.minimum(mixed, 1.0)
    return np.asarray(np.where(y <= 0.0, 1.0, out), dtype=np.float64)
