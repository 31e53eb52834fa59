"""The policies a replay compares, each a pluggable strategy (see :class:`engine.Policy`).

* ``static`` — (a) the workload's initial configuration, provisioned for the trace's
  peak (per-minute) demand at the declared capacity, never scaled.
* ``hpa`` — (b) a competent hand-tuned HPA: initial configuration (its pool, variant
  and batching untouched), requests/s per replica targeted at 70 % of the declared
  capacity at the SLO, Kubernetes default behavior.
* ``threshold`` — (c) rule-of-thumb step scaling: +50 % replicas above 60 % of the
  declared capacity, -1 below 25 %, 240 s cooldown after every action.
* ``offline`` — (d) what a careful team does without servingopt: an offline search over
  the *declared* profiles (instance type, variant, batch size, queue delay; on-demand,
  as a load-testing tool ranks configurations by throughput and latency, not by market)
  picking the cheapest throughput per dollar at the SLO, run under the same tuned HPA
  at 70 % of its capacity.
* ``servingopt`` — (e) :class:`ServingoptPolicy` in :mod:`servingopt.simulate.adaptive`.

All of them see only what the ModelServing declares; the replay's latency comes from
the scenario's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .engine import FixedReplicas, History, HpaScaler, Plan, ThresholdScaler
from .hpa import Hpa, HpaSpec
from .traces import Trace
from .world import Scenario, ServingConfig, replicas_for

HPA_TARGET_SHARE = 0.70


def opening_rate(trace: Trace) -> float:
    """Demand during the first minute: what the workload was sized for when replay starts."""
    return float(np.mean(trace.rates[:60]))


def _bounded(scenario: Scenario, replicas: int) -> int:
    a = scenario.spec.autoscaling
    return min(a.max_replicas, max(a.min_replicas, replicas))


def declared_capacity(scenario: Scenario, config: ServingConfig) -> float:
    capacity = scenario.capacity(config, truth=False)
    if capacity <= 0:
        raise ValueError(f"{config.label()} cannot meet the SLO even when idle (declared)")
    return capacity


def hpa_plan(scenario: Scenario, config: ServingConfig, trace: Trace, reason: str) -> Plan:
    """``config`` under an HPA on requests/s per replica at 70 % of declared capacity."""
    a = scenario.spec.autoscaling
    target = HPA_TARGET_SHARE * declared_capacity(scenario, config)
    spec = HpaSpec(a.min_replicas, a.max_replicas, target)
    start = _bounded(scenario, replicas_for(opening_rate(trace), target))
    return Plan(config, HpaScaler(Hpa(spec)), start, reason)


@dataclass
class StaticPeak:
    name: str = "static"
    replan_seconds: int | None = None

    def start(self, scenario: Scenario, trace: Trace) -> Plan:
        config = scenario.initial_config()
        replicas = replicas_for(trace.peak_rps, declared_capacity(scenario, config))
        replicas = max(replicas, scenario.spec.autoscaling.min_replicas)
        return Plan(config, FixedReplicas(replicas), replicas, "static for the peak")

    def replan(self, now: float, history: History, current: Plan) -> Plan | None:
        return None


@dataclass
class TunedHpa:
    name: str = "hpa"
    replan_seconds: int | None = None

    def start(self, scenario: Scenario, trace: Trace) -> Plan:
        return hpa_plan(scenario, scenario.initial_config(), trace, "HPA at 70 % of capacity")

    def replan(self, now: float, history: History, current: Plan) -> Plan | None:
        return None


@dataclass
class Threshold:
    name: str = "threshold"
    replan_seconds: int | None = None

    def start(self, scenario: Scenario, trace: Trace) -> Plan:
        config = scenario.initial_config()
        capacity = declared_capacity(scenario, config)
        a = scenario.spec.autoscaling
        scaler = ThresholdScaler(capacity, a.min_replicas, a.max_replicas)
        start = _bounded(scenario, replicas_for(opening_rate(trace), 0.45 * capacity))
        return Plan(config, scaler, start, "thresholds 60 %/25 %, 240 s cooldown")

    def replan(self, now: float, history: History, current: Plan) -> Plan | None:
        return None


def offline_search(scenario: Scenario, capacity_types: list[str] | None = None) -> ServingConfig:
    """The configuration with the cheapest declared throughput per dollar at the SLO."""
    best: tuple[float, ServingConfig] | None = None
    for config in scenario.configs(capacity_types or ["on-demand"]):
        capacity = scenario.capacity(config, truth=False)
        if capacity <= 0:
            continue
        price_per_rps = scenario.replica_price(config) / capacity
        if best is None or price_per_rps < best[0]:
            best = (price_per_rps, config)
    if best is None:
        raise ValueError("no declared configuration meets the SLO")
    return best[1]


@dataclass
class OfflineSearch:
    name: str = "offline"
    replan_seconds: int | None = None

    def start(self, scenario: Scenario, trace: Trace) -> Plan:
        config = offline_search(scenario)
        return hpa_plan(scenario, config, trace, "offline search, HPA at 70 %")

    def replan(self, now: float, history: History, current: Plan) -> Plan | None:
        return None


BASELINES = {
    "static": StaticPeak,
    "hpa": TunedHpa,
    "threshold": Threshold,
    "offline": OfflineSearch,
}
