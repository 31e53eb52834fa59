"""Standing headroom from a replica's start time on each pool: node provisioning plus
the pod's start-up, against how fast demand has risen."""

from __future__ import annotations

import numpy as np

from servingopt.api import ServingPolicySpec
from servingopt.optimize import Observation, plan
from servingopt.optimize.candidates import find_candidates
from servingopt.optimize.planner import forecast_demand, start_ramps

from .conftest import catalog, vision_spec


def rising() -> Observation:
    """Six hours in which demand climbs 2 % a minute for ten minutes every hour."""
    minutes = np.arange(360)
    into = minutes % 60
    rps = 200.0 * np.where(into < 10, 1.02**into, 1.02**10)
    return Observation(timestamps_s=minutes * 60.0, requests_per_second=rps)


def test_a_pool_slower_to_start_sees_more_growth_while_it_starts() -> None:
    spec, obs = vision_spec(), rising()
    cat = catalog(g4dn_xlarge={"provisioningSeconds": 60}, p3_2xlarge={"provisioningSeconds": 480})
    found = find_candidates(spec, cat, ServingPolicySpec(), obs)
    demand = forecast_demand(spec, obs, 3600.0)
    assert demand is not None
    ramps = dict(
        zip(
            (c.itype.name for c in found.candidates),
            start_ramps(spec, obs, demand, found.candidates),
            strict=True,
        )
    )
    assert ramps["p3.2xlarge"] > ramps["g4dn.xlarge"] > 0.0


def test_the_chosen_pools_start_time_sets_the_hpa_margin() -> None:
    spec, obs = vision_spec(), rising()
    quick = plan(spec, catalog(g4dn_xlarge={"provisioningSeconds": 0}), None, obs)
    slow = plan(spec, catalog(g4dn_xlarge={"provisioningSeconds": 900}), None, obs)
    assert quick.instance_type == slow.instance_type == "g4dn.xlarge"
    assert slow.target_rps_per_replica < quick.target_rps_per_replica
    assert any("while a new replica starts" in r for r in slow.reasons)


def test_without_history_every_pool_has_the_declared_ramp() -> None:
    spec, obs = vision_spec(), Observation.from_rps(300.0)
    found = find_candidates(spec, catalog(), ServingPolicySpec(), obs)
    demand = forecast_demand(spec, obs, 3600.0)
    assert demand is not None
    assert set(start_ramps(spec, obs, demand, found.candidates).tolist()) == {0.0}
