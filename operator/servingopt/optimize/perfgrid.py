"""Capacity at the SLO and p99 for many (profile, B, D) candidates at once.

Interpolates the normalised queue table (:mod:`servingopt.optimize.queue_table`)
for ``N`` latency profiles x ``nb`` batch sizes x ``nd`` queue delays in one numpy
pass, so a plan can sweep a whole catalog within milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from servingopt.model import LatencyProfile
from servingopt.optimize.queue_table import QueueTable, packaged_table

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


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
    return np.where(never, loads[-1], np.where(first == 0, 0.0, rho))
