"""Capacity at the SLO and p99 for many (profile, B, D) candidates at once.

Interpolates the normalised queue table (:mod:`servingopt.optimize.queue_table`)
for ``N`` latency profiles x ``nb`` batch sizes x ``nd`` queue delays in one numpy
pass, so a plan can sweep a whole catalog within milliseconds.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from servingopt.model import DEFAULT_LINEAR_FIT_TOLERANCE, LatencyProfile
from servingopt.optimize.queue_table import QueueTable, packaged_table

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Never plan a replica above this fraction of its stability limit, however loose the
#: SLO (the same cap as ``servingopt.model.capacity_at_slo``): near saturation any
#: service-time error or burst makes the queue explode.
MAX_LOAD_FRACTION = 0.95


@dataclass(frozen=True, eq=False)
class PerfGrid:
    """Per-replica performance of every candidate, shapes ``(N, nb, nd)``.

    Attributes:
        batches: the ``nb`` max batch sizes.
        delays_ms: the ``nd`` max queue delays.
        limit_rps: stability limit ``1000 B / t(B)`` per (profile, B), ``(N, nb)``.
        capacity_rps: highest per-replica rate whose p99 meets the SLO on the whole
            range below it; 0 where the SLO cannot be met at all.
        zero_load_p99_ms: p99 of a lone request (``D + t(1)``, or ``t(1)`` for B = 1).
        curves_ms: p99 at the table's loads (fractions of ``limit_rps``), ``(N, nb, nd, L)``.
        loads: those fractions.
    """

    batches: IntArray
    delays_ms: FloatArray
    limit_rps: FloatArray
    capacity_rps: FloatArray
    zero_load_p99_ms: FloatArray
    curves_ms: FloatArray
    loads: FloatArray

    def p99_at(self, index: tuple[int, int, int], rate_rps: float) -> float:
        """Interpolated p99 (ms) of one candidate at a per-replica rate; inf past the table."""
        i, j, k = index
        rho = rate_rps / float(self.limit_rps[i, j])
        if not np.isfinite(rho) or rho > float(self.loads[-1]):
            return float("inf")
        return float(np.interp(max(rho, 0.0), self.loads, self.curves_ms[i, j, k]))


def _bracket(grid: FloatArray, x: FloatArray) -> tuple[IntArray, FloatArray]:
    """Lower grid index and weight of the upper neighbour (clipped to the grid)."""
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    w = (x - grid[i]) / (grid[i + 1] - grid[i])
    return i.astype(np.int64), np.clip(w, 0.0, 1.0)


def profile_arrays(
    profiles: Sequence[LatencyProfile], batches: Sequence[int]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``t(1)`` ``(N,)``, ``t(B)`` ``(N, nb)`` and shape ``a / (a + c)`` ``(N,)``."""
    b = np.asarray(batches, dtype=np.float64)
    full = np.stack([p.service_time_ms(b) for p in profiles]) if profiles else np.zeros((0, b.size))
    one = np.array([float(p.service_time_ms(1.0)) for p in profiles])
    shape = np.array([p.a_ms / (p.a_ms + p.c_ms) if p.a_ms + p.c_ms > 0 else 0.0 for p in profiles])
    return one, full, shape


Points = tuple[tuple[float, ...], tuple[float, ...]]


def _summary(bs: Sequence[float], ts: Sequence[float], batches: Sequence[int]) -> list[float]:
    """``[shape, t(1), t(B) for B in batches]`` of measured points, in plain Python.

    The same curve as :meth:`LatencyProfile.from_points` followed by
    ``service_time_ms`` (running maximum, least-squares line, piecewise-linear
    inside, line or last-segment slope outside), without building the object: a plan
    reads hundreds of profiles and needs only these few numbers from each.  Batch
    sizes must be increasing and unique (the API's rule).
    """
    run: list[float] = []
    top = 0.0
    for t in ts:
        top = max(top, t)
        run.append(top)
    n = len(bs)
    if n == 1:
        a, c, fits = 0.0, run[0] / bs[0], True
        tail = c
    else:
        mb, mt = sum(bs) / n, sum(run) / n
        sxx = sum((b - mb) ** 2 for b in bs)
        c = sum((b - mb) * (t - mt) for b, t in zip(bs, run, strict=True)) / sxx
        a = mt - c * mb
        if c < 0.0:
            c, a = 0.0, mt
        if a < 0.0:
            a = 0.0
            c = sum(b * t for b, t in zip(bs, run, strict=True)) / sum(b * b for b in bs)
        fits = all(
            abs(a + c * b - t) / t <= DEFAULT_LINEAR_FIT_TOLERANCE
            for b, t in zip(bs, run, strict=True)
        )
        last = (run[-1] - run[-2]) / (bs[-1] - bs[-2])
        tail = max(c if fits else last, 0.0)
    head = c if fits or n == 1 else (run[1] - run[0]) / (bs[1] - bs[0])

    def at(x: float) -> float:
        if x > bs[-1]:
            return run[-1] + tail * (x - bs[-1])
        if x < bs[0]:
            return max(run[0] - head * (bs[0] - x), 0.05 * run[0])
        i = bisect_right(bs, x) - 1
        if i >= n - 1:
            return run[-1]
        return run[i] + (run[i + 1] - run[i]) * (x - bs[i]) / (bs[i + 1] - bs[i])

    shape = a / (a + c) if a + c > 0 else 0.0
    return [shape, at(1.0), *(at(float(b)) for b in batches)]


def points_arrays(
    points: Sequence[Points], batches: Sequence[int], factors: Sequence[float]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Like :func:`profile_arrays`, from raw points, service times scaled by ``factors``."""
    if not points:
        return np.zeros(0), np.zeros((0, len(batches))), np.zeros(0)
    rows = np.array([_summary(b, t, batches) for b, t in points])
    f = np.asarray(factors, dtype=np.float64)
    return rows[:, 1] * f, rows[:, 2:] * f[:, None], rows[:, 0]


def build(
    one_ms: FloatArray,
    full_ms: FloatArray,
    shapes: FloatArray,
    batches: Sequence[int],
    delays_ms: Sequence[float],
    slo_ms: float,
    table: QueueTable | None = None,
) -> PerfGrid:
    """Performance of ``N`` profiles (given by ``t(1)``, ``t(B)`` and shape) on a (B, D) grid.

    Delays longer than the table covers (``D > 8 t(B)``) are marked infeasible; a
    delay is ignored when ``B = 1`` (nothing to wait for).
    """
    tab = table or packaged_table()
    bs = np.asarray(batches, dtype=np.int64)
    ds = np.asarray(delays_ms, dtype=np.float64)
    n, nb, nd = one_ms.size, bs.size, ds.size
    ib, wb = _bracket(tab.log_batches, np.log2(bs.astype(np.float64)))
    is_, ws = _bracket(tab.shapes, np.clip(shapes, 0.0, float(tab.shapes[-1])))
    ratio = np.where(bs[None, :, None] > 1, ds[None, None, :], 0.0) / full_ms[:, :, None]
    id_, wd = _bracket(tab.delay_ratios, ratio)
    beyond = ratio > tab.delay_ratios[-1]

    ib_ = ib[None, :, None]
    wb_ = wb[None, :, None, None]
    is3 = is_[:, None, None]
    ws_ = ws[:, None, None, None]
    wd_ = wd[..., None]
    curve = np.zeros((n, nb, nd, tab.loads.size))
    for db, fb in ((0, 1.0 - wb_), (1, wb_)):
        for dsh, fs in ((0, 1.0 - ws_), (1, ws_)):
            for dd, fd in ((0, 1.0 - wd_), (1, wd_)):
                corner = tab.p99[ib_ + db, is3 + dsh, id_ + dd]
                curve += corner * (fb * fs * fd)
    curve_ms = curve * full_ms[:, :, None, None]
    # a lone request: exact from the profile rather than interpolated
    lone = one_ms[:, None, None] + np.where(bs[None, :, None] > 1, ds[None, None, :], 0.0)
    curve_ms[..., 0] = lone
    curve_ms = np.maximum.accumulate(curve_ms, axis=-1)
    curve_ms[beyond] = np.inf

    limit = 1000.0 * bs[None, :] / full_ms
    capacity = _capacity(curve_ms, tab.loads, slo_ms) * limit[:, :, None]
    return PerfGrid(
        bs, ds, limit, capacity, lone + np.where(beyond, np.inf, 0.0), curve_ms, tab.loads
    )


def _capacity(curves: FloatArray, loads: FloatArray, slo_ms: float) -> FloatArray:
    """Highest load fraction with the (non-decreasing) curve at or below ``slo_ms``."""
    over = curves > slo_ms
    first = np.argmax(over, axis=-1)
    never = ~over.any(axis=-1)
    j = np.clip(first, 1, loads.size - 1)
    lo = np.take_along_axis(curves, (j - 1)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(curves, j[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(np.isfinite(hi) & (hi > lo), (slo_ms - lo) / (hi - lo), 0.0)
    rho = loads[j - 1] + np.clip(frac, 0.0, 1.0) * (loads[j] - loads[j - 1])
    rho = np.where(never, loads[-1], np.where(first == 0, 0.0, rho))
    return np.minimum(rho, MAX_LOAD_FRACTION)
