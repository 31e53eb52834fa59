"""Policies against each other, including servingopt learning from a slower reality."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from servingopt.simulate import traces as T
from servingopt.simulate.compare import compare, make_policy
from servingopt.simulate.policies import offline_search
from servingopt.simulate.world import Scenario

from .conftest import serving


def test_offline_search_picks_the_cheapest_declared_throughput(scenario: Scenario) -> None:
    best = offline_search(scenario)
    price_per_rps = scenario.replica_price(best) / scenario.capacity(best, truth=False)
    for config in scenario.configs(["on-demand"]):
        capacity = scenario.capacity(config, truth=False)
        if capacity > 0:
            assert price_per_rps <= scenario.replica_price(config) / capacity + 1e-12


def test_when_reality_is_slower_offline_loses_the_slo_and_servingopt_recovers(
    catalog,  # type: ignore[no-untyped-def]
) -> None:
    ms = serving()
    ms.spec.slo.latency_p99_ms = 40
    declared = Scenario(ms, catalog)
    chosen = offline_search(declared)
    # The pool (d) picks is 60 % slower than its profile says; the others are honest.
    reality = replace(declared, truth_factors={chosen.instance_type: 1.6})
    peak = 4 * declared.capacity(chosen, truth=False)
    trace = T.diurnal(2 * 3600, peak=peak, ratio=2.0, seed=1)
    result = compare(reality, trace, [make_policy("offline"), make_policy("servingopt")], seed=1)
    offline, adaptive = result.results["offline"], result.results["servingopt"]
    assert offline.slo_attainment < 0.5
    assert adaptive.slo_attainment > offline.slo_attainment + 0.3
    # After learning, servingopt meets the SLO: the last hour is within it.
    last_hour = slice(-60, None)
    within = np.asarray(adaptive.minutes["within"])[last_hour].sum()
    requests = np.asarray(adaptive.minutes["rps"])[last_hour].sum() * 60
    assert within / requests > 0.99
    assert len(adaptive.decisions) >= 2  # it changed its configuration after observing


def test_servingopt_replans_without_peeking(scenario: Scenario) -> None:
    # Identical first halves give identical first-half decisions, whatever follows.
    first = T.diurnal(2 * 3600, peak=1500.0, seed=3)
    rates = first.rates.copy()
    rates[3600:] *= 3.0
    second = T.Trace("diurnal-then-surge", rates)
    a = compare(scenario, first, [make_policy("servingopt")], seed=2).results["servingopt"]
    b = compare(scenario, second, [make_policy("servingopt")], seed=2).results["servingopt"]
    early = [d for d in a.decisions if d[0] < 3600]
    assert early == [d for d in b.decisions if d[0] < 3600]
    assert a.minutes["replicas"][:60] == b.minutes["replicas"][:60]
