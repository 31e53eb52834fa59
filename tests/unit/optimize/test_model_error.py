"""How wrong the model has been: learning measures it, the HPA target keeps it as margin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from servingopt.model import LatencyProfile, ProfileCorrection
from servingopt.optimize import autoscaling, learning
from servingopt.values import Observation, RunningConfig
from servingopt.values.correction import EVIDENCE_HALF_LIFE_S

KEY = ("c5.2xlarge", "fp32")
PROFILE = LatencyProfile.from_points([1.0, 4.0], [10.0, 25.0], label="c5/fp32")


def _history(slowdown: float, n: int = 120) -> Observation:
    """A history of KEY whose observed p99 is the model's with service ``slowdown``x."""
    rng = np.random.default_rng(7)
    per_replica = rng.uniform(5.0, 40.0, n)
    times = learning._service_times(PROFILE)
    a, c = PROFILE.a_ms, PROFILE.c_ms
    shape = a / (a + c)
    p99 = np.array(
        [learning._predicted_p99(times, shape, slowdown, r, 1, 0.0) for r in per_replica]
    )
    return Observation(
        timestamps_s=60.0 * np.arange(n),
        requests_per_second=per_replica * 2.0,
        p99_latency_ms=p99,
        replicas=np.full(n, 2.0),
        instance_types=(KEY[0],) * n,
        variants=(KEY[1],) * n,
        max_batch_sizes=np.full(n, 1.0),
        current=RunningConfig(instance_type=KEY[0], variant=KEY[1], max_batch_size=1),
    )


def _learn(obs: Observation) -> learning.Learned:
    return learning.learn_all(obs, lambda key: PROFILE if key == KEY else None, 1, 0.0)


def test_a_right_model_shows_no_error() -> None:
    learned = _learn(_history(1.0))
    assert learned.model_error == pytest.approx(0.0, abs=0.01)


def test_an_optimistic_profile_shows_the_error_learning_has_not_yet_taken_up() -> None:
    learned = _learn(_history(1.4))
    factor = learned.corrections[KEY].factor
    assert 1.0 < factor < 1.4  # damped: part of the way
    assert learned.model_error is not None
    # what is left is about 1.4 / factor - 1 (the capacity error the plan still makes)
    assert learned.model_error == pytest.approx(1.4 / factor - 1.0, rel=0.1, abs=0.01)


def test_learning_from_a_pessimistic_profile_is_no_error_for_the_margin() -> None:
    learned = _learn(_history(0.7))
    assert learned.model_error == pytest.approx(0.0, abs=0.01)


def test_without_evidence_there_is_no_error_measured() -> None:
    assert _learn(Observation.from_rps(10.0)).model_error is None
    assert learning.model_error([0.5, 0.5]) is None  # fewer buckets than MIN_ERROR_BUCKETS


def test_the_target_keeps_the_policy_headroom_without_evidence() -> None:
    assert autoscaling.target_fraction("Balanced", 0.0) == pytest.approx(0.8)
    assert autoscaling.target_fraction("Balanced", 0.0, model_error=None) == pytest.approx(0.8)


def test_a_model_wrong_by_more_than_the_headroom_keeps_more() -> None:
    assert autoscaling.target_fraction("Balanced", 0.0, model_error=0.4) == pytest.approx(1 / 1.4)
    # a model closer than the policy's headroom does not loosen it
    assert autoscaling.target_fraction("Aggressive", 0.0, model_error=0.05) == pytest.approx(0.9)


@given(
    st.sampled_from(["Conservative", "Balanced", "Aggressive"]),
    st.floats(min_value=0.0, max_value=3.0),
    st.floats(min_value=1.0, max_value=4.0),
    st.floats(min_value=0.0, max_value=2.0),
    st.floats(min_value=0.0, max_value=2.0),
)
def test_more_error_never_loosens_the_target(
    aggressiveness: str, ramp: float, burst: float, e: float, more: float
) -> None:
    base = autoscaling.target_fraction(aggressiveness, ramp, burst)
    with_e = autoscaling.target_fraction(aggressiveness, ramp, burst, e)
    worse = autoscaling.target_fraction(aggressiveness, ramp, burst, e + more)
    assert worse <= with_e <= base
    assert with_e <= 1.0 / (1.0 + e) + 1e-12


def test_the_replay_does_not_loosen_the_target_past_the_model_error() -> None:
    from servingopt.optimize.forecast import constant
    from servingopt.optimize.traffic import UNKNOWN

    ts = 60.0 * np.arange(60.0)
    rps = np.full(60, 100.0)
    plan = autoscaling.tune(
        capacity_rps=10.0,
        aggressiveness="Aggressive",
        traffic=UNKNOWN,
        forecast=constant(100.0, 3600.0),
        spec_min=1,
        spec_max=100,
        budget_max_replicas=None,
        startup_s=60,
        replan_interval_s=300,
        hourly_cost_per_replica=1.0,
        timestamps_s=ts,
        history_rps=rps,
        evaluator=autoscaling.replay_with_model,
        model_error=0.3,
    )
    assert plan.target_fraction <= 1 / 1.3 + 1e-12


def test_correction_decays_with_the_age_of_its_evidence_not_with_the_plans() -> None:
    corr = ProfileCorrection(factor=2.0, observations=4)
    assert corr.factor_at(1e9) == 2.0  # evidence current: as learned
    stamped = corr.stamped(1000.0)
    assert stamped.stamped(5000.0).evidence_at == 1000.0  # ages from the first stamp
    hl = EVIDENCE_HALF_LIFE_S
    assert stamped.factor_at(1000.0 + hl) == pytest.approx(2.0**0.5)
    assert stamped.factor_at(1000.0 + 2 * hl) == pytest.approx(2.0**0.25)
    assert stamped.aged(1000.0 + hl).evidence_at is None
    # new evidence starts from the decayed factor and makes the evidence current again
    again = stamped.aged(1000.0 + hl).update(observed=20.0, predicted=20.0)
    assert again.evidence_at is None and again.factor == pytest.approx(2.0**0.5)


@given(
    st.floats(min_value=0.5, max_value=3.0),
    st.floats(min_value=0.0, max_value=1e6),
    st.floats(min_value=0.0, max_value=1e6),
)
def test_an_older_correction_is_closer_to_one(factor: float, age: float, more: float) -> None:
    corr = ProfileCorrection(factor=factor).stamped(0.0)
    young, old = corr.factor_at(age), corr.factor_at(age + more)
    assert abs(np.log(old)) <= abs(np.log(young)) + 1e-12
    assert min(1.0, factor) - 1e-12 <= young <= max(1.0, factor) + 1e-12
