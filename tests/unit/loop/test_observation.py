"""The loop's rules between the live world and the planner: Observation in, Proposal out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from servingopt import loop
from servingopt.api import InstanceCatalog, ModelServing, ServingPolicySpec
from servingopt.api.validation import load_one
from servingopt.guard import GuardMemory
from servingopt.model import ProfileCorrection
from servingopt.optimize.planner import plan
from servingopt.values import MetricsSample, Observation, ServingConfig

ROOT = Path(__file__).resolve().parents[3]
V100 = ServingConfig("p3.2xlarge", "gpu-v100", None, "fp32", 3, 3, 1, 0)
T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def catalog() -> InstanceCatalog:
    found: InstanceCatalog = load_one(
        ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog
    )
    return found


@pytest.fixture(scope="module")
def resnet() -> ModelServing:
    found: ModelServing = load_one(
        ROOT / "samples/modelservings/resnet50-classifier.yaml", ModelServing
    )
    return found


def sample(points: int = 10) -> MetricsSample:
    history = tuple((T0 + 60 * i, 1500.0) for i in range(points))
    p99 = tuple((T0 + 60 * i, 12.0) for i in range(points))
    return MetricsSample(request_rate=1500.0, replicas=3, demand_history=history, p99_history=p99)


def since(at: float | None) -> GuardMemory:
    """Memory whose last change was seen rolled out at ``at`` (None: never changed)."""
    if at is None:
        return GuardMemory()
    return GuardMemory(last_change_at=at - 100, rolled_at=at - 100, serving_since=at)


def observe(
    got: MetricsSample, running: ServingConfig, replicas: int | None, memory: GuardMemory
) -> Observation:
    inp = loop.LoopInput(
        now=T0 + 3600,
        mode="Auto",
        spec=None,  # type: ignore[arg-type]  # the observation reads neither spec nor catalog
        catalog=None,  # type: ignore[arg-type]
        policy=ServingPolicySpec(),
        running=running,
        replicas=replicas,
        history=got.history(),
        demand_rps=got.request_rate,
        memory=memory,
    )
    return loop.observation(inp)


def test_intervals_after_the_last_change_are_attributed_to_the_current_config() -> None:
    obs = observe(sample(), V100, 3, since(T0 + 300))
    assert obs.instance_types == ("",) * 5 + ("p3.2xlarge",) * 5
    assert obs.variants[-1] == "fp32"
    assert np.isnan(obs.replicas[0]) and obs.replicas[-1] == 3
    assert np.isnan(obs.max_batch_sizes[4]) and obs.max_batch_sizes[5] == 1
    assert obs.p99_latency_ms.tolist() == [12.0] * 10
    assert obs.demand_rps is None  # the history speaks for itself


def test_nothing_is_attributed_until_the_rollout_was_seen_complete() -> None:
    obs = observe(sample(), V100, 3, GuardMemory(last_change_at=T0 + 300, rolled_at=T0 + 300))
    assert obs.instance_types == ("",) * 10 and np.isnan(obs.replicas).all()


def test_without_history_the_current_rate_is_the_demand() -> None:
    obs = observe(MetricsSample(request_rate=42.0), V100, 1, since(None))
    assert not obs.has_history and obs.demand_rps == 42.0


def test_decision_becomes_a_proposal_the_manifests_can_apply(
    resnet: ModelServing, catalog: InstanceCatalog
) -> None:
    obs = observe(sample(), V100, 3, since(None))
    decision = plan(resnet.spec, catalog, ServingPolicySpec(), obs)
    proposal = loop.proposal(decision, resnet.spec, ServingPolicySpec())
    assert proposal is not None
    config = proposal.config
    assert config.instance_type == decision.instance_type
    assert config.max_queue_delay_us == round(decision.max_queue_delay_ms * 1000)
    assert config.behavior_dict() == dict(decision.behavior)
    assert proposal.hourly_cost == pytest.approx(decision.hourly_cost)


def test_what_the_spec_does_not_let_servingopt_set_stays_unset(
    resnet: ModelServing, catalog: InstanceCatalog
) -> None:
    obs = observe(sample(), V100, 3, since(None))
    decision = plan(resnet.spec, catalog, ServingPolicySpec(), obs)
    spec = resnet.spec.model_copy(
        update={
            "batching": resnet.spec.batching.model_copy(update={"enabled": False}),
            "caching": resnet.spec.caching.model_copy(update={"mode": "Off"}),
            "variants": [],
        }
    )
    proposal = loop.proposal(decision, spec, ServingPolicySpec())
    assert proposal is not None
    config = proposal.config
    assert (config.max_batch_size, config.max_queue_delay_us, config.variant) == (None,) * 3
    assert (config.cache_enabled, config.cache_size_mib) == (None, None)


def test_corrections_round_trip_rounded() -> None:
    learned = {("g4dn.xlarge", "int8"): ProfileCorrection(factor=1.23456, observations=57)}
    stored = loop.corrections_to_dict(learned)
    assert stored == {"g4dn.xlarge|int8": {"factor": 1.235, "observations": 20}}
    back = loop.corrections_from_dict(stored)
    assert back[("g4dn.xlarge", "int8")].factor == 1.235
    assert loop.kept(learned) == back
    assert loop.corrections_from_dict({"bad": {"factor": "x"}}) == {}


def test_each_interval_counts_the_replicas_that_served_it() -> None:
    night = tuple((T0 + 60 * i, 1.0 if i < 5 else 3.0) for i in range(8))  # 8 of 10 known
    obs = observe(replace(sample(), replicas_history=night), V100, 3, since(None))
    assert obs.replicas.tolist() == [1.0] * 5 + [3.0] * 5


def test_a_sample_and_its_points_are_the_same_history() -> None:
    got = replace(
        sample(),
        replicas_history=((T0, 2.0), (T0 + 120, 3.0)),
        peak_history=((T0 + 60, 9.0),),
    )
    history = got.history()
    assert np.isnan(history.replicas[1]) and history.replicas[2] == 3.0
    assert np.isnan(history.peak_rps[0]) and history.peak_rps[1] == 9.0
    assert history.points() == (
        got.demand_history,
        got.p99_history,
        got.replicas_history,
        got.peak_history,
    )
