"""Latency profiles: batch size -> service time of one batch, per (instance type, variant).

A *service time* here is the time one model replica spends executing a single batch of
``b`` requests (queueing excluded).  It is what a benchmark such as Triton's
``perf_analyzer`` or a simple timing loop measures, and what every other part of the
performance model builds on.

Shape of the curve
------------------
On accelerators the service time of a batch is well described by an affine law

    t(b) = a + c * b                                        (a >= 0, c >= 0)

``a`` is the fixed cost of a forward pass (kernel launches, weight reads, the
framework's per-call overhead) and ``c`` the marginal cost per request.  Throughput
``b / t(b)`` then grows with ``b`` towards ``1 / c``: batching pays.  On CPUs a batch
mostly costs ``b`` times a single request (``a ~ 0``), so ``t(b) ~ b * t(1)`` and
throughput is flat: batching only adds delay.  Both cases are the same formula with a
different ``a / c`` ratio, so nothing special is needed for CPU profiles — the queue
model and the capacity search simply find that large batches do not help there.

Measured profiles are not always affine (memory-bound kernels flatten, large batches
spill caches), so :class:`LatencyProfile` keeps the measured points and interpolates
between them piecewise-linearly.  The least-squares line is used to extrapolate beyond
the measured range (slope ``c``), and is reported (``a``, ``c``, ``fits_linear``) so
callers can see whether the affine law holds.  The curve is forced to be
non-decreasing (a larger batch never takes less time); throughput, on the other hand,
is *not* forced to grow — if a large batch really is slower per request, the capacity
search should see it.

Everything is in milliseconds and requests per second.  Pure: numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_LINEAR_FIT_TOLERANCE",
    "LatencyProfile",
    "estimate_profile",
]

FloatArray = npt.NDArray[np.float64]

#: Maximum relative residual of the least-squares line for ``fits_linear`` to be true.
DEFAULT_LINEAR_FIT_TOLERANCE = 0.10


def _as_float_array(values: Sequence[float] | FloatArray) -> FloatArray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


@dataclass(frozen=True, eq=False)
class LatencyProfile:
    """Service time of one batch as a function of batch size, for one replica.

    Build one with :meth:`from_points` (measurements) or :meth:`from_coefficients`
    (an affine law ``t(b) = a + c * b``); do not call the constructor directly.

    Attributes:
        batches: measured batch sizes, strictly increasing, all >= 1.
        times_ms: service time of each measured batch size (ms), non-decreasing
            (measurements that decrease are lifted to the running maximum).
        a_ms: intercept of the least-squares line ``t(b) = a + c * b`` (ms, >= 0).
        c_ms: slope of that line (ms per request, >= 0).
        fits_linear: whether the line reproduces every point within the tolerance
            it was built with.
        label: free text for reports ("g4dn.xlarge/int8", "estimate from ...").
    """

    batches: FloatArray
    times_ms: FloatArray
    a_ms: float
    c_ms: float
    fits_linear: bool
    label: str = ""
    _tail_slope: float = field(default=0.0, repr=False)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_points(
        cls,
        batches: Sequence[float] | FloatArray,
        times_ms: Sequence[float] | FloatArray,
        *,
        tolerance: float = DEFAULT_LINEAR_FIT_TOLERANCE,
        label: str = "",
    ) -> LatencyProfile:
        """Profile from measured ``(batch size, service time)`` points.

        Points may come in any order; duplicated batch sizes are averaged.  Between
        points the curve is piecewise linear.  Beyond the last point it continues with
        the least-squares slope ``c`` when the line fits within ``tolerance`` (relative
        residual), otherwise with the slope of the last measured segment (the local
        trend is a better guess than a line that does not fit).  Below the first point
        it is extended towards ``b = 1`` with slope ``c`` when the line fits, else with
        the first segment's slope, and floored at 5 % of the first measured time.

        A single point ``(b0, t0)`` carries no information about how batching scales,
        so it is read pessimistically as "batching does not help":
        ``t(b) = t0 * b / b0`` (CPU-like).  Measure at least two batch sizes to get
        credit for batching.

        Raises:
            ValueError: no points, mismatched lengths, batch sizes < 1 or times <= 0,
                or non-finite values.
        """
        b = _as_float_array(batches)
        t = _as_float_array(times_ms)
        if b.size == 0 or b.size != t.size:
            raise ValueError("need the same, non-zero number of batch sizes and times")
        if not (np.all(np.isfinite(b)) and np.all(np.isfinite(t))):
            raise ValueError("batch sizes and times must be finite")
        if np.any(b < 1.0) or np.any(t <= 0.0):
            raise ValueError("batch sizes must be >= 1 and service times > 0")
        if tolerance < 0.0:
            raise ValueError("tolerance must be >= 0")

        ub, inverse = np.unique(b, return_inverse=True)
        ut = np.bincount(inverse, weights=t) / np.bincount(inverse)
        ut = np.maximum.accumulate(ut)  # a larger batch never takes less time

        if ub.size == 1:
            slope = float(ut[0] / ub[0])
            return cls(
                batches=ub,
                times_ms=ut,
                a_ms=0.0,
                c_ms=slope,
                fits_linear=True,
                label=label,
                _tail_slope=slope,
            )

        c, a = np.polyfit(ub, ut, 1)
        a, c = float(a), float(c)
        if c < 0.0:  # cannot happen after the running max, but keep the invariant
            c = 0.0
            a = float(np.mean(ut))
        if a < 0.0:  # refit through the origin: t = c * b
            a = 0.0
            c = float(np.dot(ub, ut) / np.dot(ub, ub))
        resid = np.abs(a + c * ub - ut) / ut
        fits = bool(np.max(resid) <= tolerance)
        last_seg = float((ut[-1] - ut[-2]) / (ub[-1] - ub[-2]))
        tail = c if fits else last_seg
        return cls(
            batches=ub,
            times_ms=ut,
            a_ms=a,
            c_ms=c,
            fits_linear=fits,
            label=label,
            _tail_slope=max(tail, 0.0),
        )

    @classmethod
    def from_coefficients(cls, a_ms: float, c_ms: float, *, label: str = "") -> LatencyProfile:
        """Profile following ``t(b) = a + c * b`` exactly (ms).

        Raises:
            ValueError: ``a < 0``, ``c < 0`` or ``a + c <= 0`` (t(1) must be positive).
        """
        if not (np.isfinite(a_ms) and np.isfinite(c_ms)):
            raise ValueError("coefficients must be finite")
        if a_ms < 0.0 or c_ms < 0.0 or a_ms + c_ms <= 0.0:
            raise ValueError("need a >= 0, c >= 0 and a + c > 0")
        b = np.array([1.0, 2.0], dtype=np.float64)
        return cls(
            batches=b,
            times_ms=a_ms + c_ms * b,
            a_ms=float(a_ms),
            c_ms=float(c_ms),
            fits_linear=True,
            label=label,
            _tail_slope=float(c_ms),
        )

    # ------------------------------------------------------------------ evaluation

    def service_time_ms(self, batch: float | npt.ArrayLike) -> FloatArray:
        """Service time (ms) of a batch of the given size(s); vectorised.

        Accepts a scalar or any array of batch sizes (>= 1; smaller values are treated
        as 1) and returns a float64 array of the same shape (0-d for a scalar).
        """
        x = np.maximum(np.asarray(batch, dtype=np.float64), 1.0)
        bs, ts = self.batches, self.times_ms
        y = np.interp(x, bs, ts)
        above = x > bs[-1]
        if np.any(above):
            y = np.where(above, ts[-1] + self._tail_slope * (x - bs[-1]), y)
        below = x < bs[0]
        if np.any(below):
            head = ts[1] - ts[0] if bs.size > 1 else 0.0
            slope0 = (head / (bs[1] - bs[0])) if bs.size > 1 else self._tail_slope
            if self.fits_linear:
                slope0 = self.c_ms
            floor = 0.05 * float(ts[0])
            y = np.where(below, np.maximum(ts[0] - slope0 * (bs[0] - x), floor), y)
        return np.asarray(y, dtype=np.float64)

    def service_time_table(self, max_batch: int) -> FloatArray:
        """``t(b)`` for ``b = 0 .. max_batch`` (entry 0 is 0); what the queue model uses."""
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        out = np.zeros(max_batch + 1, dtype=np.float64)
        out[1:] = self.service_time_ms(np.arange(1, max_batch + 1, dtype=np.float64))
        return out

    def throughput_rps(self, batch: float | npt.ArrayLike) -> FloatArray:
        """Requests per second of one replica that always runs full batches of this size.

        ``1000 * b / t(b)``; this is also the stability limit of the batching queue
        with maximum batch size ``b`` (see :mod:`servingopt.model.queue`).
        """
        x = np.maximum(np.asarray(batch, dtype=np.float64), 1.0)
        return np.asarray(1000.0 * x / self.service_time_ms(x), dtype=np.float64)

    # ------------------------------------------------------------------ derivation

    def scaled(self, factor: float, *, label: str | None = None) -> LatencyProfile:
        """The same curve with every service time multiplied by ``factor`` (> 0).

        Used to apply a learned :class:`~servingopt.values.ProfileCorrection`
        (factor > 1: the replica is slower than measured) and by
        :func:`estimate_profile`.
        """
        if not (np.isfinite(factor) and factor > 0.0):
            raise ValueError("factor must be a finite number > 0")
        f = float(factor)
        return LatencyProfile(
            batches=self.batches.copy(),
            times_ms=self.times_ms * f,
            a_ms=self.a_ms * f,
            c_ms=self.c_ms * f,
            fits_linear=self.fits_linear,
            label=self.label if label is None else label,
            _tail_slope=self._tail_slope * f,
        )

    def __repr__(self) -> str:
        pts = ", ".join(
            f"{int(b) if float(b).is_integer() else b}:{t:.3g}"
            for b, t in zip(self.batches, self.times_ms, strict=True)
        )
        return (
            f"LatencyProfile({self.label!r}, points={{{pts}}}, a={self.a_ms:.3g}ms, "
            f"c={self.c_ms:.3g}ms/req, linear={self.fits_linear})"
        )


def estimate_profile(
    reference: LatencyProfile, relative_speed: float, *, label: str = ""
) -> LatencyProfile:
    """ESTIMATE a profile for an instance type that has no measurement.

    ``relative_speed`` is how much faster the target runs the model than the reference
    instance (2.0: twice as fast, so every service time is halved).  It typically
    comes from a catalog ratio (GPU generation, vCPU count for CPU instances) and is a
    rough guess: the shape of the curve (how much batching helps) is assumed to carry
    over unchanged, which is not true across very different hardware (a CPU reference
    says nothing about a GPU's batching benefit).  Callers should mark predictions
    made with an estimated profile as such and let :class:`ProfileCorrection` learn
    the real factor once the instance serves traffic.

    Raises:
        ValueError: ``relative_speed`` not a finite number > 0.
    """
    if not (np.isfinite(relative_speed) and relative_speed > 0.0):
        raise ValueError("relative_speed must be a finite number > 0")
    name = label or f"estimate from {reference.label or 'reference'} at x{relative_speed:g} speed"
    return reference.scaled(1.0 / relative_speed, label=name)
