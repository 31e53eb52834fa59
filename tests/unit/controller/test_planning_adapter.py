"""Between the live world and the planner: Observation in, Proposal out."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from servingopt.api import InstanceCatalog, ModelServing, ServingPolicySpec
from servingopt.controller import planning
from servingopt.guard import ServingConfig
from servingopt.metrics.source import MetricsSample
from servingopt.model import ProfileCorrection
from servingopt.optimize.planner import plan

V100 = ServingConfig("p3.2xlarge", "gpu-v100", None, "fp32", 3, 3, 1, 0)
T0 = 1_800_000_000.0


def sample(points: int = 10) -> MetricsSample:
    history = tuple((T0 + 60 * i, 1500.0) for i in range(points))
    p99 = tuple((T0 + 60 * i, 12.0) for i in range(points))
    return MetricsSample(request_rate=1500.0, replicas=3, demand_history=history, p99_history=p99)


def test_intervals_after_the_last_change_are_attributed_to_the_current_config() -> None:
    obs = planning.observation(sample(), V100, 3, since=T0 + 300, corrections={})
    assert obs.instance_types == ("",) * 5 + ("p3.2xlarge",) * 5
    assert obs.variants[-1] == "fp32"
    assert np.isnan(obs.replicas[0]) and obs.replicas[-1] == 3
    assert obs.p99_latency_ms.tolist() == [12.0] * 10
    assert obs.demand_rps is None  # the history speaks for itself


def test_without_history_the_current_rate_is_the_demand() -> None:
    obs = planning.observation(
        MetricsSample(request_rate=42.0), V100, 1, since=None, corrections={}
    )
    assert not obs.has_history and obs.demand_rps == 42.0


def test_decision_becomes_a_proposal_the_manifests_can_apply(
    resnet: ModelServing, catalog: InstanceCatalog
) -> None:
    obs = planning.observation(sample(), V100, 3, since=None, corrections={})
    decision = plan(resnet.spec, catalog, ServingPolicySpec(), obs)
    proposal = planning.proposal(decision, resnet.spec)
    assert proposal is not None
    config = proposal.config
    assert config.instance_type == decision.instance_type
    assert config.max_queue_delay_us == round(decision.max_queue_delay_ms * 1000)
    assert config.behavior_dict() == dict(decision.behavior)
    assert proposal.hourly_cost == pytest.approx(decision.hourly_cost)


def test_corrections_round_trip_rounded() -> None:
    learned = {("g4dn.xlarge", "int8"): ProfileCorrection(factor=1.23456, observations=57)}
    stored = planning.corrections_to_dict(learned)
    assert stored == {"g4dn.xlarge|int8": {"factor": 1.235, "observations": 20}}
    back = planning.corrections_from_dict(stored)
    assert back[("g4dn.xlarge", "int8")].factor == 1.235
    assert planning.corrections_from_dict({"bad": {"factor": "x"}}) == {}


def test_each_interval_counts_the_replicas_that_served_it() -> None:
    night = tuple((T0 + 60 * i, 1.0 if i < 5 else 3.0) for i in range(8))  # 8 of 10 known
    obs = planning.observation(
        replace(sample(), replicas_history=night), V100, 3, since=None, corrections={}
    )
    assert obs.replicas.tolist() == [1.0] * 5 + [3.0] * 5
