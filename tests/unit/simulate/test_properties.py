"""Property tests: invariants that must hold for any trace, seed or HPA input."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servingopt.simulate import traces as T
from servingopt.simulate.compare import compare, make_policy
from servingopt.simulate.hpa import Hpa, HpaSpec, PodMetrics
from servingopt.simulate.world import Scenario

FAST = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FAST
@given(
    kind=st.sampled_from(["steady", "diurnal", "spiky"]),
    level=st.floats(50.0, 4000.0),
    seed=st.integers(0, 1000),
)
def test_oracle_below_policies_and_requests_conserved(
    scenario: Scenario, kind: str, level: float, seed: int
) -> None:
    trace = T.generate(f"{kind}", seconds=1800, seed=seed).scaled_to_peak(level)
    names = ["static", "hpa", "threshold", "offline", "servingopt"]
    result = compare(scenario, trace, [make_policy(n) for n in names], seed=seed)
    for name, r in result.results.items():
        # The oracle is the cheapest way to meet the SLO in every interval. The adaptive
        # policies can undercut it only by missing the SLO (e.g. spiky, 1336 req/s,
        # seed 1: servingopt $0.2915 vs $0.295 at 74 % within the SLO).
        if name in ("static", "hpa", "offline") or r.slo_attainment >= 0.99:
            assert result.oracle.cost <= r.cost + 1e-9, name
        assert math.isclose(r.served + r.dropped, r.requests, rel_tol=1e-9, abs_tol=1e-6)
        assert 0.0 <= r.slo_attainment <= 1.0


@settings(max_examples=200, deadline=None)
@given(
    bounds=st.tuples(st.integers(1, 20), st.integers(0, 40)),
    target=st.floats(1.0, 500.0),
    loads=st.lists(st.tuples(st.floats(0.0, 2000.0), st.integers(0, 5)), min_size=1, max_size=30),
    start=st.integers(1, 60),
)
def test_hpa_stays_in_bounds_and_respects_the_default_rate_limits(
    bounds: tuple[int, int], target: float, loads: list[tuple[float, int]], start: int
) -> None:
    low, extra = bounds
    spec = HpaSpec(low, low + extra, target)
    hpa = Hpa(spec)
    current = start
    for step, (value, unready) in enumerate(loads):
        ready = max(current - unready, 0)
        desired = hpa.sync(15.0 * step, current, PodMetrics([value] * ready, unready=unready))
        if low <= current <= spec.max_replicas:
            assert low <= desired <= spec.max_replicas
            # Default scale-up: at most max(2x, +4) per 15 s period.
            assert desired <= max(2 * current, current + 4)
        current = desired
