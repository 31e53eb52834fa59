"""Learning from live metrics: a bounded, smoothed service-time correction factor.

A value of the ground floor (the planner's observation carries the corrections learned
so far, the operator keeps them in the ModelServing's state); published as
:class:`servingopt.model.ProfileCorrection` too.

Measured profiles drift from production: other tenants on the node, a different input
length mix, a driver or framework update, and estimated profiles
(:func:`servingopt.model.profile.estimate_profile`) are rough to begin with.  The
operator compares what the model predicted for the observed load with what it observed
and scales the profile's service times by a correction factor ``f``
(``profile.scaled(f)``).

Update rule (all in log space, because the factor is multiplicative)::

    ratio   = observed / predicted           # predicted with the profile already scaled by f
    target  = clip(f * ratio, min, max)
    alpha   = smoothing * clip(weight, 0, 1)
    f_new   = clip(f ** (1 - alpha) * target ** alpha, min, max)

i.e. an exponentially weighted moving average of the implied factor.  ``weight`` lets
callers trust an interval less (few requests, load far from the SLO point, rollout in
progress).  A correction decays toward 1 as its evidence ages: once a plan finds no
new evidence for it, :meth:`stamped` records when (``evidence_at``), and
:meth:`factor_at` is the factor ``f ** (0.5 ** (age / EVIDENCE_HALF_LIFE_S))`` — so
what a configuration showed hours ago (a spike read as slow service, a noisy
neighbour since gone) fades with the time that passed, however often the planner ran.
While evidence keeps arriving ``evidence_at`` stays unset (the evidence is current)
and the kept state does not change with the clock.  The decay is deliberately *not*
applied inside :meth:`update`: under persistent evidence the factor must converge to
the evidence, not to a value biased toward 1.  (:meth:`relaxed` is the older
per-interval decay, ``f ** (1 - decay)`` per interval.)

Why this converges although p99 is not proportional to service time: near saturation
queueing amplifies a service-time error (a 10 % slower server may show a 40 % higher
p99), so ``f * ratio`` overshoots.  Because ``predicted`` is recomputed with the
current factor every interval, this is a damped fixed-point iteration on ``f`` (p99
is increasing in ``f``), and ``smoothing < 1`` plus the bounds keep it from
oscillating.  When a per-replica throughput or mean service time is observable, pass
those instead: they are proportional to ``f`` and converge in one step of full weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, cast

__all__ = ["ProfileCorrection"]


class Scalable(Protocol):
    """Anything whose service times scale by a factor (a :class:`LatencyProfile`)."""

    def scaled(self, factor: float) -> Any: ...


P = TypeVar("P", bound=Scalable)

#: Half-life of a correction whose evidence stopped: after it, half of ``log(factor)``
#: is forgotten. Six hours, as the traffic's shape (optimize.traffic): a correction
#: learned this morning weighs little by tonight, while a configuration left for an
#: hour or two is not retried as if it had never shown its profile optimistic (an hour
#: let ServingBench's optimistic-profile cases return to the optimistic configuration
#: and miss the SLO: support-llm/diurnal-optimistic 98.7 % within SLO, 99.8 % at 6 h).
EVIDENCE_HALF_LIFE_S = 6 * 3600.0


@dataclass(frozen=True)
class ProfileCorrection:
    """Multiplicative service-time correction learned from observations.

    Attributes:
        factor: current correction (1.0: the profile is right; 1.3: 30 % slower).
        observations: how many updates (with positive weight) contributed.
        min_factor: lower bound of ``factor`` (default 0.5).
        max_factor: upper bound of ``factor`` (default 3.0).
        smoothing: EWMA weight of one full-weight observation, in (0, 1].
        decay: fraction of ``log(factor)`` forgotten per :meth:`relaxed` interval,
            in [0, 1).
        evidence_at: when the last evidence was seen (unix seconds), once a plan
            found none since; None while the evidence is current.
    """

    factor: float = 1.0
    observations: int = 0
    min_factor: float = 0.5
    max_factor: float = 3.0
    smoothing: float = 0.3
    decay: float = 0.05
    evidence_at: float | None = None

    def __post_init__(self) -> None:
        if not (0.0 < self.min_factor <= 1.0 <= self.max_factor and math.isfinite(self.max_factor)):
            raise ValueError("need 0 < min_factor <= 1 <= max_factor < inf")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError("smoothing must be in (0, 1]")
        if not 0.0 <= self.decay < 1.0:
            raise ValueError("decay must be in [0, 1)")
        if not (math.isfinite(self.factor) and self.factor > 0.0):
            raise ValueError("factor must be a finite number > 0")

    def _clip(self, value: float) -> float:
        return min(max(value, self.min_factor), self.max_factor)

    def update(self, observed: float, predicted: float, weight: float = 1.0) -> ProfileCorrection:
        """Fold one observation in; returns a new correction (this one is unchanged).

        Args:
            observed: the measured value (p99 ms, mean service ms, or 1/throughput:
                anything that grows with service time).
            predicted: the model's value for the same quantity at the observed load,
                computed with the profile already scaled by ``factor``.
            weight: confidence in this observation, in [0, 1].  Non-positive weights
                and unusable inputs (non-finite, <= 0) leave the factor unchanged —
                missing metrics must not move it.
        """
        if not (
            math.isfinite(observed)
            and math.isfinite(predicted)
            and math.isfinite(weight)
            and observed > 0.0
            and predicted > 0.0
            and weight > 0.0
        ):
            return self
        target = self._clip(self.factor * observed / predicted)
        alpha = self.smoothing * min(weight, 1.0)
        log_new = (1.0 - alpha) * math.log(self.factor) + alpha * math.log(target)
        return replace(
            self,
            factor=self._clip(math.exp(log_new)),
            observations=self.observations + 1,
            evidence_at=None,
        )

    def relaxed(self, steps: int = 1) -> ProfileCorrection:
        """The correction after ``steps`` intervals without usable observations.

        Applies only the decay toward 1 (``factor ** ((1 - decay) ** steps)``).
        """
        if steps <= 0:
            return self
        log_f = math.log(self.factor) * (1.0 - self.decay) ** steps
        return replace(self, factor=self._clip(math.exp(log_f)))

    def factor_at(self, now: float | None) -> float:
        """The factor at ``now``: decayed toward 1 with the age of its evidence
        (half-life :data:`EVIDENCE_HALF_LIFE_S`); as learned while the evidence is
        current or the time unknown."""
        if self.evidence_at is None or now is None or not math.isfinite(now):
            return self.factor
        age = max(now - self.evidence_at, 0.0)
        keep = 0.5 ** (age / EVIDENCE_HALF_LIFE_S)
        return self._clip(math.exp(math.log(self.factor) * keep))

    def aged(self, now: float | None) -> ProfileCorrection:
        """This correction as it stands at ``now`` (the decayed factor, its evidence
        current again): where new evidence starts from."""
        return replace(self, factor=self.factor_at(now), evidence_at=None)

    def stamped(self, now: float | None) -> ProfileCorrection:
        """This correction with no new evidence at ``now``: its evidence ages from
        ``now`` unless it already ages from earlier."""
        if self.evidence_at is not None or now is None or not math.isfinite(now):
            return self
        return replace(self, evidence_at=now)

    def apply(self, profile: P) -> P:
        """``profile`` with its service times multiplied by ``factor``."""
        return profile if self.factor == 1.0 else cast(P, profile.scaled(self.factor))
