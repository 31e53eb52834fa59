"""The values the planner's steps hand each other; no logic, so no step imports another.

``plan()`` (:mod:`~servingopt.optimize.planner`) runs the steps in order:

* :mod:`~servingopt.optimize.candidates` finds the :class:`Candidate` pairs (a
  :class:`CandidateSet`) and what one replica of each serves;
* :mod:`~servingopt.optimize.ranking` prices every configuration of them as
  :class:`Rows` and picks the winner, a :class:`Choice`;
* the planner sizes the winner's HPA (a :class:`Sizing`);
* :mod:`~servingopt.optimize.cache` and :mod:`~servingopt.optimize.explain` say
  what the response cache does and why the plan is what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from servingopt.api import InstanceType
from servingopt.model import ProfileCorrection
from servingopt.optimize import perfgrid
from servingopt.optimize.decision import Alternative
from servingopt.optimize.forecast import Forecast
from servingopt.optimize.instances import SpotMix
from servingopt.optimize.traffic import TrafficProfile
from servingopt.values import CorrectionKey

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

#: Replicas of a configuration that cannot serve at all (no capacity at the SLO).
INF_REPLICAS = 10**9


@dataclass(frozen=True)
class Demand:
    """What to plan for: the forecast, the traffic class and the rate to size for.

    ``rps`` is the given demand when there is one, else the forecast's peak mean.
    """

    forecast: Forecast
    traffic: TrafficProfile
    rps: float

    def decision_fields(self) -> dict[str, object]:
        """The Decision's fields that say what demand it was made for."""
        return dict(
            traffic=self.traffic.kind, forecast_method=self.forecast.method, demand_rps=self.rps
        )


@dataclass(frozen=True)
class Candidate:
    """An (instance type, variant) pair that can serve: it has a measured latency
    profile there, the model fits and the pod fits the node."""

    itype: InstanceType
    variant: str
    points: perfgrid.Points  # the declared (batch sizes, service times in ms)
    factor: float  # learned service-time correction (1: as declared)
    pods_per_node: int
    pods_per_node_cached: int  # with the response cache's memory in the pod


@dataclass(frozen=True)
class CandidateSet:
    """The candidates of one plan, and what the search for them found on the way."""

    candidates: list[Candidate]
    rejected: list[Alternative]  # pairs ruled out, each with why
    reasons: list[str]  # policy, accuracy and learning notes, in that order
    corrections: dict[CorrectionKey, ProfileCorrection]  # learned, for the next plan
    model_error: float | None = None  # how wrong the model has been (learning)


@dataclass(frozen=True, eq=False)
class Rows:
    """Every (candidate, cache scenario, capacity type) row, flattened to arrays.

    ``cand`` indexes the candidates (and the performance grid); each row carries the
    best (B, D) of its candidate at the demand, its replicas, costs and the checks
    it passes.
    """

    cand: IntArray
    cache_on: BoolArray
    spot: BoolArray
    batch_idx: IntArray
    delay_idx: IntArray
    replicas: IntArray
    needed: IntArray  # replicas the demand needs (before the replica bounds)
    capacity: FloatArray  # per replica at the SLO
    target: FloatArray
    p99: FloatArray
    cost: FloatArray  # the bill: nodes x price + spot interruption risk
    rank_cost: FloatArray  # bill + the cache's own memory cost
    cache_cost: FloatArray
    od_replicas: IntArray
    spot_replicas: IntArray
    risk: FloatArray
    latency_ok: BoolArray
    bounds_ok: BoolArray
    budget_ok: BoolArray
    change_ok: BoolArray  # worth leaving the running placement for

    @cached_property
    def feasible(self) -> BoolArray:
        return self.latency_ok & self.bounds_ok & self.budget_ok & self.change_ok


@dataclass(frozen=True, eq=False)
class Choice:
    """The winning row as one configuration: what the HPA is tuned for.

    ``index`` is its (candidate, B index, D index) in the performance grid: the row's
    own (B, D), or, for a least-bad row that misses the SLO, the one with the lowest
    unloaded p99.
    """

    row: int
    order: IntArray  # every row, best first
    candidate: Candidate
    cached: bool
    spot: bool
    index: tuple[int, int, int]
    capacity: float  # per replica at the SLO (0: none)
    limit: float  # per replica, the stability limit
    hit_rate: float  # of the cache, 0 without it
    load: float  # demand reaching the model (cache misses)
    hourly_cost_per_replica: float
    budget_replicas: int | None  # the most the budgets afford (None: no budget)


@dataclass(frozen=True)
class Sizing:
    """The chosen configuration's HPA target, replica bounds and what they cost."""

    target_rps: float
    min_replicas: int
    max_replicas: int
    needed: int  # replicas the demand needs at the target
    replicas: int  # needed, within the bounds
    p99_ms: float
    mix: SpotMix
    hourly_cost: float
    slo_feasible: bool
