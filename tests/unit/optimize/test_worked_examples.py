"""Worked examples whose answers are computed by hand (see the comments)."""

from __future__ import annotations

import pytest

from servingopt.model import LatencyProfile, predict
from servingopt.optimize import Observation, plan

from .conftest import catalog, vision_spec


def test_200_rps_vision_model_is_cheapest_on_one_t4() -> None:
    """Which of c5.2xlarge, g4dn.xlarge, p3.2xlarge serves 200 req/s at p99 <= 100 ms?

    By hand (Balanced policy: the HPA target is 80 % of a replica's SLO capacity):

    * c5.2xlarge, t(b) = 20 b ms: batching gains nothing, so a replica serves at most
      1000 / 20 = 50 req/s (its stability limit), and at most 40 req/s at the 80 %
      target: >= 200 / 40 = 5 replicas.  A node has 8 - 0.1 = 7.9 allocatable vCPUs
      and 16 - 0.5 = 15.5 GiB, so floor(7.9 / 2) = 3 pods of 2 CPUs / 4 GiB fit:
      >= ceil(5 / 3) = 2 nodes, >= 2 x $0.34 = $0.68/h.
    * g4dn.xlarge, t(b) = 4 + b ms: with B = 16 a full batch takes 20 ms, so one
      replica's stability limit is 16 / 20 ms = 800 req/s; 200 req/s is a quarter of
      it, and even two full batches back to back (40 ms) are far below 100 ms, so one
      replica (capacity >= 250 req/s, target >= 200) does it: 1 node, $0.526/h.
    * p3.2xlarge: one node is already $3.06/h.

    Answer: g4dn.xlarge, 1 replica, $0.526/h; c5.2xlarge >= $0.68/h; p3 >= $3.06/h.
    """
    decision = plan(vision_spec(), catalog(), None, Observation.from_rps(200.0))
    assert decision.slo_feasible
    assert decision.instance_type == "g4dn.xlarge"
    assert decision.replicas == 1
    assert decision.hourly_cost == pytest.approx(0.526)
    by_type = {a.instance_type: a for a in decision.alternatives}
    assert by_type["c5.2xlarge"].hourly_cost is not None
    assert by_type["c5.2xlarge"].hourly_cost >= 0.68
    assert by_type["p3.2xlarge"].hourly_cost == pytest.approx(3.06)
    # the exact queue model agrees that one T4 replica holds the target load
    exact = predict(
        LatencyProfile.from_coefficients(4.0, 1.0),
        decision.target_rps_per_replica,
        decision.max_batch_size,
        decision.max_queue_delay_ms,
    )
    assert decision.target_rps_per_replica >= 200.0
    assert exact.p99_latency_ms <= 100.0


def test_10_rps_vision_model_is_cheapest_on_one_cpu_node() -> None:
    """At 10 req/s: a c5.2xlarge replica at load 10 req/s runs at 20 % of its 50 req/s
    limit (M/D/1, mean wait rho D / (2 (1 - rho)) = 2.5 ms); its p99 is a few service
    times, well under 100 ms, so one replica (one $0.34 node) beats the $0.526 T4."""
    decision = plan(vision_spec(), catalog(), None, Observation.from_rps(10.0))
    assert decision.slo_feasible
    assert (decision.instance_type, decision.replicas) == ("c5.2xlarge", 1)
    assert decision.hourly_cost == pytest.approx(0.34)
    assert decision.max_batch_size == 1  # CPU: batching only adds delay


def test_cpu_packing_three_pods_per_node() -> None:
    """Only the CPU allowed, 90 req/s: a replica serves < 50 req/s, 40 req/s at most at
    the target, so >= 3 replicas; 3 pods fit a node (see above): 1 node if the model
    says 3 replicas suffice, and never fewer nodes than ceil(replicas / 3)."""
    spec = vision_spec(candidates={"instanceTypes": ["c5.2xlarge"]})
    decision = plan(spec, catalog(), None, Observation.from_rps(90.0))
    assert decision.instance_type == "c5.2xlarge"
    assert decision.replicas >= 3
    nodes = -(-decision.replicas // 3)
    assert decision.hourly_cost == pytest.approx(nodes * 0.34)
