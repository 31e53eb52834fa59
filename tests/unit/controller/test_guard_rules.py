"""The guard: when to change, hold, refuse or roll back (pure, no clock)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servingopt.api.servingpolicy import MaintenanceWindow, ServingPolicySpec
from servingopt.guard import (
    ApplyConfig,
    GuardInput,
    GuardMemory,
    ReleaseWorkload,
    RemoveOwnedHpa,
    decide,
    in_window,
    learning_since,
)
from servingopt.values import AutoscalerState, Proposal, ServingConfig

V100 = ServingConfig("p3.2xlarge", "gpu-v100", "on-demand", "fp32", 3, 3)
T4 = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 2, 8, 16, 4000, 85.0)
NOW = 1_800_000_000.0
POLICY = ServingPolicySpec()


def inp(**changes: object) -> GuardInput:
    base = GuardInput(
        now=NOW,
        mode="Auto",
        policy=POLICY,
        slo_p99_ms=40.0,
        proposal=Proposal(T4, hourly_cost=1.05, p99_latency_ms=30.0, replicas=2),
        current=V100,
        current_hourly=9.18,
        metrics_available=True,
        observed_p99_ms=20.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def policy(**guardrails: object) -> ServingPolicySpec:
    return ServingPolicySpec.model_validate({"guardrails": guardrails})


def test_a_worthwhile_saving_is_applied_and_remembered() -> None:
    verdict = decide(inp())
    assert verdict.outcome == "Applied"
    assert verdict.commands == (ApplyConfig(T4),)
    assert verdict.memory.last_change_at == NOW
    assert verdict.memory.last_good == V100  # met the SLO before the change


def test_small_savings_are_not_worth_a_rollout() -> None:
    verdict = decide(inp(current_hourly=1.1))  # 4.5 % < 10 %
    assert verdict.outcome == "Held" and verdict.reason == "SavingBelowThreshold"
    assert not verdict.commands


def test_slo_at_risk_overrides_saving_threshold_and_interval() -> None:
    memory = GuardMemory(last_change_at=NOW - 10, rolled_at=NOW - 10)
    verdict = decide(inp(current_hourly=1.0, observed_p99_ms=39.0, memory=memory))
    assert verdict.outcome == "Applied" and verdict.reason == "SLOAtRisk"


@pytest.mark.parametrize(
    ("hpa", "absorbing"),
    [
        (AutoscalerState(True, 5, 3, 10), True),  # pods it added are starting
        (AutoscalerState(True, 5, 5, 10, last_scale_at=NOW - 60), True),  # p99 lags its scale
        (AutoscalerState(True, 5, 5, 10, last_scale_at=NOW - 600), False),  # had its chance
        (AutoscalerState(True, 10, 8, 10), False),  # at its maximum: it cannot add more
        (AutoscalerState(False, 5, 3, 10), False),  # failing: it adds nothing
        (None, False),
    ],
)
def test_an_hpa_answering_the_load_is_left_to_answer_it(
    hpa: AutoscalerState | None, absorbing: bool
) -> None:
    memory = GuardMemory(last_change_at=NOW - 10, rolled_at=NOW - 10)
    verdict = decide(
        inp(
            current_hourly=1.0,
            observed_p99_ms=39.0,
            memory=memory,
            autoscaler=hpa,
            metrics_window_s=60.0,
            startup_seconds=60.0,
        )
    )
    if absorbing:  # the normal rules apply: a change 10 s after the last one waits
        assert verdict.outcome == "Held" and verdict.reason != "SLOAtRisk"
    else:
        assert verdict.outcome == "Applied" and verdict.reason == "SLOAtRisk"


def test_slo_at_risk_does_not_retry_a_rolled_back_configuration() -> None:
    blocked = GuardMemory(
        last_change_at=NOW - 5000, rolled_at=NOW - 5000, blocked=T4, blocked_until=NOW + 600
    )
    retry = decide(inp(current_hourly=1.0, observed_p99_ms=39.0, memory=blocked))
    assert retry.reason == "RecentlyRolledBack" and not retry.commands


def test_minimum_interval_between_changes() -> None:
    verdict = decide(inp(memory=GuardMemory(last_change_at=NOW - 100, rolled_at=NOW - 100)))
    assert verdict.reason == "MinInterval" and not verdict.commands
    later = decide(inp(memory=GuardMemory(last_change_at=NOW - 901, rolled_at=NOW - 901)))
    assert later.outcome == "Applied"


def test_one_rollout_in_flight() -> None:
    verdict = decide(inp(rollout_in_flight=True))
    assert verdict.reason == "RolloutInProgress" and not verdict.commands


@pytest.mark.parametrize("reason", ["MetricsUnavailable"])
def test_missing_metrics_never_scale_down_or_move(reason: str) -> None:
    verdict = decide(inp(metrics_available=False, metrics_message="NoData", observed_p99_ms=None))
    assert verdict.outcome == "Held" and verdict.reason == reason
    assert not verdict.commands


@given(step=st.integers(1, 10), current=st.integers(1, 50), wanted=st.integers(1, 50))
def test_replica_step_is_bounded(step: int, current: int, wanted: int) -> None:
    cur = replace(V100, min_replicas=current, max_replicas=current)
    prop = Proposal(replace(T4, min_replicas=wanted, max_replicas=max(wanted, 8)), 1.0)
    verdict = decide(inp(current=cur, proposal=prop, policy=policy(maxReplicaStep=step)))
    if verdict.outcome == "Applied":
        target = verdict.commands[0].config  # type: ignore[union-attr]
        assert target.min_replicas is not None and target.max_replicas is not None
        assert abs(target.min_replicas - current) <= step
        assert target.min_replicas <= target.max_replicas


def test_budgets_refuse_and_say_so() -> None:
    spec = ServingPolicySpec.model_validate({"budgets": {"maxHourlyCostPerModelServing": 1.0}})
    verdict = decide(inp(policy=spec))
    assert verdict.outcome == "Refused" and "$1.05/h exceeds" in verdict.message
    ns = ServingPolicySpec.model_validate({"budgets": {"maxHourlyCostPerNamespace": 5.0}})
    verdict = decide(inp(policy=ns, namespace_other_hourly=4.5))
    assert verdict.outcome == "Refused" and "namespace" in verdict.message
    assert decide(inp(policy=ns, namespace_other_hourly=3.0)).outcome == "Applied"


def test_maintenance_windows_gate_savings() -> None:
    moment = dt.datetime.fromtimestamp(NOW, dt.UTC)
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[moment.weekday()]
    opened = (moment - dt.timedelta(minutes=10)).strftime("%H:%M")
    closed = (moment + dt.timedelta(minutes=30)).strftime("%H:%M")
    inside = policy(maintenanceWindows=[{"days": [day], "start": opened, "durationMinutes": 60}])
    outside = policy(maintenanceWindows=[{"days": [day], "start": closed, "durationMinutes": 60}])
    assert decide(inp(policy=inside)).outcome == "Applied"
    assert decide(inp(policy=outside)).reason == "OutsideMaintenanceWindow"
    # …but a change protecting the SLO does not wait for the window.
    assert decide(inp(policy=outside, observed_p99_ms=39.0)).outcome == "Applied"


def test_windows_spanning_midnight() -> None:
    window = MaintenanceWindow(days=["Mon"], start="23:30", duration_minutes=60)
    tuesday_0010 = dt.datetime(2026, 11, 24, 0, 10, tzinfo=dt.UTC).timestamp()
    tuesday_0040 = dt.datetime(2026, 11, 24, 0, 40, tzinfo=dt.UTC).timestamp()
    assert in_window(window, tuesday_0010)
    assert not in_window(window, tuesday_0040)


def test_breach_after_a_change_rolls_back_after_the_window() -> None:
    changed = GuardMemory(last_change_at=NOW - 600, rolled_at=NOW - 600, last_good=V100)
    first = decide(
        inp(current=T4, proposal=Proposal(T4, 1.05), observed_p99_ms=55.0, memory=changed)
    )
    assert first.outcome != "RolledBack"
    assert first.memory.breach_since == NOW
    later = replace(first.memory)
    verdict = decide(
        inp(
            now=NOW + 301,
            current=T4,
            proposal=Proposal(T4, 1.05),
            observed_p99_ms=55.0,
            memory=later,
        )
    )
    assert verdict.outcome == "RolledBack"
    assert verdict.commands == (ApplyConfig(V100),)
    assert "above the SLO" in verdict.message
    assert verdict.memory.blocked == T4
    # The rolled-back configuration is not proposed again right away.
    after = decide(inp(now=NOW + 2000, current=V100, observed_p99_ms=20.0, memory=verdict.memory))
    assert after.reason == "RecentlyRolledBack"


def test_a_breach_during_the_rollout_is_not_held_against_the_new_configuration() -> None:
    # changed away from a breaching V100: while its pods still serve, the p99 is theirs
    changed = GuardMemory(last_change_at=NOW - 60, rolled_at=NOW - 60, last_good=V100)
    state = changed
    for minutes in (0, 5, 10, 15):
        verdict = decide(
            inp(
                now=NOW + 60 * minutes,
                current=T4,
                proposal=Proposal(T4, 1.05),
                observed_p99_ms=55.0,
                rollout_in_flight=True,
                memory=state,
            )
        )
        assert verdict.outcome != "RolledBack"
        state = verdict.memory
    assert state.breach_since is None
    # once the T4 pods serve alone, a breach for the window does roll back
    done = [NOW + 1200, NOW + 1200 + 301]
    for now in done:
        verdict = decide(
            inp(
                now=now, current=T4, proposal=Proposal(T4, 1.05), observed_p99_ms=55.0, memory=state
            )
        )
        state = verdict.memory
    assert verdict.outcome == "RolledBack"


def test_a_breach_of_the_current_good_configuration_is_not_a_rollback() -> None:
    memory = GuardMemory(
        last_change_at=NOW - 10_000, rolled_at=NOW - 10_000, last_good=T4, breach_since=NOW - 1000
    )
    verdict = decide(
        inp(current=T4, proposal=Proposal(T4, 1.05), observed_p99_ms=55.0, memory=memory)
    )
    assert verdict.outcome != "RolledBack"


def test_recommend_mode_writes_nothing() -> None:
    verdict = decide(inp(mode="Recommend"))
    assert verdict.outcome == "Recommended" and not verdict.commands


def test_off_mode_removes_the_hpa_and_releases_fields() -> None:
    verdict = decide(inp(mode="Off"))
    assert verdict.commands == (RemoveOwnedHpa(), ReleaseWorkload())


def test_unchanged_configuration_needs_nothing() -> None:
    verdict = decide(inp(current=T4, current_hourly=1.05))
    assert verdict.outcome == "Unchanged" and not verdict.commands


def test_memory_round_trips() -> None:
    memory = GuardMemory(NOW, V100, NOW - 5, T4, NOW + 60)
    assert GuardMemory.from_dict(memory.to_dict()) == memory


def test_small_hpa_target_changes_are_not_changes() -> None:
    from servingopt.guard import settle

    current = replace(T4, scaling_target=100.0)
    near = Proposal(replace(T4, scaling_target=103.0), 1.05)
    far = Proposal(replace(T4, scaling_target=120.0), 1.05)
    assert settle(near, current).config == current
    assert decide(inp(current=current, proposal=settle(near, current))).outcome == "Unchanged"
    assert settle(far, current).config.scaling_target == 120.0


def test_learning_starts_once_the_change_is_seen_rolled_out() -> None:
    changed = GuardMemory(last_change_at=NOW - 120, rolled_at=NOW - 120, serving_since=NOW - 5000)
    assert learning_since(changed) is None  # serving since an older change
    rolling = decide(
        inp(current=T4, proposal=Proposal(T4, 1.05), rollout_in_flight=True, memory=changed)
    )
    assert learning_since(rolling.memory) is None  # old and new pods both serve
    done = decide(inp(now=NOW + 60, current=T4, proposal=Proposal(T4, 1.05), memory=rolling.memory))
    assert learning_since(done.memory) == NOW + 60
    later = decide(inp(now=NOW + 600, current=T4, proposal=Proposal(T4, 1.05), memory=done.memory))
    assert learning_since(later.memory) == NOW + 60  # kept until the next change
    assert GuardMemory.from_dict(later.memory.to_dict()) == later.memory
    assert learning_since(GuardMemory()) is None  # never changed: nothing to wait for


# Rollouts that never served are never good.

CHANGED = GuardMemory(last_change_at=NOW - 600, rolled_at=NOW - 600, last_good=V100)


def test_a_stalled_rollout_goes_back_to_the_last_good_configuration() -> None:
    verdict = decide(inp(current=T4, memory=CHANGED, rollout_stalled="pod x Pending for 700 s"))
    assert verdict.outcome == "RolledBack" and verdict.reason == "RolloutStalled"
    assert verdict.commands == (ApplyConfig(V100),)
    assert "pod x Pending for 700 s" in verdict.message
    assert verdict.memory.blocked == T4 and verdict.memory.last_change_at == NOW


def test_a_stall_is_judged_without_metrics() -> None:
    verdict = decide(inp(current=T4, memory=CHANGED, rollout_stalled="x", metrics_available=False))
    assert verdict.outcome == "RolledBack"


def test_a_stall_with_nothing_good_to_return_to_is_held_loudly() -> None:
    memory = GuardMemory(last_change_at=NOW - 600, rolled_at=NOW - 600)
    verdict = decide(inp(current=T4, memory=memory, rollout_stalled="x"))
    assert (verdict.outcome, verdict.reason) == ("Held", "RolloutStalled")
    off = policy(rollback={"enabled": False})
    verdict = decide(inp(current=T4, memory=CHANGED, rollout_stalled="x", policy=off))
    assert (verdict.outcome, verdict.reason) == ("Held", "RolloutStalled")
    assert "disabled" in verdict.message


def test_a_stall_servingopt_did_not_cause_is_not_its_to_undo() -> None:
    assert decide(inp(rollout_stalled="x")).reason != "RolloutStalled"  # never changed it
    recommend = decide(inp(current=T4, memory=CHANGED, rollout_stalled="x", mode="Recommend"))
    assert recommend.outcome != "RolledBack"


def test_old_pods_meeting_the_slo_during_a_stall_never_make_the_new_config_good() -> None:
    memory = CHANGED
    for minute in range(30):  # the old pods keep serving well for half an hour
        stalled = inp(
            now=NOW + 60 * minute,
            current=T4,
            memory=memory,
            rollout_stalled="x",
            policy=policy(rollback={"enabled": False}),
        )
        memory = decide(stalled).memory
        assert memory.last_good == V100
        assert memory.serving_since is None


def test_a_change_is_good_only_after_serving_alone_for_a_metrics_window() -> None:
    memory = GuardMemory(last_change_at=NOW - 60, rolled_at=NOW - 60, last_good=V100)
    first = decide(inp(current=T4, proposal=None, memory=memory, metrics_window_s=300))
    assert first.memory.serving_since == NOW and first.memory.last_good == V100
    later = decide(
        inp(now=NOW + 299, current=T4, proposal=None, memory=first.memory, metrics_window_s=300)
    )
    assert later.memory.last_good == V100
    done = decide(
        inp(now=NOW + 300, current=T4, proposal=None, memory=later.memory, metrics_window_s=300)
    )
    assert done.memory.last_good == T4


def test_an_hpa_only_change_does_not_restart_learning() -> None:
    served = GuardMemory(
        last_change_at=NOW - 3600, rolled_at=NOW - 3600, serving_since=NOW - 3300, last_good=T4
    )
    wider = replace(T4, max_replicas=12, scaling_target=70.0)
    verdict = decide(
        inp(
            current=T4, proposal=Proposal(wider, hourly_cost=0.5), memory=served, current_hourly=1.0
        )
    )
    assert verdict.outcome == "Applied"
    assert verdict.memory.last_change_at == NOW  # a change for the interval rules...
    assert verdict.memory.rolled_at == NOW - 3600  # ...but the pods did not roll
    assert learning_since(verdict.memory) == NOW - 3300


def test_a_change_of_the_pod_template_restarts_learning() -> None:
    served = GuardMemory(
        last_change_at=NOW - 3600, rolled_at=NOW - 3600, serving_since=NOW - 3300, last_good=V100
    )
    verdict = decide(inp(memory=served))  # V100 -> T4: another pool
    assert verdict.outcome == "Applied"
    assert verdict.memory.rolled_at == NOW and learning_since(verdict.memory) is None


def test_old_memories_count_every_change_as_rolled() -> None:
    old = GuardMemory.from_dict({"last_change_at": NOW - 60, "serving_since": NOW - 30})
    assert old.rolled_at == NOW - 60 and learning_since(old) == NOW - 30
