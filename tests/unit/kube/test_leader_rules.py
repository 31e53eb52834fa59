"""Leader election's rules: given the Lease as read, who I am and my clock, what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from servingopt.kube.leader import (
    Action,
    ElectionConfig,
    LeaseSpec,
    Observation,
    decide,
    default_identity,
    micro_time,
    next_spec,
    observe,
    released,
    renew_overdue,
)

T0 = "2026-12-01T10:00:00.000000Z"
T1 = "2026-12-01T10:00:02.000000Z"


def held(holder: str = "b", renew: str = T0, seconds: int = 15) -> LeaseSpec:
    return LeaseSpec(holder, seconds, T0, renew, 3)


def seen(spec: LeaseSpec, since: float = 100.0) -> Observation:
    return Observation(spec, "7", since)


class TestDecide:
    def test_no_lease_is_created(self) -> None:
        assert decide(None, "a", leading=False, now=0.0) is Action.CREATE

    def test_a_leader_whose_lease_was_deleted_stops(self) -> None:
        assert decide(None, "a", leading=True, now=0.0) is Action.LOST

    def test_someone_elses_live_lease_is_waited_for(self) -> None:
        assert decide(seen(held()), "a", leading=False, now=114.9) is Action.WAIT

    def test_it_expires_a_lease_duration_after_it_was_first_seen(self) -> None:
        assert decide(seen(held()), "a", leading=False, now=115.0) is Action.ACQUIRE

    def test_the_holders_duration_counts_not_mine(self) -> None:
        lease = seen(held(seconds=60))
        assert decide(lease, "a", leading=False, now=150.0) is Action.WAIT

    def test_a_released_lease_is_taken_at_once(self) -> None:
        assert decide(seen(released(held(), T1)), "a", leading=False, now=100.0) is Action.ACQUIRE

    def test_my_own_lease_is_renewed(self) -> None:
        assert decide(seen(held("a")), "a", leading=True, now=500.0) is Action.RENEW

    def test_a_restarted_process_with_my_identity_takes_it_back_at_once(self) -> None:
        assert decide(seen(held("a")), "a", leading=False, now=100.0) is Action.RENEW

    @pytest.mark.parametrize("holder", ["b", ""])
    def test_a_leader_that_reads_another_holder_has_lost(self, holder: str) -> None:
        assert decide(seen(held(holder)), "a", leading=True, now=100.0) is Action.LOST

    def test_a_leader_that_reads_an_expired_foreign_lease_has_still_lost(self) -> None:
        assert decide(seen(held("b")), "a", leading=True, now=1e6) is Action.LOST


class TestObserve:
    def test_an_unchanged_record_keeps_its_first_sight(self) -> None:
        first = observe(None, held(), "7", now=100.0)
        again = observe(first, held(), "8", now=110.0)
        assert again.since == 100.0
        assert again.resource_version == "8"  # the next write carries the latest

    def test_a_renewal_restarts_the_clock(self) -> None:
        first = observe(None, held(renew=T0), "7", now=100.0)
        renewed = observe(first, held(renew=T1), "8", now=110.0)
        assert renewed.since == 110.0
        assert decide(renewed, "a", leading=False, now=124.0) is Action.WAIT

    def test_wall_clock_skew_does_not_matter(self) -> None:
        # renewTime an hour in the past by the holder's clock: only my own clock counts.
        stale = held(renew="2026-12-01T09:00:00.000000Z")
        assert decide(observe(None, stale, "7", now=5.0), "a", False, now=6.0) is Action.WAIT


class TestNextSpec:
    def test_create_holds_it_with_no_transition(self) -> None:
        assert next_spec(Action.CREATE, None, "a", 15, T1) == LeaseSpec("a", 15, T1, T1, 0)

    def test_acquire_counts_a_transition_and_restarts_acquire_time(self) -> None:
        assert next_spec(Action.ACQUIRE, held(), "a", 15, T1) == LeaseSpec("a", 15, T1, T1, 4)

    def test_renew_keeps_acquire_time_and_transitions(self) -> None:
        assert next_spec(Action.RENEW, held("a"), "a", 20, T1) == LeaseSpec("a", 20, T0, T1, 3)

    def test_waiting_writes_nothing(self) -> None:
        with pytest.raises(ValueError):
            next_spec(Action.WAIT, held(), "a", 15, T1)

    def test_release_empties_the_holder_and_expires_in_a_second(self) -> None:
        assert released(held("a"), T1) == LeaseSpec("", 1, T1, T1, 3)

    def test_lease_round_trips_through_the_api_shape(self) -> None:
        spec = held("a")
        assert LeaseSpec.from_lease({"spec": spec.to_spec()}) == spec
        assert LeaseSpec.from_lease({}) == LeaseSpec()


def test_renew_deadline_boundary() -> None:
    assert not renew_overdue(last_renewed=10.0, now=19.99, renew_deadline=10.0)
    assert renew_overdue(last_renewed=10.0, now=20.0, renew_deadline=10.0)


def test_micro_time_is_rfc3339_with_microseconds_in_utc() -> None:
    at = datetime(2026, 12, 1, 11, 0, 0, 123456, tzinfo=UTC) + timedelta(0)
    assert micro_time(at) == "2026-12-01T11:00:00.123456Z"


class TestConfig:
    def test_client_go_defaults_are_valid(self) -> None:
        config = ElectionConfig(identity="a")
        assert (config.lease_duration, config.renew_deadline, config.retry_period) == (15, 10, 2)
        assert config.problems() == []
        assert (
            config.path
            == "/apis/coordination.k8s.io/v1/namespaces/servingopt-system/leases/servingopt"
        )

    @pytest.mark.parametrize(
        ("changes", "problem"),
        [
            ({"lease_duration": 10.0}, "longer than the renew deadline"),
            ({"renew_deadline": 2.0}, "longer than the retry period"),
            ({"retry_period": 0.0}, "positive"),
            ({"identity": ""}, "identity"),
            ({"namespace": "Bad_NS"}, "DNS label"),
            ({"name": "a/b"}, "DNS subdomain"),
        ],
    )
    def test_bad_settings_are_named(self, changes: dict[str, object], problem: str) -> None:
        config = ElectionConfig(**{"identity": "a", **changes})  # type: ignore[arg-type]
        assert any(problem in p for p in config.problems())

    def test_the_lease_duration_is_rounded_up_to_whole_seconds(self) -> None:
        assert ElectionConfig(identity="a", lease_duration=10.2).lease_seconds == 11


class TestIdentity:
    def test_the_pod_name_when_there_is_one(self) -> None:
        assert default_identity({"POD_NAME": "servingopt-7d9-abc"}) == "servingopt-7d9-abc"

    def test_else_unique_per_process_start(self) -> None:
        a, b = default_identity({}), default_identity({})
        assert a != b
        assert a.split("_")[:2] == b.split("_")[:2]
