"""plan(): constraints, explanations and the JSON contract."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from servingopt.api import ServingPolicySpec
from servingopt.api.catalog_gen import default_catalog
from servingopt.model import ProfileCorrection
from servingopt.optimize import (
    AutoscalingCandidate,
    Evaluation,
    Observation,
    RunningConfig,
    plan,
)
from servingopt.optimize.candidates import find_candidates
from servingopt.values.correction import EVIDENCE_HALF_LIFE_S as HALF_LIFE

from .conftest import VISION_PROFILES, catalog, points, vision_spec

CONTRACT_KEYS = {
    "sloFeasible", "instanceType", "pool", "capacityType", "variant", "replicas",
    "autoscaling", "batching", "cache", "predicted", "reasons", "alternatives",
}  # fmt: skip


def _variants(*rows: tuple[str, float, int | None, list[Any]]) -> list[dict[str, Any]]:
    out = []
    for name, acc, mem, profiles in rows:
        v: dict[str, Any] = {"name": name, "accuracy": acc, "env": [{"name": "V", "value": name}]}
        if mem is not None:
            v["memoryMiB"] = mem
        v["profiles"] = profiles
        out.append(v)
    return out


def test_json_follows_the_contract() -> None:
    doc = plan(vision_spec(), catalog(), None, Observation.from_rps(200.0)).to_json()
    assert set(doc) >= CONTRACT_KEYS
    assert set(doc["replicas"]) == {"min", "max"}
    assert {"metric", "targetRequestsPerSecondPerReplica", "behavior"} <= set(doc["autoscaling"])
    assert set(doc["autoscaling"]["behavior"]) == {"scaleUp", "scaleDown"}
    assert set(doc["batching"]) == {"maxBatchSize", "maxQueueDelayMs"}
    assert "enabled" in doc["cache"]
    assert {"p99LatencyMs", "capacityPerReplicaRps", "hourlyCost", "replicas"} <= set(
        doc["predicted"]
    )
    for alt in doc["alternatives"]:
        assert {"instanceType", "variant", "hourlyCost", "p99LatencyMs", "rejected"} <= set(alt)
    json.dumps(doc, allow_nan=False)  # strict JSON: no inf/NaN


def test_behavior_is_an_hpa_v2_object() -> None:
    behavior = plan(vision_spec(), catalog(), None, Observation.from_rps(200.0)).behavior
    for direction in ("scaleUp", "scaleDown"):
        rules = behavior[direction]
        assert 0 <= rules["stabilizationWindowSeconds"] <= 3600
        assert rules["selectPolicy"] in ("Max", "Min", "Disabled")
        for policy in rules["policies"]:
            assert policy["type"] in ("Pods", "Percent")
            assert policy["value"] > 0 and 0 < policy["periodSeconds"] <= 1800


def test_cheaper_variant_below_accuracy_floor_is_not_chosen() -> None:
    fast = [{"instanceType": "g4dn.xlarge", "points": points(1.0, 0.2)}]
    spec = vision_spec(
        slo={"latencyP99Ms": 100, "minAccuracy": 0.75},
        variants=_variants(("fp32", 0.76, None, VISION_PROFILES), ("int4", 0.70, None, fast)),
    )
    decision = plan(spec, catalog(), None, Observation.from_rps(2000.0))
    assert decision.variant == "fp32"
    assert any("accuracy: variant int4" in r for r in decision.reasons)
    # without the floor the faster variant needs fewer replicas and wins
    loose = vision_spec(variants=spec.model_dump(by_alias=True)["variants"])
    assert plan(loose, catalog(), None, Observation.from_rps(2000.0)).variant == "int4"


def test_cheaper_variant_must_also_meet_latency() -> None:
    # int8 is cheaper to run in theory but its unloaded latency (150 ms) breaks the SLO
    slow = [{"instanceType": t, "points": points(150.0, 0.1)} for t in ("g4dn.xlarge",)]
    spec = vision_spec(
        variants=_variants(("fp32", 0.76, None, VISION_PROFILES), ("int8", 0.76, None, slow))
    )
    decision = plan(spec, catalog(), None, Observation.from_rps(200.0))
    assert decision.variant == "fp32"
    rejected = [a for a in decision.alternatives if a.variant == "int8"]
    assert rejected and "latency" in rejected[0].rejected


def test_model_must_fit_gpu_memory() -> None:
    spec = vision_spec(variants=_variants(("big", 0.8, 20_000, VISION_PROFILES)))
    decision = plan(spec, catalog(), None, Observation.from_rps(200.0))
    assert decision.instance_type == "c5.2xlarge" or not decision.slo_feasible
    gpu = [a for a in decision.alternatives if a.instance_type == "g4dn.xlarge"]
    assert gpu and "T4 has 16384 MiB" in gpu[0].rejected


def test_policy_allowed_pools_and_capacity_types() -> None:
    policy = ServingPolicySpec(allowed_pools=["cpu-c5", "gpu-v100"])
    decision = plan(vision_spec(), catalog(), policy, Observation.from_rps(200.0))
    assert decision.instance_type in ("c5.2xlarge", "p3.2xlarge")
    assert all(a.instance_type != "g4dn.xlarge" for a in decision.alternatives)
    spot_only = ServingPolicySpec(allowed_capacity_types=["spot"])
    decision = plan(vision_spec(), catalog(), spot_only, Observation.from_rps(200.0))
    assert not decision.slo_feasible and decision.instance_type is None
    assert any("capacity type" in r for r in decision.reasons)


def test_spot_mix_keeps_an_on_demand_base_and_costs_interruptions() -> None:
    spec = vision_spec(candidates={"capacityTypes": ["on-demand", "spot"],
                                   "instanceTypes": ["g4dn.xlarge"]})  # fmt: skip
    policy = ServingPolicySpec.model_validate(
        {"spot": {"maxPercent": 50, "onDemandBaseReplicas": 1}}
    )
    decision = plan(spec, catalog(), policy, Observation.from_rps(3000.0))
    assert decision.capacity_type == "spot"
    n = decision.replicas
    assert decision.on_demand_replicas == max(1, math.ceil(n * 0.5))
    assert decision.spot_replicas == n - decision.on_demand_replicas
    risk = decision.spot_replicas * 0.02 * (120 + 60) / 3600 * 0.526
    expected = decision.on_demand_replicas * 0.526 + decision.spot_replicas * 0.2104 + risk
    assert decision.hourly_cost == pytest.approx(expected)
    assert decision.interruption_cost_hourly == pytest.approx(risk)


@pytest.mark.parametrize("running", ["spot", "on-demand"])
def test_a_spot_mix_within_its_on_demand_base_costs_the_same_and_the_running_one_stays(
    running: str,
) -> None:
    spec = vision_spec(candidates={"capacityTypes": ["on-demand", "spot"],
                                   "instanceTypes": ["g4dn.xlarge"]})  # fmt: skip
    policy = ServingPolicySpec.model_validate(
        {"spot": {"maxPercent": 50, "onDemandBaseReplicas": 2}}
    )
    current = RunningConfig(instance_type="g4dn.xlarge", variant="fp32", capacity_type=running)
    decision = plan(spec, catalog(), policy, Observation.from_rps(100.0, current=current))
    assert decision.replicas <= 2 and decision.spot_replicas == 0  # all within the base
    assert decision.capacity_type == running  # a tie is no reason to roll out


def test_budget_refuses_plans_above_it() -> None:
    cheap = ServingPolicySpec.model_validate({"budgets": {"maxHourlyCostPerModelServing": 0.5}})
    decision = plan(vision_spec(), catalog(), cheap, Observation.from_rps(200.0))
    assert not decision.slo_feasible  # g4dn costs 0.526, two c5 nodes 0.68
    assert any("budget" in r for r in decision.reasons)
    ok = ServingPolicySpec.model_validate({"budgets": {"maxHourlyCostPerModelServing": 0.6}})
    decision = plan(vision_spec(), catalog(), ok, Observation.from_rps(200.0))
    assert decision.slo_feasible and decision.hourly_cost <= 0.6
    assert decision.max_replicas == 1  # the budget affords one g4dn node


def test_batching_disabled_plans_batch_one() -> None:
    spec = vision_spec(batching={"enabled": False})
    decision = plan(spec, catalog(), None, Observation.from_rps(500.0))
    assert (decision.max_batch_size, decision.max_queue_delay_ms) == (1, 0.0)


def test_batching_bounds_are_respected() -> None:
    spec = vision_spec(
        batching={"maxBatchSize": {"min": 2, "max": 8},
                  "maxQueueDelayMicroseconds": {"min": 1000, "max": 3000}}
    )  # fmt: skip
    decision = plan(spec, catalog(), None, Observation.from_rps(2000.0))
    assert 2 <= decision.max_batch_size <= 8
    assert 1.0 <= decision.max_queue_delay_ms <= 3.0


def test_infeasible_slo_gives_least_bad_plan_with_reasons() -> None:
    spec = vision_spec(slo={"latencyP99Ms": 2})
    decision = plan(spec, catalog(), None, Observation.from_rps(200.0))
    assert not decision.slo_feasible
    assert decision.instance_type is not None  # least bad is still described
    assert decision.reasons[0].startswith("no configuration meets")
    assert any(r.startswith("latency:") for r in decision.reasons)
    json.dumps(decision.to_json(), allow_nan=False)


def test_max_replicas_bound_makes_plan_infeasible() -> None:
    spec = vision_spec(
        candidates={"instanceTypes": ["c5.2xlarge"]},
        autoscaling={"minReplicas": 1, "maxReplicas": 2},
    )
    decision = plan(spec, catalog(), None, Observation.from_rps(500.0))
    assert not decision.slo_feasible
    assert decision.replicas <= 2
    assert any("maxReplicas" in r for r in decision.reasons)


def test_no_demand_is_a_clear_result() -> None:
    decision = plan(vision_spec(), catalog(), None, Observation())
    assert not decision.slo_feasible
    assert "no demand" in decision.reasons[0]


def test_no_profiles_is_a_clear_result() -> None:
    spec = vision_spec(candidates={"pools": ["nowhere"]})
    decision = plan(spec, catalog(), None, Observation.from_rps(10.0))
    assert not decision.slo_feasible and decision.instance_type is None


def test_cache_auto_turns_on_when_hits_save_replicas() -> None:
    spec = vision_spec(caching={"mode": "Auto", "maxSizeMiB": 512},
                       candidates={"instanceTypes": ["c5.2xlarge"]})  # fmt: skip
    hot = plan(spec, catalog(), None, Observation.from_rps(300.0, cache_hit_rate=0.6))
    cold = plan(spec, catalog(), None, Observation.from_rps(300.0, cache_hit_rate=0.0))
    assert hot.cache.enabled and hot.cache.size_mib == 512
    assert not cold.cache.enabled
    assert hot.replicas < cold.replicas
    assert hot.cache.hourly_saving > hot.cache.hourly_cost


def test_cache_mode_off_is_respected_whatever_the_hit_rate() -> None:
    spec = vision_spec(caching={"mode": "Off"})
    decision = plan(spec, catalog(), None, Observation.from_rps(300.0, cache_hit_rate=0.9))
    assert not decision.cache.enabled


def _history(rps: np.ndarray, step: float = 60.0, **cols: Any) -> Observation:
    ts = np.arange(rps.size) * step
    return Observation(timestamps_s=ts, requests_per_second=rps.astype(float), **cols)


def test_learning_slower_reality_raises_replicas() -> None:
    spec = vision_spec(candidates={"instanceTypes": ["c5.2xlarge"]})
    rps = np.full(120, 60.0)
    base = plan(spec, catalog(), None, _history(rps))
    # observed p99 three times what the profile predicts at 20 req/s per replica
    slow = _history(
        rps,
        p99_latency_ms=np.full(120, 180.0),
        replicas=np.full(120, 3.0),
        instance_types=("c5.2xlarge",) * 120,
        variants=("fp32",) * 120,
    )
    learned = plan(spec, catalog(), None, slow)
    factor = learned.corrections[("c5.2xlarge", "fp32")].factor
    assert factor > 1.2
    assert learned.capacity_per_replica_rps < base.capacity_per_replica_rps
    assert learned.replicas > base.replicas
    assert any(r.startswith("learning:") for r in learned.reasons)


def test_learned_corrections_carry_over_and_decay_without_evidence() -> None:
    key = ("c5.2xlarge", "fp32")
    corr = {key: ProfileCorrection(factor=2.0, observations=5)}
    # no history, no clock: carried over as learned
    decision = plan(vision_spec(), catalog(), None, Observation.from_rps(10.0, corrections=corr))
    assert decision.corrections[key].factor == 2.0
    # a history without evidence for it: its evidence ages from the newest interval ...
    ts = 60.0 * np.arange(30.0)
    quiet = Observation(timestamps_s=ts, requests_per_second=np.full(30, 10.0), corrections=corr)
    stamped = plan(vision_spec(), catalog(), None, quiet).corrections[key]
    assert (stamped.factor, stamped.evidence_at) == (2.0, ts[-1])
    # ... and an hour later the plan uses half of log(factor)
    later = Observation(
        timestamps_s=ts + ts[-1] + HALF_LIFE,
        requests_per_second=np.full(30, 10.0),
        corrections={key: stamped},
    )
    found = find_candidates(vision_spec(), catalog(), ServingPolicySpec(), later)
    factors = {(c.itype.name, c.variant): c.factor for c in found.candidates}
    age = later.timestamps_s[-1] - ts[-1]
    assert factors[key] == pytest.approx(2.0 ** (0.5 ** (age / HALF_LIFE)))
    assert 1.0 < factors[key] < 2.0


def test_predictive_minimum_rises_before_a_daily_peak() -> None:
    day = 1440
    minutes = np.arange(3 * day)
    # a daily peak at 12:00 of 1000 req/s over a 100 req/s base
    rps = 100.0 + 900.0 * np.exp(-((((minutes % day) - 720) / 60.0) ** 2))
    before_peak = 720 - 30  # history ends 30 minutes before the peak
    obs_quiet = _history(rps[: 2 * day + 300])  # ends at 05:00, far from the peak
    obs_ahead = _history(rps[: 2 * day + before_peak])
    spec = vision_spec(candidates={"instanceTypes": ["c5.2xlarge"]},
                       autoscaling={"minReplicas": 1, "maxReplicas": 100,
                                    "startupSeconds": 600})  # fmt: skip
    quiet = plan(spec, catalog(), None, obs_quiet)
    ahead = plan(spec, catalog(), None, obs_ahead)
    assert quiet.traffic == ahead.traffic == "periodic"
    assert ahead.min_replicas > quiet.min_replicas
    assert any("ahead of the predicted" in r for r in ahead.reasons)


def test_evaluator_hook_is_used_to_choose_autoscaling() -> None:
    seen: list[AutoscalingCandidate] = []

    def evaluator(candidate: AutoscalingCandidate) -> Evaluation:
        seen.append(candidate)
        # an evaluator that finds low targets cheaper (the model's rule would not)
        return Evaluation(hourly_cost=candidate.target_rps, slo_violation_fraction=0.0)

    rng = np.random.default_rng(1)
    decision = plan(
        vision_spec(), catalog(), None, _history(rng.uniform(150, 250, 300)), evaluator=evaluator
    )
    assert len(seen) > 1
    assert decision.target_rps_per_replica == pytest.approx(min(c.target_rps for c in seen))


def test_concurrency_metric_gets_a_concurrency_target() -> None:
    spec = vision_spec(autoscaling={"metric": "Concurrency", "metricName": "inflight"})
    decision = plan(spec, catalog(), None, Observation.from_rps(200.0))
    doc = decision.to_json()["autoscaling"]
    assert doc["metric"] == "inflight" and doc["metricType"] == "Concurrency"
    # Little's law: concurrency = rate x latency, with latency under the SLO
    assert 0 < decision.target_value <= decision.target_rps_per_replica * 0.1


def test_current_config_delay_is_used_for_learning() -> None:
    obs = Observation.from_rps(10.0, current=RunningConfig(max_queue_delay_ms=2.0))
    assert plan(vision_spec(), catalog(), None, obs).slo_feasible


def test_minimum_replica_floor_is_priced_into_the_choice() -> None:
    """Spiky traffic at its trough: 5 req/s now, but the p75 demand is 100 req/s.

    At 5 req/s one c5.2xlarge node ($0.34) would do; the spiky floor (p75 = 100 req/s)
    needs >= 100 / 40 = 3 CPU replicas at the very best (a CPU replica serves < 50 req/s,
    40 at an 80 % target), and the ramp margin cuts the target further, so >= 2 nodes
    ($0.68) - while one T4 ($0.526) covers it.  The choice must see the floor."""
    minutes = np.arange(600)
    rps = np.where(minutes % 5 < 3, 5.0, 100.0)
    rps[minutes % 97 == 0] = 1500.0  # rare spikes make it spiky
    rps[-30:] = 5.0  # history ends in a trough
    decision = plan(vision_spec(), catalog(), None, _history(rps))
    assert decision.traffic == "spiky"
    assert decision.instance_type == "g4dn.xlarge"
    assert decision.replicas * decision.target_rps_per_replica >= 100.0
    steady = plan(vision_spec(), catalog(), None, _history(np.full(600, 5.0)))
    assert steady.traffic == "steady" and steady.instance_type == "c5.2xlarge"


SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "traces"


@pytest.mark.skipif(
    not (SHARED / "alibaba-genai-2026-qps.csv").exists(), reason="shared traces absent"
)
def test_real_production_demand_curve() -> None:
    """22 h of a production Stable Diffusion service's QPS (Alibaba GenTD26), per minute,
    rescaled to a 300 req/s mean: bursty, so the plan must hold capacity for its p75."""
    import csv

    with (SHARED / "alibaba-genai-2026-qps.csv").open() as f:
        rows = [(float(r["timestamp_anon"]), float(r["value"])) for r in csv.DictReader(f)]
    ts = np.array([r[0] for r in rows])
    minute = ((ts - ts.min()) // 60).astype(int)
    rps = np.bincount(minute, weights=np.array([r[1] for r in rows]))
    rps *= 300.0 / rps.mean()
    decision = plan(vision_spec(), catalog(), None, _history(rps))
    assert decision.slo_feasible
    assert decision.traffic in ("spiky", "variable")
    covered = decision.min_replicas * decision.target_rps_per_replica
    assert covered >= float(np.quantile(rps, 0.75)) * 0.999 or decision.min_replicas == 50


# A small LLM on a T4: a full batch of 32 takes 840 ms, far above a 450 ms SLO.
LLM_T4 = [
    {"instanceType": "g4dn.xlarge",
     "points": [{"batchSize": b, "latencyMs": t} for b, t in
                ((1, 260.0), (2, 272.0), (4, 300.0), (8, 372.0), (16, 520.0), (32, 840.0))]},
]  # fmt: skip


def _llm_spec() -> Any:
    return vision_spec(
        slo={"latencyP99Ms": 450},
        variants=_variants(("awq", 0.83, 4096, LLM_T4)),
        candidates={"instanceTypes": ["g4dn.xlarge"], "capacityTypes": ["on-demand"]},
        batching={"maxBatchSize": {"min": 1, "max": 32},
                  "maxQueueDelayMicroseconds": {"min": 0, "max": 0}},
    )  # fmt: skip


@pytest.mark.parametrize("factor", [1.0, 1.3])
def test_max_batch_whose_own_service_time_misses_the_slo_is_never_chosen(factor: float) -> None:
    # the queue model alone gives B = 32 the most capacity (batches stay small at that
    # load), but a burst that fills a batch makes every request in it miss the SLO
    corr = {("g4dn.xlarge", "awq"): ProfileCorrection(factor=factor, observations=5)}
    decision = plan(_llm_spec(), catalog(), None, Observation.from_rps(1.0, corrections=corr))
    learned = decision.corrections[("g4dn.xlarge", "awq")].factor
    t_b = {p["batchSize"]: p["latencyMs"] for p in LLM_T4[0]["points"]}
    assert decision.slo_feasible
    assert t_b[decision.max_batch_size] * learned <= 450
    assert t_b[2 * decision.max_batch_size] * learned > 450  # the largest that fits


def test_learned_speed_up_never_targets_beyond_the_declared_stability_limit() -> None:
    # a correction below 1 is learned from p99s at the loads seen, not from full batches
    spec = vision_spec(
        slo={"latencyP99Ms": 1000},
        candidates={"instanceTypes": ["g4dn.xlarge"], "capacityTypes": ["on-demand"]},
    )
    corr = {("g4dn.xlarge", "fp32"): ProfileCorrection(factor=0.5, observations=5)}
    aggressive = ServingPolicySpec.model_validate({"aggressiveness": "Aggressive"})
    decision = plan(spec, catalog(), aggressive, Observation.from_rps(2000.0, corrections=corr))
    b = decision.max_batch_size
    declared_limit = 1000.0 * b / (4.0 + 1.0 * b)  # t(B) = 4 + B ms
    assert decision.corrections[("g4dn.xlarge", "fp32")].factor < 0.6
    assert decision.capacity_per_replica_rps <= 0.95 * declared_limit + 1e-9
    assert decision.target_rps_per_replica < declared_limit


BATCHES = (1, 2, 4, 8, 16, 32)


def _llm_two_gpus() -> Any:
    """support-llm's awq-int4 on A10G (g5) and L4 (g6), at least 2 replicas."""
    curves = {
        "g5.xlarge": (150.0, 156.0, 172.0, 210.0, 290.0, 450.0),
        "g6.xlarge": (190.0, 198.0, 220.0, 270.0, 370.0, 580.0),
    }
    profiles = [
        {"instanceType": name,
         "points": [{"batchSize": b, "latencyMs": t} for b, t in zip(BATCHES, ts, strict=True)]}
        for name, ts in curves.items()
    ]  # fmt: skip
    return vision_spec(
        slo={"latencyP99Ms": 450},
        variants=_variants(("awq", 0.83, 4096, profiles)),
        resources={"cpuMillicores": 3000, "memoryMiB": 12288},
        candidates={"instanceTypes": list(curves), "capacityTypes": ["on-demand"]},
        batching={"maxBatchSize": {"min": 1, "max": 32},
                  "maxQueueDelayMicroseconds": {"min": 0, "max": 0}},
        autoscaling={"minReplicas": 2, "maxReplicas": 12, "startupSeconds": 180},
    )  # fmt: skip


@pytest.mark.parametrize("noise", [0.0, 0.08])
def test_running_placement_is_left_only_for_a_saving_that_holds_over_the_forecast(
    noise: float,
) -> None:
    # About 13 req/s: two L4s ($1.61/h) are cheaper than two A10Gs ($2.01/h) at the
    # forecast mean, but a third L4 is due within the forecast band, where the A10Gs
    # still suffice: leaving the A10Gs would flip back as soon as demand rose.
    spec, cat = _llm_two_gpus(), default_catalog()
    rps = 12.8 * (1.0 + noise * np.random.default_rng(0).standard_normal(180))

    def chosen(running: str | None) -> str | None:
        current = RunningConfig(instance_type=running, variant="awq", capacity_type="on-demand")
        obs = _history(rps, current=current)
        return plan(spec, cat, None, obs).instance_type

    assert chosen(None) == "g6.xlarge"  # nothing runs: the cheapest at the mean
    assert chosen("g6.xlarge") == "g6.xlarge"
    # a noisy demand stays on the A10Gs; a steady one (no band) takes the saving
    assert chosen("g5.xlarge") == ("g5.xlarge" if noise else "g6.xlarge")
