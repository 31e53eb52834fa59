"""Properties of plan() over random demands, SLOs, prices and policies."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from servingopt.api import ServingPolicySpec
from servingopt.optimize import Decision, Observation, plan

from .conftest import catalog, vision_spec

demands = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)
slos = st.floats(min_value=1.0, max_value=2000.0, allow_nan=False)
aggressiveness = st.sampled_from(["Conservative", "Balanced", "Aggressive"])
capacity_types = st.sampled_from([["on-demand"], ["on-demand", "spot"], ["spot"]])
SETTINGS = settings(max_examples=40, deadline=None)


def _plan(
    demand: float, slo: float, aggr: str, caps: list[str], **cat: dict[str, float]
) -> Decision:
    spec = vision_spec(
        slo={"latencyP99Ms": slo},
        candidates={"capacityTypes": caps},
        autoscaling={"minReplicas": 1, "maxReplicas": 10000},
    )
    policy = ServingPolicySpec(aggressiveness=aggr)  # type: ignore[arg-type]
    return plan(spec, catalog(**cat), policy, Observation.from_rps(demand))


def _provisioned(d: Decision) -> float:
    return d.replicas * d.capacity_per_replica_rps


@SETTINGS
@given(demands, demands, slos, aggressiveness, capacity_types)
def test_more_demand_never_yields_less_capacity(
    d1: float, d2: float, slo: float, aggr: str, caps: list[str]
) -> None:
    low, high = sorted((d1, d2))
    a, b = _plan(low, slo, aggr, caps), _plan(high, slo, aggr, caps)
    if a.slo_feasible and b.slo_feasible:
        assert _provisioned(b) >= _provisioned(a) - 1e-6
        assert _provisioned(b) >= high * 0.999  # and it covers the demand


@SETTINGS
@given(demands, slos, slos, aggressiveness, capacity_types)
def test_stricter_slo_never_yields_a_cheaper_plan(
    demand: float, s1: float, s2: float, aggr: str, caps: list[str]
) -> None:
    strict, loose = sorted((s1, s2))
    a, b = _plan(demand, strict, aggr, caps), _plan(demand, loose, aggr, caps)
    if a.slo_feasible:
        assert b.slo_feasible
        assert a.hourly_cost >= b.hourly_cost - 1e-9


@SETTINGS
@given(demands, slos, aggressiveness, capacity_types, st.floats(0.05, 1.0))
def test_cheaper_price_for_the_chosen_type_never_costs_more(
    demand: float, slo: float, aggr: str, caps: list[str], discount: float
) -> None:
    before = _plan(demand, slo, aggr, caps)
    if not before.slo_feasible or before.instance_type is None:
        return
    key = before.instance_type.replace(".", "_")
    old = catalog().by_name()[before.instance_type]
    cheaper = {"onDemandHourly": old.on_demand_hourly * discount}
    if old.spot_hourly is not None:
        cheaper["spotHourly"] = min(old.spot_hourly, cheaper["onDemandHourly"])
    after = _plan(demand, slo, aggr, caps, **{key: cheaper})
    assert after.slo_feasible
    assert after.hourly_cost <= before.hourly_cost + 1e-9


@SETTINGS
@given(demands, slos, aggressiveness, capacity_types)
def test_feasible_plans_meet_the_slo(demand: float, slo: float, aggr: str, caps: list[str]) -> None:
    d = _plan(demand, slo, aggr, caps)
    if d.slo_feasible:
        assert d.p99_latency_ms is not None and d.p99_latency_ms <= slo
        assert d.min_replicas <= d.replicas <= d.max_replicas
        assert d.target_rps_per_replica <= d.capacity_per_replica_rps
        assert d.replicas * d.target_rps_per_replica >= demand * 0.999
    json.dumps(d.to_json(), allow_nan=False)


@SETTINGS
@given(
    st.floats(min_value=0.0, max_value=1e7),
    st.floats(min_value=0.01, max_value=600000.0),
    st.integers(1, 50),
    st.integers(0, 100),
    st.floats(min_value=0.01, max_value=100.0),
)
def test_any_input_gives_a_decision_never_an_exception(
    demand: float, slo: float, max_replicas: int, spot_percent: int, budget: float
) -> None:
    spec = vision_spec(
        slo={"latencyP99Ms": slo},
        candidates={"capacityTypes": ["on-demand", "spot"]},
        autoscaling={"minReplicas": 1, "maxReplicas": max_replicas},
    )
    policy = ServingPolicySpec.model_validate(
        {"spot": {"maxPercent": spot_percent},
         "budgets": {"maxHourlyCostPerModelServing": budget}}
    )  # fmt: skip
    d = plan(spec, catalog(), policy, Observation.from_rps(demand))
    assert isinstance(d.slo_feasible, bool) and d.reasons
    if d.slo_feasible:
        assert d.hourly_cost <= budget + 1e-9 and d.replicas <= max_replicas
    json.dumps(d.to_json(), allow_nan=False)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(0.0, 3000.0), min_size=3, max_size=400),
    slos,
    st.floats(0.0, 0.95),
    st.sampled_from(["Off", "On", "Auto"]),
    st.integers(0, 100),
)
def test_invariants_with_history_cache_and_spot(
    history: list[float], slo: float, hit: float, mode: str, spot_percent: int
) -> None:
    spec = vision_spec(
        slo={"latencyP99Ms": slo},
        candidates={"capacityTypes": ["on-demand", "spot"]},
        caching={"mode": mode, "maxSizeMiB": 256},
        autoscaling={"minReplicas": 1, "maxReplicas": 200},
    )
    policy = ServingPolicySpec.model_validate({"spot": {"maxPercent": spot_percent}})
    rps = np.array(history)
    obs = Observation(
        timestamps_s=np.arange(rps.size) * 60.0, requests_per_second=rps, cache_hit_rate=hit
    )
    d = plan(spec, catalog(), policy, obs)
    if d.slo_feasible:
        assert d.p99_latency_ms is not None and d.p99_latency_ms <= slo
        assert 1 <= d.min_replicas <= d.replicas <= d.max_replicas <= 200
        served = d.demand_rps * (1 - d.cache.load_reduction)
        assert d.replicas * d.target_rps_per_replica >= served * 0.999
        assert d.on_demand_replicas + d.spot_replicas == d.replicas
    if mode != "Auto" and d.instance_type is not None:
        assert d.cache.enabled == (mode == "On")
    json.dumps(d.to_json(), allow_nan=False)
