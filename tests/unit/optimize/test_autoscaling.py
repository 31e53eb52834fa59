"""HPA target margins, behavior and the model replay evaluator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servingopt.optimize import autoscaling
from servingopt.optimize.autoscaling import (
    AutoscalingCandidate,
    _sliding_max,
    behavior_for,
    replay_with_model,
    target_fraction,
)


def test_target_fraction_takes_the_larger_headroom() -> None:
    assert target_fraction("Balanced", 0.0) == pytest.approx(0.8)
    assert target_fraction("Conservative", 0.0) == pytest.approx(0.65)
    assert target_fraction("Aggressive", 0.0) == pytest.approx(0.9)
    # demand that grows 50 % within a start-up: 1 / (1.5 * 1.1)
    assert target_fraction("Aggressive", 0.5) == pytest.approx(1 / 1.65)
    assert target_fraction("Balanced", 5.0) == pytest.approx(1 / 2.2)  # ramp capped at 100 %


@pytest.mark.parametrize("kind", ["steady", "variable", "spiky", "periodic", "unknown"])
def test_scale_down_never_undoes_a_scale_up_in_flight(kind: str) -> None:
    behavior = behavior_for(kind, startup_s=900, scale_down_window_s=300)  # type: ignore[arg-type]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 900
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0


def _candidate(
    rps: np.ndarray, target: float, startup: int, window: int = 300
) -> AutoscalingCandidate:
    return AutoscalingCandidate(
        target_rps=target,
        min_replicas=1,
        max_replicas=100,
        behavior=behavior_for("variable", startup, window),
        capacity_rps=100.0,
        startup_seconds=startup,
        hourly_cost_per_replica=1.0,
        timestamps_s=np.arange(rps.size) * 60.0,
        requests_per_second=rps,
    )


def test_replay_counts_the_start_up_lag_as_overload() -> None:
    # demand jumps from 100 to 400 req/s: 4 replicas needed at a 100 req/s capacity
    rps = np.concatenate([np.full(30, 100.0), np.full(30, 400.0)])
    quick = replay_with_model(_candidate(rps, 100.0, startup=60))
    slow = replay_with_model(_candidate(rps, 100.0, startup=300))
    assert quick.slo_violation_fraction == pytest.approx(1 / 60)  # one minute late
    assert slow.slo_violation_fraction == pytest.approx(5 / 60)  # five minutes late
    # a lower target keeps headroom through the jump's lag only if it is big enough
    roomy = replay_with_model(_candidate(rps, 25.0, startup=300))
    assert roomy.slo_violation_fraction == 0.0
    assert roomy.hourly_cost > slow.hourly_cost


def test_replay_holds_replicas_through_the_scale_down_window() -> None:
    rps = np.concatenate([np.full(10, 400.0), np.full(50, 100.0)])
    short = replay_with_model(_candidate(rps, 100.0, startup=60, window=300))
    long = replay_with_model(_candidate(rps, 100.0, startup=60, window=1800))
    assert long.hourly_cost > short.hourly_cost
    assert short.slo_violation_fraction == long.slo_violation_fraction == 0.0


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(0.0, 1e3, allow_nan=False), min_size=1, max_size=200),
    st.integers(1, 300),
)
def test_sliding_max_is_the_maximum_of_each_trailing_window(
    values: list[float], window: int
) -> None:
    x = np.asarray(values)
    padded = np.concatenate([np.full(window - 1, x[0]), x])
    want = [padded[i : i + window].max() for i in range(x.size)]
    np.testing.assert_array_equal(_sliding_max(x, window), want)


def _tune_steady(budget: int | None, window: int | None = None) -> autoscaling.AutoscalingPlan:
    from servingopt.optimize.forecast import constant
    from servingopt.optimize.traffic import UNKNOWN

    ts = 60.0 * np.arange(60.0)
    return autoscaling.tune(
        capacity_rps=10.0,
        aggressiveness="Balanced",
        traffic=UNKNOWN,
        forecast=constant(10.0, 3600.0),
        spec_min=1,
        spec_max=20,
        budget_max_replicas=budget,
        startup_s=60,
        replan_interval_s=300,
        hourly_cost_per_replica=1.0,
        timestamps_s=ts,
        history_rps=np.full(60, 10.0),
        evaluator=autoscaling.replay_with_model,
        scale_down_window_s=window,
    )


def test_the_maximum_is_the_bound_or_the_budget_never_the_forecast() -> None:
    # an hour at 10 req/s forecasts 10 req/s: two replicas would do, yet a surge nobody
    # forecast may take the HPA up to the spec's bound, or to what the budget affords
    assert _tune_steady(None).max_replicas == 20
    assert _tune_steady(7).max_replicas == 7


def test_a_stated_scale_down_window_is_used_as_stated_but_never_under_a_start_up() -> None:
    assert _tune_steady(None, 30).behavior["scaleDown"]["stabilizationWindowSeconds"] == 60
    assert _tune_steady(None, 120).behavior["scaleDown"]["stabilizationWindowSeconds"] == 120
