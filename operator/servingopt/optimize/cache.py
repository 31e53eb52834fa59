"""The response cache in a plan: its hit rate, its size, what it costs and saves.

With the cache on, the model sees only the misses, ``demand x (1 - hit rate)``, the
pod's memory grows by the cache's size (fewer pods per node), and the cache's share
of the node's memory, priced at the node's on-demand price, is added when ranking.
``caching.mode`` decides whether both scenarios are ranked (``Auto``) or one.
"""

from __future__ import annotations

from typing import overload

import numpy as np

from servingopt.api import ModelServingSpec
from servingopt.optimize.decision import CacheDecision
from servingopt.optimize.instances import MIB_PER_GIB
from servingopt.optimize.plantypes import Candidate, FloatArray, Rows
from servingopt.values import Observation

#: Never plan as if the cache answered everything (the model would see no load).
MAX_HIT_RATE = 0.99


def hit_rate(spec: ModelServingSpec, obs: Observation) -> float:
    """The observed hit rate, else the spec's expected one (unset: 0)."""
    hit = obs.cache_hit_rate
    if hit is None:
        hit = spec.caching.expected_hit_rate or 0.0
    return min(max(float(hit), 0.0), MAX_HIT_RATE)


def size_mib(spec: ModelServingSpec, obs: Observation) -> int:
    """The running cache's size (that is what the hit rate was observed at), within
    ``caching.maxSizeMiB``; else ``maxSizeMiB``."""
    size = obs.current.cache_size_mib if obs.current.cache_enabled else None
    return min(size or spec.caching.max_size_mi_b, spec.caching.max_size_mi_b)


def scenarios(spec: ModelServingSpec, hit: float) -> list[bool]:
    """Cache off / on, as ranked: ``Auto`` tries both only when something would hit."""
    mode = spec.caching.mode
    return {"Off": [False], "On": [True], "Auto": [False, True] if hit > 0 else [False]}[mode]


@overload
def memory_cost_hourly(size: int, node_memory_mib: float, on_demand_hourly: float) -> float: ...


@overload
def memory_cost_hourly(
    size: int, node_memory_mib: FloatArray, on_demand_hourly: FloatArray
) -> FloatArray: ...


def memory_cost_hourly(
    size: int, node_memory_mib: FloatArray | float, on_demand_hourly: FloatArray | float
) -> FloatArray | float:
    """$/h of one replica's cache: its share of the node's memory at the node's price."""
    return size / node_memory_mib * on_demand_hourly


def decision(
    spec: ModelServingSpec,
    obs: Observation,
    rows: Rows,
    win: int,
    cand: Candidate,
    hit: float,
    replicas: int,
) -> CacheDecision:
    """The cache of the winning row, with what it saves against the same row with the
    cache flipped (0 when that row was not ranked)."""
    cached = bool(rows.cache_on[win])
    share = memory_cost_hourly(
        size_mib(spec, obs), cand.itype.memory_gi_b * MIB_PER_GIB, cand.itype.on_demand_hourly
    )
    same = (rows.cand == rows.cand[win]) & (rows.spot == rows.spot[win])
    other = np.flatnonzero(same & (rows.cache_on != cached))
    saving = 0.0
    if other.size:
        off, on = (other[0], win) if cached else (win, other[0])
        saving = float(rows.cost[off] - rows.cost[on])
    if not cached:
        return CacheDecision(
            False, None, hit_rate(spec, obs), 0.0, max(saving, 0.0), share * replicas
        )
    return CacheDecision(True, size_mib(spec, obs), hit, hit, max(saving, 0.0), share * replicas)


def reason(spec: ModelServingSpec, cache: CacheDecision) -> str:
    """Why the cache is on or off."""
    mode = spec.caching.mode
    if mode == "Off":
        return "cache: off (caching.mode Off)"
    if mode == "On":
        return f"cache: on, {cache.size_mib} MiB per replica (caching.mode On)"
    if cache.enabled:
        return (
            f"cache: on, {cache.size_mib} MiB per replica: hit rate {100 * cache.hit_rate:.0f}% "
            f"saves ${cache.hourly_saving:.3f}/h of replicas for ${cache.hourly_cost:.3f}/h of "
            "memory"
        )
    if cache.hit_rate <= 0:
        return "cache: off, no hit rate observed or expected"
    return (
        f"cache: off, a hit rate of {100 * cache.hit_rate:.0f}% saves less than its memory "
        f"costs (${cache.hourly_cost:.3f}/h)"
    )
