"""Capacity at the SLO and p99 for many (profile, B, D) candidates at once.

Interpolates the normalised queue table (:mod:`servingopt.optimize.queue_table`)
for ``N`` latency profiles x ``nb`` batch sizes x ``nd`` queue delays in one numpy
pass, so a plan can sweep a whole catalog within milliseconds.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

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


def _summary(bs: FloatArray, ts: FloatArray, batches: Sequence[int]) -> FloatArray:
    """``[shape, t(1), t(B) for B in batches]`` per row of measured points ``(G, n)``.

    The same curve as :meth:`LatencyProfile.from_points` followed by
    ``service_time_ms`` (running maximum, least-squares line, piecewise-linear
    inside, line or last-segment slope outside), vectorised over ``G`` profiles with
    ``n`` points each: a plan reads hundreds of profiles and needs only these few
    numbers from each.  Batch sizes must be increasing and unique (the API's rule).
    """
    run = np.maximum.accumulate(ts, axis=1)
    g, n = bs.shape
    if n == 1:
        a = np.zeros(g)
        c = run[:, 0] / bs[:, 0]
        fits = np.ones(g, dtype=bool)
        tail = head = c
    else:
        mb, mt = bs.mean(axis=1), run.mean(axis=1)
        db = bs - mb[:, None]
        c = (db * (run - mt[:, None])).sum(axis=1) / (db * db).sum(axis=1)
        a = mt - c * mb
        a = np.where(c < 0.0, mt, a)
        c = np.maximum(c, 0.0)
        through_origin = (bs * run).sum(axis=1) / (bs * bs).sum(axis=1)
        c = np.where(a < 0.0, through_origin, c)
        a = np.maximum(a, 0.0)
        resid = np.abs(a[:, None] + c[:, None] * bs - run) / run
        fits = resid.max(axis=1) <= DEFAULT_LINEAR_FIT_TOLERANCE
        last = (run[:, -1] - run[:, -2]) / (bs[:, -1] - bs[:, -2])
        first = (run[:, 1] - run[:, 0]) / (bs[:, 1] - bs[:, 0])
        tail = np.maximum(np.where(fits, c, last), 0.0)
        head = np.where(fits, c, first)
    out = np.empty((g, 2 + len(batches)))
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, 0] = np.where(a + c > 0, a / (a + c), 0.0)
    rows = np.arange(g)
    for col, x in enumerate((1.0, *map(float, batches)), start=1):
        i = np.clip((bs <= x).sum(axis=1) - 1, 0, max(n - 2, 0))
        if n > 1:
            lo_b, hi_b = bs[rows, i], bs[rows, i + 1]
            inside = run[rows, i] + (run[rows, i + 1] - run[rows, i]) * (x - lo_b) / (hi_b - lo_b)
        else:
            inside = run[:, 0]
        above = run[:, -1] + tail * (x - bs[:, -1])
        below = np.maximum(run[:, 0] - head * (bs[:, 0] - x), 0.05 * run[:, 0])
        out[:, col] = np.where(x > bs[:, -1], above, np.where(x < bs[:, 0], below, inside))
    return out


def points_arrays(
    points: Sequence[Points], batches: Sequence[int], factors: Sequence[float]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Like :func:`profile_arrays`, from raw points, service times scaled by ``factors``."""
    rows = _summaries(tuple(points), tuple(batches))
    f = np.asarray(factors, dtype=np.float64)
    return rows[:, 1] * f, rows[:, 2:] * f[:, None], rows[:, 0]


@lru_cache(maxsize=32)
def _summaries(points: tuple[Points, ...], batches: tuple[int, ...]) -> FloatArray:
    """:func:`_summary` of every profile; cached, as a re-plan reads the same profiles."""
    rows = np.zeros((len(points), 2 + len(batches)))
    by_length: dict[int, list[int]] = {}
    for i, (b, _) in enumerate(points):
        by_length.setdefault(len(b), []).append(i)
    for idx in by_length.values():
        bs = np.array([points[i][0] for i in idx], dtype=np.float64)
        ts = np.array([points[i][1] for i in idx], dtype=np.float64)
        rows[idx] = _summary(bs, ts, batches)
    rows.flags.writeable = False
    return rows


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
    nb = bs.size
    ib, wb = _bracket(tab.log_batches, np.log2(bs.astype(np.float64)))
    is_, ws = _bracket(tab.shapes, np.clip(shapes, 0.0, float(tab.shapes[-1])))
    ratio = np.where(bs[None, :, None] > 1, ds[None, None, :], 0.0) / full_ms[:, :, None]
    id_, wd = _bracket(tab.delay_ratios, ratio)
    beyond = ratio > tab.delay_ratios[-1]

    # batch sizes are shared by every profile: interpolate the table in log B first
    by_batch = (1.0 - wb)[:, None, None, None] * tab.p99[ib] + wb[:, None, None, None] * tab.p99[
        ib + 1
    ]  # (nb, shapes, delay ratios, loads)
    # then each (profile, B, D) reads its four (shape, delay ratio) corners only
    # (the same arithmetic per cell as interpolating every delay ratio first)
    cols3, s3 = np.arange(nb)[None, :, None], is_[:, None, None]
    w3 = ws[:, None, None, None]
    # (in place: the same operations in the same order, fewer temporaries)
    lower = _blend(by_batch[cols3, s3, id_], by_batch[cols3, s3 + 1, id_], w3)
    curve_ms = _blend(by_batch[cols3, s3, id_ + 1], by_batch[cols3, s3 + 1, id_ + 1], w3)
    curve_ms -= lower  # upper - lower
    curve_ms *= wd[..., None]
    curve_ms += lower  # (N, nb, nd, loads)
    curve_ms *= full_ms[:, :, None, None]
    # a lone request: exact from the profile rather than interpolated; the table's
    # curves are non-decreasing, so the running maximum is a plain maximum with it
    lone = one_ms[:, None, None] + np.where(bs[None, :, None] > 1, ds[None, None, :], 0.0)
    curve_ms[..., 0] = lone
    np.maximum(curve_ms[..., 1:], lone[..., None], out=curve_ms[..., 1:])
    curve_ms[beyond] = np.inf

    limit = 1000.0 * bs[None, :] / full_ms
    capacity = _capacity(curve_ms, tab.loads, slo_ms) * limit[:, :, None]
    return PerfGrid(
        bs, ds, limit, capacity, lone + np.where(beyond, np.inf, 0.0), curve_ms, tab.loads
    )


def _blend(a: FloatArray, b: FloatArray, w: FloatArray) -> FloatArray:
    """``(1 - w) * a + w * b``, in ``a``'s storage (``a`` and ``b`` are fresh copies)."""
    a *= 1.0 - w
    b *= w
    a += b
    return a


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


def _bracket_one(grid: list[float], x: float) -> tuple[int, float]:
    """:func:`_bracket` for one value."""
    i = min(max(bisect_right(grid, x) - 1, 0), len(grid) - 2)
    lo, hi = grid[i], grid[i + 1]
    return i, min(max((x - lo) / (hi - lo), 0.0), 1.0)


@dataclass(frozen=True)
class _TableLists:
    """A queue table as nested Python lists: one-setting lookups read a few cells,
    and a list element costs a fraction of a NumPy scalar."""

    log_batches: list[float]
    shapes: list[float]
    delay_ratios: list[float]
    loads: list[float]
    p99: list[list[list[list[float]]]]


_LISTS: dict[int, tuple[QueueTable, _TableLists]] = {}


def _lists(table: QueueTable) -> _TableLists:
    """The lists of ``table``, made once per table (kept with it, keyed by identity)."""
    held = _LISTS.get(id(table))
    if held is None or held[0] is not table:
        lists = _TableLists(
            table.log_batches.tolist(),
            table.shapes.tolist(),
            table.delay_ratios.tolist(),
            table.loads.tolist(),
            table.p99.tolist(),
        )
        if len(_LISTS) >= 4:
            _LISTS.clear()
        held = _LISTS[id(table)] = (table, lists)
    return held[1]


def _maximum(a: float, b: float) -> float:
    """``np.maximum`` of two floats (NaN wins)."""
    return a if math.isnan(a) or a >= b else b


def _interp(x: float, xp: list[float], fp: list[float]) -> float:
    """``np.interp(x, xp, fp)`` for one finite ``x`` within ``xp``, step for step."""
    if x >= xp[-1]:
        return fp[-1]
    j = max(bisect_right(xp, x) - 1, 0)
    if xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    out = slope * (x - xp[j]) + fp[j]
    if math.isnan(out):
        out = slope * (x - xp[j + 1]) + fp[j + 1]
        if math.isnan(out) and fp[j] == fp[j + 1]:
            out = fp[j]
    return out


def p99_one(
    one_ms: float,
    full_ms: float,
    shape: float,
    batch: int,
    delay_ms: float,
    rate_rps: float,
    table: QueueTable | None = None,
) -> float:
    """``build(...).p99_at((0, 0, 0), rate_rps)`` for a single setting, without the grid.

    Learning predicts one p99 per evidence bucket, a few per plan; the same
    interpolation as :func:`build`, in the same order, on the one curve it needs.
    """
    tab = _lists(table or packaged_table())
    ib, wb = _bracket_one(tab.log_batches, float(np.log2(float(batch))))
    is_, ws = _bracket_one(tab.shapes, min(max(shape, 0.0), tab.shapes[-1]))
    wait = delay_ms if batch > 1 else 0.0
    ratio = wait / full_ms
    if ratio > tab.delay_ratios[-1]:
        return math.inf
    id_, wd = _bracket_one(tab.delay_ratios, ratio)
    rho = rate_rps / (1000.0 * batch / full_ms)
    if not math.isfinite(rho) or rho > tab.loads[-1]:
        return math.inf
    x = max(rho, 0.0)
    # only the two curve points around the load are needed; same arithmetic as build
    loads = tab.loads
    j = min(max(bisect_right(loads, x) - 1, 0), len(loads) - 2)
    lone = one_ms + wait
    points = [
        _curve_point(tab.p99, (ib, is_, id_), (wb, ws, wd), k, full_ms, lone) for k in (j, j + 1)
    ]
    return _interp(x, loads[j : j + 2], points)


def _curve_point(
    p99: list[list[list[list[float]]]],
    at: tuple[int, int, int],
    weights: tuple[float, float, float],
    k: int,
    full_ms: float,
    lone: float,
) -> float:
    """The grid curve of :func:`build` at load index ``k`` for one setting."""
    if k == 0:
        return lone
    (ib, is_, id_), (wb, ws, wd) = at, weights

    def by_batch(s: int, d: int) -> float:
        return (1.0 - wb) * p99[ib][s][d][k] + wb * p99[ib + 1][s][d][k]

    def by_shape(d: int) -> float:
        return (1.0 - ws) * by_batch(is_, d) + ws * by_batch(is_ + 1, d)

    low, high = by_shape(id_), by_shape(id_ + 1)
    return _maximum((low + wd * (high - low)) * full_ms, lone)
