"""The replay engine: conservation, analytic steady state, determinism, start-up, rollouts."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest

from servingopt.simulate import traces as T
from servingopt.simulate.engine import FixedReplicas, History, Plan, replay
from servingopt.simulate.policies import TunedHpa
from servingopt.simulate.world import Scenario, ServingConfig


@dataclass
class Fixed:
    """A fixed replica count on one configuration, optionally switching at ``switch_at``."""

    config: ServingConfig
    replicas: int
    switch_to: ServingConfig | None = None
    switch_at: float = math.inf
    name: str = "fixed"
    replan_seconds: int | None = 300

    def start(self, scenario: Scenario, trace: T.Trace) -> Plan:
        return Plan(self.config, FixedReplicas(self.replicas), self.replicas)

    def replan(self, now: float, history: History, current: Plan) -> Plan | None:
        if self.switch_to and now >= self.switch_at and current.config != self.switch_to:
            return Plan(self.switch_to, current.scaler, self.replicas, "switch")
        return None


def test_constant_load_on_a_static_config_matches_the_analytic_steady_state(
    scenario: Scenario,
) -> None:
    config = scenario.initial_config()
    latency = scenario.true_latency(config)
    replicas, rate = 4, 0.5 * 4 * latency.max_rps  # utilisation 50 %
    trace = T.steady(1800, mean=rate)
    result = replay(scenario, trace, Fixed(config, replicas))
    hours = 1800 / 3600
    assert result.replica_hours == pytest.approx(replicas * hours)
    assert result.cost == pytest.approx(replicas * hours * scenario.node_price(config))
    expected_within = 1.0 - float(latency.survival(scenario.slo_ms, rate / replicas))
    assert result.slo_attainment == pytest.approx(expected_within, abs=0.01)
    expected_p99 = latency.quantile_ms(0.99, rate / replicas)
    assert result.p99_ms == pytest.approx(expected_p99, rel=0.1)
    assert result.dropped == 0
    assert np.mean(result.minutes["rps"]) == pytest.approx(rate, rel=0.02)
    served_per_replica = (result.served / 1800) / np.mean(result.minutes["replicas"])
    assert served_per_replica / latency.max_rps == pytest.approx(0.5, rel=0.02)  # utilisation


def test_every_request_is_served_or_dropped_even_when_overloaded(scenario: Scenario) -> None:
    config = scenario.initial_config()
    capacity = scenario.true_latency(config).max_rps
    trace = T.steady(1800, mean=1.5 * capacity, noise=0.2, seed=3)  # beyond 1 replica
    result = replay(scenario, trace, Fixed(config, 1), seed=1)
    arrivals = trace.arrivals(np.random.default_rng(1))
    assert result.requests == int(arrivals.sum())
    assert result.dropped > 0
    assert result.served + result.dropped == pytest.approx(result.requests)
    assert 0 <= result.within_slo <= result.served + 1e-6
    assert result.slo_attainment < 0.1


def test_same_seed_same_result_other_seed_other_arrivals(scenario: Scenario) -> None:
    trace = T.diurnal(3 * 3600, peak=800.0, seed=2)
    a = replay(scenario, trace, TunedHpa(), seed=5)
    b = replay(scenario, trace, TunedHpa(), seed=5)
    c = replay(scenario, trace, TunedHpa(), seed=6)
    assert (a.cost, a.within_slo, a.p99_ms, a.minutes["replicas"]) == (
        b.cost,
        b.within_slo,
        b.p99_ms,
        b.minutes["replicas"],
    )
    assert a.requests != c.requests


def test_new_pods_wait_for_node_provisioning_and_model_load(scenario: Scenario) -> None:
    config = scenario.initial_config()
    capacity = scenario.capacity(config, truth=False)
    rates = np.full(1800, 0.5 * capacity)
    rates[300:] = 3.0 * capacity  # step up at t=300
    result = replay(scenario, T.Trace("step", rates), TunedHpa())
    ready = np.asarray(result.minutes["replicas"])
    delay = scenario.startup_seconds(config, new_node=True)
    # The HPA reacts within a minute or so, the pods then need `delay` seconds.
    assert ready[300 // 60 + 1] == pytest.approx(ready[0])
    assert np.all(ready[: (300 + delay) // 60] <= ready[0] + 1e-9)
    assert ready[-1] >= 4


def test_rolling_to_a_new_configuration_keeps_serving(scenario: Scenario) -> None:
    old = scenario.initial_config()
    new = ServingConfig("g4dn.xlarge", "on-demand", "fp16", 8, 2.0)
    rate = 0.5 * 3 * scenario.capacity(old, truth=True)
    policy = Fixed(old, 3, switch_to=new, switch_at=600)
    result = replay(scenario, T.steady(2400, mean=rate), policy)
    assert result.dropped == 0
    assert result.slo_attainment > 0.99
    assert [d[1] for d in result.decisions] == [old.label(), new.label()]
    assert "g4dn.xlarge/on-demand" in result.node_hours
    assert result.minute_config[-1] == new.label()
    # maxUnavailable rounds 25 % of 3 down to 0: never fewer than 3 ready replicas.
    assert min(result.minutes["replicas"]) >= 3
    assert result.node_hours["g5.xlarge/on-demand"] > 0


@dataclass
class Recording(Fixed):
    """:class:`Fixed` that keeps the history it was handed last."""

    seen: History | None = None

    def replan(self, now: float, history: History, current: Plan) -> Plan | None:
        self.seen = history
        return super().replan(now, history, current)


def test_minutes_of_a_rollout_are_recorded_without_a_configuration(scenario: Scenario) -> None:
    old = scenario.initial_config()
    new = ServingConfig("g4dn.xlarge", "on-demand", "fp16", 8, 2.0)
    rate = 0.5 * 3 * scenario.capacity(old, truth=True)
    policy = Recording(old, 3, switch_to=new, switch_at=600)
    replay(scenario, T.steady(3600, mean=rate), policy)
    assert policy.seen is not None
    types = policy.seen.instance_types
    assert types[:10] == [old.instance_type] * 10  # before the switch at minute 10
    mixed = [i for i, t in enumerate(types) if t == ""]
    # new pods wait for nodes and the model: old and new revisions serve together
    assert mixed and mixed[0] == 10 and mixed == list(range(10, mixed[-1] + 1))
    assert all(t == new.instance_type for t in types[mixed[-1] + 1 :])
    assert np.isnan(policy.seen.max_batch.last(len(types))[mixed]).all()


def test_slower_reality_lowers_attainment(scenario: Scenario) -> None:
    config = scenario.initial_config()
    rate = 0.85 * 4 * scenario.capacity(config, truth=True)
    trace = T.steady(1200, mean=rate)
    honest = replay(scenario, trace, Fixed(config, 4))
    slower = replay(replace(scenario, truth_factors={"*": 1.25}), trace, Fixed(config, 4))
    assert slower.slo_attainment < honest.slo_attainment
    assert slower.cost == pytest.approx(honest.cost)


def test_spot_interruptions_are_seeded_and_cost_restarts(scenario: Scenario) -> None:
    spot = ServingConfig("g5.xlarge", "spot", "fp16", 8, 2.0)
    noisy = replace(scenario, spot_interruptions=True)
    catalog = noisy.catalog.model_copy(deep=True)
    for t in catalog.spec.instance_types:
        t.spot_interruptions_per_hour = 1.0
    noisy = replace(noisy, catalog=catalog)
    trace = T.steady(3 * 3600, mean=100.0)
    a = replay(noisy, trace, Fixed(spot, 3), seed=4)
    b = replay(noisy, trace, Fixed(spot, 3), seed=4)
    calm = replay(replace(noisy, spot_interruptions=False), trace, Fixed(spot, 3), seed=4)
    assert a.replica_hours == b.replica_hours
    assert a.replica_hours < calm.replica_hours  # replacements spend time starting up
    assert a.spot_interruptions == b.spot_interruptions > 0 == calm.spot_interruptions
