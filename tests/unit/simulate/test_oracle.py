"""Oracle bounds: below every policy, above the fluid bound, integer where it must be."""

from __future__ import annotations

import numpy as np
import pytest

from servingopt.simulate import traces as T
from servingopt.simulate.compare import compare, make_policy
from servingopt.simulate.oracle import oracle
from servingopt.simulate.world import Scenario


def test_oracle_is_below_every_policy_and_above_the_fluid_bound(scenario: Scenario) -> None:
    trace = T.diurnal(6 * 3600, peak=1500.0, seed=4)
    names = ["static", "hpa", "threshold", "offline", "servingopt"]
    result = compare(scenario, trace, [make_policy(n) for n in names], seed=4)
    assert set(result.results) == set(names)
    assert result.oracle.fluid_cost <= result.oracle.cost
    for r in result.results.values():
        assert result.oracle.cost <= r.cost * (1 + 1e-12)  # equal when both sit at minReplicas


def test_integer_mix_for_a_constant_demand(scenario: Scenario) -> None:
    best = oracle(scenario, np.full(3600, 1.0))
    config = best.best_config
    # A tiny demand still needs minReplicas (1) whole replicas of the cheapest offer.
    cheapest = min(scenario.replica_price(c) for c in scenario.configs())
    assert best.cost == pytest.approx(cheapest)
    # Demand of exactly k replicas of the best offer costs k of them at most.
    capacity = scenario.capacity(config, truth=True)
    k = 5
    bound = oracle(scenario, np.full(3600, k * capacity * 0.999))
    assert bound.cost <= k * scenario.replica_price(config) + 1e-9
    assert bound.fluid_cost <= bound.cost


def test_oracle_knows_the_truth(scenario: Scenario) -> None:
    from dataclasses import replace

    rates = np.full(3600, 3000.0)
    slower = replace(scenario, truth_factors={"*": 1.25})
    assert oracle(slower, rates).cost > oracle(scenario, rates).cost
