"""Pricing and ranking: every configuration of the candidates, cheapest first.

A *row* is one (candidate, cache on/off, capacity type).  At the demand it gets the
candidate's best (B, D) (fewest replicas, then the most capacity, then the lowest
p99), the replicas at the HPA target (capacity x the target fraction), the nodes they
take and their price (on-demand, or the policy's spot mix with its interruption
risk), and four checks: latency, replica bounds, budgets, and whether leaving the
running placement for it still pays at the forecast's upper band.  Rows are ranked by
$/h (plus the cache's memory), then the running placement, then provisioned
capacity, then p99; the winner is the first that passes every check, else the least
bad one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from servingopt.api import ModelServingSpec, ServingPolicySpec
from servingopt.optimize import cache, perfgrid
from servingopt.optimize.instances import (
    MIB_PER_GIB,
    Pricing,
    SpotMix,
    cost_on_demand,
    cost_spot_mix,
)
from servingopt.optimize.plantypes import (
    INF_REPLICAS,
    BoolArray,
    Candidate,
    Choice,
    FloatArray,
    IntArray,
    Rows,
)
from servingopt.values import Observation, RunningConfig

Columns = dict[str, npt.NDArray[Any]]


def pricing(candidates: Sequence[Candidate], cached: bool, startup_s: int) -> Pricing:
    """Prices and packing of the candidates, with or without the cache in the pod."""
    return Pricing(
        on_demand_hourly=np.array([c.itype.on_demand_hourly for c in candidates]),
        spot_hourly=np.array(
            [c.itype.spot_hourly if c.itype.spot_hourly else np.nan for c in candidates]
        ),
        pods_per_node=np.array(
            [max(c.pods_per_node_cached if cached else c.pods_per_node, 1) for c in candidates],
            dtype=np.int64,
        ),
        spot_interruptions_per_hour=np.array(
            [c.itype.spot_interruptions_per_hour for c in candidates]
        ),
        replacement_hours=np.array(
            [(c.itype.provisioning_seconds + startup_s) / 3600.0 for c in candidates]
        ),
        memory_mib=np.array([c.itype.memory_gi_b * MIB_PER_GIB for c in candidates]),
    )


def budget_room(policy: ServingPolicySpec, obs: Observation) -> float:
    """$/h this ModelServing may cost: its own budget, and what the namespace's
    budget leaves after the other ModelServings (inf: no budget)."""
    budget = policy.budgets.max_hourly_cost_per_model_serving
    room = math.inf if budget is None else budget
    ns_budget = policy.budgets.max_hourly_cost_per_namespace
    if ns_budget is not None:
        room = min(room, ns_budget - obs.namespace_spend_hourly)
    return room


def spot_terms(spec: ModelServingSpec, policy: ServingPolicySpec) -> tuple[int, int]:
    """(max spot percent, on-demand base); all spot when on-demand is not allowed."""
    if "on-demand" in spec.candidates.capacity_types and (
        "on-demand" in policy.allowed_capacity_types
    ):
        return policy.spot.max_percent, policy.spot.on_demand_base_replicas
    return 100, 0


def cost_of(
    spec: ModelServingSpec,
    policy: ServingPolicySpec,
    cand: Candidate,
    cached: bool,
    spot: bool,
    replicas: int,
) -> SpotMix:
    """The bill of one configuration at one replica count."""
    prices = pricing([cand], cached, spec.autoscaling.startup_seconds)
    r = np.array([replicas], dtype=np.int64)
    if spot:
        return cost_spot_mix(r, prices, *spot_terms(spec, policy))
    return cost_on_demand(r, prices)


def budget_replicas(
    spec: ModelServingSpec,
    policy: ServingPolicySpec,
    obs: Observation,
    cand: Candidate,
    cached: bool,
    spot: bool,
) -> int | None:
    """Most replicas the budgets afford for this configuration (None: no budget)."""
    budgets = policy.budgets
    if budgets.max_hourly_cost_per_model_serving is None and (
        budgets.max_hourly_cost_per_namespace is None
    ):
        return None
    room = budget_room(policy, obs)
    counts = np.arange(1, spec.autoscaling.max_replicas + 1, dtype=np.int64)
    prices = pricing([cand] * counts.size, cached, spec.autoscaling.startup_seconds)
    mix = (
        cost_spot_mix(counts, prices, *spot_terms(spec, policy))
        if spot
        else cost_on_demand(counts, prices)
    )
    ok = np.flatnonzero(mix.hourly_cost <= room + 1e-9)
    return int(counts[ok[-1]]) if ok.size else 0


@dataclass(frozen=True, eq=False)
class Ranker:
    """What ranking needs besides the HPA target fraction, which the planner may
    change after a replay of the history (so it is an argument, not a field).

    ``demands``: the demand to size replicas for and the forecast's upper band.
    """

    spec: ModelServingSpec
    policy: ServingPolicySpec
    obs: Observation
    candidates: Sequence[Candidate]
    grid: perfgrid.PerfGrid
    demands: tuple[float, float]
    capacity_types: Sequence[str]

    @cached_property
    def prices(self) -> Mapping[bool, Pricing]:
        """Pricing without and with the cache (it takes memory: fewer pods per node)."""
        startup = self.spec.autoscaling.startup_seconds
        return {cached: pricing(self.candidates, cached, startup) for cached in (False, True)}

    def rows(self, target_fraction: FloatArray) -> Rows:
        """Every row at the demand, with the moves that pay only below it ruled out
        (``target_fraction``: each candidate's HPA target margin)."""
        size_for, upper = self.demands
        if upper <= size_for:
            return self._rows_at([size_for], target_fraction)[0]
        rows, ahead = self._rows_at([size_for, upper], target_fraction)
        return replace(
            rows, change_ok=_worth_moving(rows, ahead, self.candidates, self.obs.current)
        )

    def choose(self, rows: Rows, demand_rps: float) -> Choice:
        """The winning row as one configuration: the cheapest feasible row, else the
        least bad (with its lowest-p99 (B, D) when it misses the SLO at any load)."""
        order = ranking_order(rows, self.candidates, self.obs.current)
        win = winner(rows, order, self.grid, len(self.candidates))
        c = int(rows.cand[win])
        cand = self.candidates[c]
        cached, spot = bool(rows.cache_on[win]), bool(rows.spot[win])
        bj, dk = int(rows.batch_idx[win]), int(rows.delay_idx[win])
        if not rows.latency_ok[win]:  # least bad: the (B, D) with the lowest unloaded p99
            flat = int(np.argmin(self.grid.zero_load_p99_ms[c]))
            bj, dk = divmod(flat, self.grid.delays_ms.size)
        hit = cache.hit_rate(self.spec, self.obs) if cached else 0.0
        return Choice(
            row=win,
            order=order,
            candidate=cand,
            cached=cached,
            spot=spot,
            index=(c, bj, dk),
            capacity=float(self.grid.capacity_rps[c, bj, dk]),
            limit=float(self.grid.limit_rps[c, bj]),
            hit_rate=hit,
            load=demand_rps * (1.0 - hit),
            hourly_cost_per_replica=float(rows.cost[win]) / max(int(rows.replicas[win]), 1),
            budget_replicas=budget_replicas(self.spec, self.policy, self.obs, cand, cached, spot),
        )

    def _rows_at(self, demands: Sequence[float], target_fraction: FloatArray) -> list[Rows]:
        """The rows at each of ``demands`` (computed together: one pass per column)."""
        hit = cache.hit_rate(self.spec, self.obs)
        wanted = np.asarray(demands, dtype=np.float64)
        parts: list[Columns] = []
        for cached in cache.scenarios(self.spec, hit):
            loads = wanted * (1.0 - hit) if cached else wanted
            best = _best_setting(
                self.grid, loads, target_fraction, self.spec.autoscaling.min_replicas
            )
            cache_cost = self._cache_cost_per_replica(cached) * best.replicas
            setting = self._setting_columns(best, cached, target_fraction, cache_cost)
            for capacity_type in self.capacity_types:
                costs = self._cost_columns(best.replicas, cache_cost, cached, capacity_type)
                parts.append(setting | costs)
        # one concatenation per column, whatever the number of parts
        keep = np.concatenate([p.pop("offered") for p in parts], axis=1)
        columns = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
        return [
            self._checked({k: v[i][keep[i]] for k, v in columns.items()})
            for i in range(wanted.size)
        ]

    def _cache_cost_per_replica(self, cached: bool) -> FloatArray:
        """$/h of one replica's cache memory per candidate (0 without the cache)."""
        if not cached:
            return np.zeros(len(self.candidates))
        prices = self.prices[cached]
        size = cache.size_mib(self.spec, self.obs)
        return cache.memory_cost_hourly(size, prices.memory_mib, prices.on_demand_hourly)

    def _setting_columns(
        self, best: _Best, cached: bool, target_fraction: FloatArray, cache_cost: FloatArray
    ) -> Columns:
        """Each candidate's best (B, D) at each demand, shapes ``(demands, candidates)``."""
        m, n = best.replicas.shape
        idx = np.broadcast_to(np.arange(n), (m, n))
        capacity = self.grid.capacity_rps[idx, best.batch_idx, best.delay_idx]
        return dict(
            cand=idx,
            cache_on=np.full((m, n), cached),
            batch_idx=best.batch_idx,
            delay_idx=best.delay_idx,
            replicas=best.replicas,
            needed=best.needed,
            capacity=capacity,
            target=capacity * target_fraction,
            p99=best.p99,
            cache_cost=cache_cost,
        )

    def _cost_columns(
        self, replicas: IntArray, cache_cost: FloatArray, cached: bool, capacity_type: str
    ) -> Columns:
        """The bill of those replicas on one capacity type, and where it is offered."""
        prices = self.prices[cached]
        shape = replicas.shape
        mix: SpotMix
        if capacity_type == "spot":
            mix = cost_spot_mix(replicas, prices, *spot_terms(self.spec, self.policy))
            offered = np.broadcast_to(np.isfinite(prices.spot_hourly), shape)
        else:
            mix = cost_on_demand(replicas, prices)
            offered = np.ones(shape, dtype=bool)
        return dict(
            offered=offered,
            spot=np.full(shape, capacity_type == "spot"),
            cost=mix.hourly_cost,
            rank_cost=mix.hourly_cost + cache_cost,
            od_replicas=mix.on_demand_replicas,
            spot_replicas=mix.spot_replicas,
            risk=mix.interruption_cost,
        )

    def _checked(self, merged: Columns) -> Rows:
        """The rows with their latency, replica-bound and budget checks."""
        spec = self.spec
        latency_ok = (merged["capacity"] > 0) & (merged["p99"] <= spec.slo.latency_p99_ms)
        return Rows(
            **merged,
            latency_ok=latency_ok,
            bounds_ok=merged["needed"] <= spec.autoscaling.max_replicas,
            budget_ok=merged["cost"] <= budget_room(self.policy, self.obs) + 1e-9,
            change_ok=np.ones(merged["cost"].size, dtype=bool),
        )


class _Best(NamedTuple):
    """Per demand and candidate, shapes ``(M, N)``: its best (B, D) and what it gives."""

    batch_idx: IntArray
    delay_idx: IntArray
    replicas: IntArray
    needed: IntArray
    p99: FloatArray  # at the load per replica


def _best_setting(
    grid: perfgrid.PerfGrid, demands: FloatArray, fraction: FloatArray, floor: int
) -> _Best:
    """Each candidate's best (B, D) at each demand.  Several demands share one pass
    over the grid."""
    n, nb, nd = grid.capacity_rps.shape
    m = demands.size
    target = grid.capacity_rps * np.asarray(fraction, dtype=np.float64).reshape(-1, 1, 1)
    wanted = demands[:, None, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        needed_f = np.where(target > 0, np.ceil(wanted / target - 1e-9), INF_REPLICAS)
    needed = np.minimum(needed_f, INF_REPLICAS).astype(np.int64).reshape(m, n, -1)
    replicas = np.maximum(needed, max(floor, 1))
    load = (wanted / replicas.reshape(m, n, nb, nd)).reshape(m, n, -1)
    # fewest replicas, then the most capacity (headroom for surges), then the lowest p99
    cap = grid.capacity_rps.reshape(1, n, -1)
    fewest = replicas == replicas.min(axis=2, keepdims=True)
    cap_m = np.where(fewest, cap, -np.inf)
    most = fewest & (cap_m >= cap_m.max(axis=2, keepdims=True))
    # the p99 decides only among those: evaluate it there alone
    mm, ii, cell = np.nonzero(most)
    p99_most = np.full(most.shape, np.inf)
    cj, ck = np.unravel_index(cell, (nb, nd))
    p99_most[mm, ii, cell] = _p99_at(grid, ii, cj, ck, load[mm, ii, cell])
    flat = np.argmin(p99_most, axis=2)
    bj, dk = np.unravel_index(flat, (nb, nd))
    at = (np.arange(m)[:, None], np.arange(n)[None, :], flat)
    rows = np.broadcast_to(np.arange(n), (m, n))
    return _Best(
        bj.astype(np.int64),
        dk.astype(np.int64),
        replicas[at],
        needed[at],
        _p99_at(grid, rows.ravel(), bj.ravel(), dk.ravel(), load[at].ravel()).reshape(m, n),
    )


def _p99_at(
    grid: perfgrid.PerfGrid, i: IntArray, j: IntArray, k: IntArray, rate: FloatArray
) -> FloatArray:
    """Vectorised p99 of candidates ``(i, j, k)`` at per-replica ``rate``."""
    loads = grid.loads
    rho = rate / grid.limit_rps[i, j]
    pos = np.clip(np.searchsorted(loads, rho, side="right") - 1, 0, loads.size - 2)
    w = np.clip((rho - loads[pos]) / (loads[pos + 1] - loads[pos]), 0.0, 1.0)
    # the two curve points around each load, read from the flat grid (no curve copies)
    at = np.ravel_multi_index((i, j, k), grid.curves_ms.shape[:3]) * loads.size + pos
    flat = grid.curves_ms.reshape(-1)
    lo, hi = flat[at], flat[at + 1]
    with np.errstate(invalid="ignore"):
        out = lo + w * (hi - lo)
    return np.where(rho > loads[-1], np.inf, np.where(np.isfinite(out), out, np.inf))


def _worth_moving(
    rows: Rows, ahead: Rows, cands: Sequence[Candidate], current: RunningConfig
) -> BoolArray:
    """Rows on the running placement, or no dearer than it at the upper band.

    Costs step with the replica count, and each placement steps at its own demands:
    one cheaper only below its next step (two replicas of one type against two of a
    dearer but faster one) loses the saving, and flips back, when demand rises
    within its forecast band. The running placement is measured at its best row
    that meets the SLO now; none (or none running): every row may win.
    """
    running = on_running(rows, cands, current)
    now_ok = rows.latency_ok & rows.bounds_ok & rows.budget_ok
    if not (running & now_ok).any():
        return np.ones(rows.cand.size, dtype=bool)
    # the cost of each (candidate, cache, capacity type) at the upper band
    by_key = np.full(4 * len(cands), np.inf)
    by_key[_row_keys(ahead)] = np.where(ahead.feasible, ahead.rank_cost, np.inf)
    later = by_key[_row_keys(rows)]
    bar = float(later[running & now_ok].min())
    out: BoolArray = running | (later <= bar + 1e-9)
    return out


def _row_keys(rows: Rows) -> IntArray:
    """One integer per (candidate, cache scenario, capacity type): rows' identity."""
    return rows.cand * 4 + rows.cache_on.astype(np.int64) * 2 + rows.spot.astype(np.int64)


def on_running(rows: Rows, cands: Sequence[Candidate], current: RunningConfig) -> BoolArray:
    """Rows on the running instance type, variant and capacity type."""
    here = np.array(
        [(c.itype.name, c.variant) == (current.instance_type, current.variant) for c in cands]
    )
    running: BoolArray = here[rows.cand] & (rows.spot == (current.capacity_type == "spot"))
    return running


def ranking_order(rows: Rows, cands: Sequence[Candidate], current: RunningConfig) -> IntArray:
    """Rows by $/h, then the running placement (a tie is no reason to roll out), then
    most provisioned capacity, then lowest p99, then name."""
    names = np.array([f"{c.itype.name}/{c.variant}" for c in cands])[rows.cand]
    capacity_total = rows.capacity * rows.replicas
    moves = ~on_running(rows, cands, current)
    return np.lexsort((names, rows.p99, -capacity_total, moves, rows.rank_cost)).astype(np.int64)


def winner(rows: Rows, order: IntArray, grid: perfgrid.PerfGrid, n_cands: int) -> int:
    """The cheapest feasible row; else the least bad one."""
    feasible = rows.feasible[order]
    if feasible.any():
        return int(order[np.argmax(feasible)])
    if rows.latency_ok.any():  # blocked by replica bounds or budget: cheapest of those
        return int(order[np.argmax(rows.latency_ok[order])])
    # nothing meets the SLO: the lowest unloaded p99, then the cheapest
    lone = grid.zero_load_p99_ms.reshape(n_cands, -1).min(axis=1)[rows.cand]
    return int(np.lexsort((rows.rank_cost, lone))[0])
