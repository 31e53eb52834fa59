"""Lower bounds on what serving a trace at the SLO can cost.

* **Integer oracle** — perfect foresight and zero start-up delay: every interval
  (a minute) runs the cheapest integer mix of replicas, over every configuration the
  ModelServing allows, whose *true* capacity at the SLO covers that interval's mean
  demand, with at least ``minReplicas`` replicas.  Replicas are priced at their share
  of a node (no packing loss), spot at most at the policy's ``spot.maxPercent`` share.
  No policy that meets the SLO can pay less; policies that miss the SLO can.
* **Fluid bound** — demand x the best price per unit of capacity, as if capacity came
  in arbitrarily small pieces.

The cheapest mix for a demand is an unbounded covering knapsack, solved once by
dynamic programming over demand in small capacity units (capacities rounded *up* to
a unit, demands down, so the bound stays a bound), then looked up per interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .traces import per_interval_mean
from .world import Scenario, ServingConfig

FloatArray = npt.NDArray[np.float64]

INTERVAL_SECONDS = 60
_MAX_UNITS = 20000


@dataclass(frozen=True)
class OracleResult:
    cost: float
    fluid_cost: float
    interval_cost: FloatArray
    """Integer-oracle cost of each interval (currency)."""
    best_config: ServingConfig
    """The configuration with the best price per unit of capacity."""


@dataclass(frozen=True)
class _Offer:
    config: ServingConfig
    capacity: float
    price: float


def _offers(scenario: Scenario, capacity_type: str) -> list[_Offer]:
    """Pareto-efficient configurations: no other one is both cheaper and larger."""
    best: dict[float, _Offer] = {}
    for config in scenario.configs([capacity_type]):
        capacity = scenario.capacity(config, truth=True)
        if capacity <= 0:
            continue
        offer = _Offer(config, capacity, scenario.replica_price(config))
        key = round(offer.price, 9)
        if key not in best or best[key].capacity < capacity:
            best[key] = offer
    offers = sorted(best.values(), key=lambda o: o.price)
    frontier: list[_Offer] = []
    for offer in offers:
        if not frontier or offer.capacity > frontier[-1].capacity:
            frontier.append(offer)
    return frontier


def _cover_costs(offers: list[_Offer], unit: float, units: int) -> FloatArray:
    """cost[k]: cheapest mix of offers whose capacity covers k units (unbounded knapsack)."""
    cost = np.zeros(units + 1)
    sizes = [max(1, math.ceil(o.capacity / unit - 1e-9)) for o in offers]
    prices = [o.price for o in offers]
    values = cost.tolist()
    for k in range(1, units + 1):
        values[k] = min(p + values[max(0, k - s)] for p, s in zip(prices, sizes, strict=True))
    return np.asarray(values, dtype=np.float64)


def oracle(scenario: Scenario, rates: npt.ArrayLike) -> OracleResult:
    """Integer oracle and fluid bound for per-second demand ``rates``."""
    demand = per_interval_mean(np.asarray(rates, dtype=np.float64), INTERVAL_SECONDS)
    hours = INTERVAL_SECONDS / 3600.0
    types = scenario.capacity_types()
    by_type = {c: _offers(scenario, c) for c in types}
    by_type = {c: o for c, o in by_type.items() if o}
    if not by_type:
        raise ValueError("no configuration meets the SLO (oracle)")
    all_offers = [o for offers in by_type.values() for o in offers]
    best = min(all_offers, key=lambda o: o.price / o.capacity)
    unit = min(o.capacity for o in all_offers) / 20.0
    peak = float(demand.max()) if demand.size else 0.0
    unit = max(unit, peak / _MAX_UNITS)
    units = int(peak / unit) + 1
    tables = {c: _cover_costs(o, unit, units) for c, o in by_type.items()}
    need = np.floor(demand / unit).astype(np.int64)
    spot_share = scenario.policy.spec.spot.max_percent / 100.0
    if "spot" in tables and "on-demand" in tables and spot_share > 0:
        per_interval = tables["on-demand"][need]
        for share in np.linspace(0.0, spot_share, 11)[1:]:
            spot_units = np.floor(need * share).astype(np.int64)
            mix = tables["spot"][spot_units] + tables["on-demand"][need - spot_units]
            per_interval = np.minimum(per_interval, mix)
    else:
        usable = [c for c in tables if c != "spot" or spot_share > 0] or list(tables)
        per_interval = np.min([tables[c][need] for c in usable], axis=0)
    floor_price = min(o.price for o in all_offers) * scenario.spec.autoscaling.min_replicas
    per_interval = np.maximum(per_interval, floor_price) * hours
    fluid_price = _fluid_price_per_rps(by_type, spot_share)
    fluid = float(demand.sum() * fluid_price * hours)
    return OracleResult(float(per_interval.sum()), fluid, per_interval, best.config)


def _fluid_price_per_rps(by_type: dict[str, list[_Offer]], spot_share: float) -> float:
    rate = {c: min(o.price / o.capacity for o in offers) for c, offers in by_type.items()}
    if "spot" in rate and "on-demand" in rate:
        return spot_share * rate["spot"] + (1 - spot_share) * rate["on-demand"]
    return min(rate.values())
