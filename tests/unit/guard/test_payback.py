"""A change is applied only when it pays for its own rollout (pure, no clock)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servingopt.api.servingpolicy import ServingPolicySpec
from servingopt.guard import GuardInput, decide
from servingopt.guard.payback import PRIOR_MODEL_ERROR, p_worse, payback
from servingopt.values import Proposal, ServingConfig

V100 = ServingConfig("p3.2xlarge", "gpu-v100", "on-demand", "fp32", 3, 3)
T4 = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 2, 8, 16, 4000, 85.0)
NOW = 1_800_000_000.0


def policy(**guardrails: object) -> ServingPolicySpec:
    return ServingPolicySpec.model_validate({"guardrails": guardrails})


def inp(**changes: object) -> GuardInput:
    """V100 at $10/h to T4 at $8.5/h (15 % saving), a pod start-up of 10 min on a node
    that takes 20 min: surge $8.5 x 0.5 h = $4.25 against $1.50 saved per hour."""
    base = GuardInput(
        now=NOW,
        mode="Auto",
        policy=policy(paybackHorizonSeconds=3600),
        slo_p99_ms=40.0,
        proposal=Proposal(T4, hourly_cost=8.5, p99_latency_ms=30.0, replicas=2),
        current=V100,
        current_hourly=10.0,
        metrics_available=True,
        observed_p99_ms=20.0,
        startup_seconds=600.0,
        provisioning_seconds=1200.0,
        model_error=0.05,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_change_that_does_not_pay_for_its_rollout_is_held_with_the_figures() -> None:
    verdict = decide(inp())
    assert verdict.outcome == "Held" and verdict.reason == "ChangeDoesNotPay"
    assert "saves $1.50 over 1 h against a rollout costing $4.40" in verdict.message
    assert verdict.payback and verdict.payback in verdict.message
    assert verdict.commands == ()


def test_the_same_change_pays_over_a_longer_horizon_and_says_so() -> None:
    verdict = decide(inp(policy=policy(paybackHorizonSeconds=6 * 3600)))
    assert verdict.outcome == "Applied"
    assert "saves $9.00 over 6 h against a rollout costing $4.40" in verdict.message
    assert verdict.payback.startswith("saves $9.00")


def test_a_quick_start_pays_within_the_hour() -> None:
    verdict = decide(inp(startup_seconds=60.0, provisioning_seconds=120.0))
    assert verdict.outcome == "Applied"  # $1.50 saved against $0.43 of surge


def test_an_hpa_only_change_costs_nothing_to_roll_out() -> None:
    cheaper = replace(V100, min_replicas=2, max_replicas=3)  # the pod template is the same
    proposal = Proposal(cheaper, hourly_cost=8.5, p99_latency_ms=30.0, replicas=2)
    verdict = decide(inp(proposal=proposal))
    assert verdict.outcome == "Applied"
    assert "rollout costing $0.00" in verdict.message


def test_an_slo_at_risk_bypasses_the_payback_as_it_bypasses_the_minimum_saving() -> None:
    verdict = decide(inp(observed_p99_ms=39.0, proposal=Proposal(T4, 12.0, True, 30.0, 2)))
    assert verdict.outcome == "Applied" and verdict.reason == "SLOAtRisk"


def test_a_zero_horizon_turns_the_check_off() -> None:
    verdict = decide(inp(policy=policy(paybackHorizonSeconds=0)))
    assert verdict.outcome == "Applied" and verdict.payback == ""


def test_an_unknown_current_cost_is_not_weighed() -> None:
    verdict = decide(inp(current_hourly=None))
    assert verdict.outcome == "Applied"


def test_the_minimum_saving_is_checked_first() -> None:
    verdict = decide(inp(current_hourly=8.9))
    assert verdict.reason == "SavingBelowThreshold"


def test_a_model_shown_wrong_makes_a_worse_configuration_likelier() -> None:
    sure = payback(
        current_hourly=10.0,
        new_hourly=8.5,
        rolls_pods=True,
        horizon_s=3600.0,
        startup_s=60.0,
        provisioning_s=120.0,
        model_error=0.02,
    )
    unsure = payback(
        current_hourly=10.0,
        new_hourly=8.5,
        rolls_pods=True,
        horizon_s=3600.0,
        startup_s=60.0,
        provisioning_s=120.0,
        model_error=0.5,
    )
    assert sure.surge_cost == unsure.surge_cost == pytest.approx(8.5 * 180 / 3600)
    assert unsure.p_worse > sure.p_worse and unsure.risk_cost > sure.risk_cost
    assert unsure.risk_cost == pytest.approx(unsure.p_worse * 10.0 * 180 / 3600)


def test_without_evidence_the_prior_error_is_assumed() -> None:
    assert p_worse(10.0, 8.0, None) == pytest.approx(math.exp(-0.25 / PRIOR_MODEL_ERROR))
    assert p_worse(8.0, 10.0, 0.1) == 1.0  # no saving: it is worse already
    assert p_worse(10.0, 0.0, 0.1) == 0.0


prices = st.floats(min_value=0.01, max_value=1000.0)
seconds = st.floats(min_value=0.0, max_value=7200.0)
errors = st.one_of(st.none(), st.floats(min_value=0.0, max_value=2.0))


@given(prices, prices, seconds, seconds, seconds, errors)
def test_payback_properties(
    current: float, new: float, horizon: float, startup: float, provisioning: float, e: float | None
) -> None:
    kw = dict(
        current_hourly=current,
        new_hourly=new,
        horizon_s=horizon,
        startup_s=startup,
        provisioning_s=provisioning,
        model_error=e,
    )
    rolled = payback(rolls_pods=True, **kw)  # type: ignore[arg-type]
    free = payback(rolls_pods=False, **kw)  # type: ignore[arg-type]
    assert free.rollout_cost == 0.0 and free.pays == (current > new and horizon > 0)
    assert rolled.rollout_cost >= 0.0 and 0.0 <= rolled.p_worse <= 1.0
    assert rolled.saving == pytest.approx((current - new) * horizon / 3600)
    if rolled.pays:  # what pays with a rollout pays without one
        assert free.pays
    longer = payback(rolls_pods=True, **{**kw, "horizon_s": horizon + 3600.0})  # type: ignore[arg-type]
    assert longer.pays or not rolled.pays  # a longer horizon never turns a yes into a no
    slower = payback(rolls_pods=True, **{**kw, "provisioning_s": provisioning + 600.0})  # type: ignore[arg-type]
    assert slower.rollout_cost >= rolled.rollout_cost
