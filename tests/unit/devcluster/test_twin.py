"""The traffic twin's pure parts (demand split, per-pod latency, exported series) and
its shell against a fake cluster reader (loopback endpoints only)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from servingopt.devcluster.twin import (
    LATENCY_BUCKETS_S,
    GroundTruth,
    PodCounters,
    PodState,
    TrafficTwin,
    load_spec,
    parse_factors,
    pod_performance,
    ready_pods,
    split_demand,
)
from servingopt.metrics.promql import GENERIC
from servingopt.model import LatencyProfile, predict

ROOT = Path(__file__).resolve().parents[3]
SPEC = load_spec(ROOT / "samples/modelservings/resnet50-classifier.yaml")
T4_INT8 = LatencyProfile.from_points([1, 2, 4, 8, 16, 32], [1.6, 2.1, 3.0, 4.9, 8.6, 16.4])


def pod(name: str, pool: str = "gpu-t4") -> PodState:
    return PodState(name, "g4dn.xlarge", pool, "int8", 8, 1.0)


# ----------------------------------------------------------------- demand split


@given(st.floats(0, 1e5), st.integers(1, 40))
def test_split_demand_conserves_the_total_evenly(total: float, n: int) -> None:
    shares = split_demand(total, [pod(f"p{i}") for i in range(n)])
    assert len(shares) == n
    assert sum(shares.values()) == pytest.approx(total, rel=1e-9, abs=1e-9)
    assert max(shares.values()) == pytest.approx(min(shares.values()))


def test_split_demand_without_pods_or_with_negative_demand() -> None:
    assert split_demand(100.0, []) == {}
    assert split_demand(-5.0, [pod("a")]) == {"a": 0.0}


# ----------------------------------------------------------------- per-pod latency


def test_pod_p99_is_the_queue_model_p99() -> None:
    perf = pod_performance(T4_INT8, 400.0, 8, 1.0)
    expected = predict(T4_INT8, 400.0, 8, 1.0).p99_latency_ms
    assert perf.p99_ms == pytest.approx(expected)
    assert perf.served_rps == 400.0 and perf.error_rps == 0.0
    assert 1.0 <= perf.mean_batch <= 8.0


def test_p99_grows_with_load_and_with_a_slower_ground_truth() -> None:
    p99s = [pod_performance(T4_INT8, r, 8, 1.0).p99_ms for r in (100, 400, 800, 1200)]
    assert p99s == sorted(p99s) and p99s[-1] > p99s[0]
    slower = pod_performance(T4_INT8.scaled(1.3), 800.0, 8, 1.0).p99_ms
    assert slower > pod_performance(T4_INT8, 800.0, 8, 1.0).p99_ms


def test_overloaded_pod_serves_below_its_limit_and_fails_the_rest() -> None:
    limit = 1000.0 / float(T4_INT8.service_time_ms(1))  # B = 1
    perf = pod_performance(T4_INT8, 2 * limit, 1, 0.0)
    assert perf.served_rps < limit
    assert perf.error_rps == pytest.approx(2 * limit - perf.served_rps)
    assert perf.p99_ms >= 500.0


@given(st.floats(50, 1500))
def test_latency_cdf_is_a_distribution(rate: float) -> None:
    perf = pod_performance(T4_INT8, rate, 16, 2.0)
    values = [perf.fraction_within(x) for x in (0.0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 1e4)]
    assert values[0] == 0.0 and values[-1] == 1.0
    assert values == sorted(values)


# ----------------------------------------------------------------- exported series


def histogram_p99(text: str) -> float:
    """p99 the way Prometheus' histogram_quantile reads cumulative buckets."""
    buckets = [
        (float(s.labels["le"]), s.value)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == "serving_request_duration_seconds_bucket"
    ]
    total = buckets[-1][1]
    rank, prev_le, prev_count = 0.99 * total, 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            return 1000 * (prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count))
        prev_le, prev_count = le, count
    raise AssertionError("no bucket reached the rank")


@pytest.mark.parametrize("rate", [200.0, 900.0, 1500.0])
def test_exported_histogram_reproduces_the_p99(rate: float) -> None:
    perf = pod_performance(T4_INT8, rate, 16, 2.0)
    counters = PodCounters()
    counters.advance(perf, 10.0)
    text = counters.exposition({"namespace": "ns", "deployment": "d", "pod": "p"})
    assert histogram_p99(text) == pytest.approx(perf.p99_ms, rel=0.12)


def test_counters_grow_with_time_and_buckets_are_cumulative() -> None:
    perf = pod_performance(T4_INT8, 300.0, 8, 1.0)
    counters = PodCounters()
    counters.advance(perf, 2.0)
    first = counters.ok
    counters.advance(perf, 3.0)
    assert first == pytest.approx(600.0) and counters.ok == pytest.approx(1500.0)
    assert counters.buckets == sorted(counters.buckets)
    assert counters.buckets[-1] <= counters.ok + 1e-9
    assert counters.batch_sum / counters.batch_count == pytest.approx(perf.mean_batch)


def test_exposition_has_every_series_the_generic_preset_queries() -> None:
    counters = PodCounters()
    counters.advance(pod_performance(T4_INT8, 300.0, 8, 1.0), 1.0)
    text = counters.exposition({"namespace": "ns", "deployment": "d", "pod": "p"})
    exported = {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    queried = {
        name
        for template in GENERIC.templates.values()
        if template
        for name in re.findall(r"\b(serving_[a-z_]+)\{", template)
    }
    assert queried and queried <= exported
    assert 'status="error"' in text and 'status="ok"' in text
    assert len(LATENCY_BUCKETS_S) + 1 == text.count("serving_request_duration_seconds_bucket{")


# ----------------------------------------------------------------- cluster reading


def pod_json(
    name: str,
    node: str,
    *,
    ready: bool = True,
    deleting: bool = False,
    variant: str = "int8",
    **env: str,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    image = f"registry.example.com/ml/resnet50-triton:24.08-{variant}"
    return {
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "triton",
                    "image": image,
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                }
            ],
        },
        "status": {
            "phase": "Running" if ready else "Pending",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


NODES = {
    "t4-a": {"node.kubernetes.io/instance-type": "g4dn.xlarge", "servingopt.io/pool": "gpu-t4"},
    "v100-a": {"node.kubernetes.io/instance-type": "p3.2xlarge", "servingopt.io/pool": "gpu-v100"},
}


def test_ready_pods_reads_pool_variant_and_batching_and_skips_the_rest() -> None:
    pods = [
        pod_json(
            "a", "t4-a", TRITON_MAX_BATCH_SIZE="16", TRITON_MAX_QUEUE_DELAY_MICROSECONDS="2500"
        ),
        pod_json("b", "v100-a"),
        pod_json("c", "t4-a", ready=False),
        pod_json("d", "t4-a", deleting=True),
    ]
    got = ready_pods(pods, NODES, SPEC)
    assert [p.name for p in got] == ["a", "b"]
    a, b = got
    assert (a.instance_type, a.pool, a.variant) == ("g4dn.xlarge", "gpu-t4", "int8")
    assert (a.max_batch, a.max_delay_ms) == (16, 2.5)
    assert (b.instance_type, b.max_batch, b.max_delay_ms) == ("p3.2xlarge", 1, 0.0)


def test_variant_falls_back_to_env_when_the_image_is_unknown() -> None:
    p = pod_json("a", "t4-a", MODEL_PRECISION="fp16")
    p["spec"]["containers"][0]["image"] = "somewhere/else:latest"
    assert ready_pods([p], NODES, SPEC)[0].variant == "fp16"


def test_ground_truth_scales_the_declared_profile() -> None:
    truth = GroundTruth(SPEC, parse_factors("gpu-t4=1.5,g5.xlarge=2"))
    declared = truth.profile("int8", "g4dn.xlarge", "other-pool")
    slowed = truth.profile("int8", "g4dn.xlarge", "gpu-t4")
    assert declared is not None and slowed is not None
    assert float(slowed.service_time_ms(4)) == pytest.approx(
        1.5 * float(declared.service_time_ms(4))
    )
    a10g = truth.profile("int8", "g5.xlarge", "gpu-t4")  # instance type wins over pool
    assert a10g is not None and float(a10g.service_time_ms(1)) == pytest.approx(2 * 1.1)
    # int8 has no V100 profile: the slowest declared one (CPU) stands in.
    stand_in = truth.profile("int8", "p3.2xlarge", "gpu-v100")
    assert stand_in is not None and float(stand_in.service_time_ms(1)) == 9.5
    assert truth.profile("nope", "g4dn.xlarge", "gpu-t4") is None


@pytest.mark.parametrize("bad", ["gpu-t4", "gpu-t4=0", "=2", "x=nan", "x=-1"])
def test_parse_factors_refuses_nonsense(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_factors(bad)


# ----------------------------------------------------------------- the shell


def scrape(target: str) -> str:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as resp:
        body: bytes = resp.read()
    return body.decode()


def test_twin_follows_the_pods_and_serves_one_endpoint_each() -> None:
    state: dict[str, list[dict[str, Any]]] = {
        "pods": [pod_json("a", "v100-a", variant="fp32"), pod_json("b", "v100-a", variant="fp32")]
    }
    published: list[list[str]] = []
    twin = TrafficTwin(
        namespace="ns",
        deployment="resnet50-classifier",
        truth=GroundTruth(SPEC),
        demand=lambda t: 400.0,
        read_cluster=lambda: (state["pods"], NODES),
        publish_targets=published.append,
    )
    twin.refresh()
    try:
        assert len(published) == 1 and len(published[0]) == 2
        twin.advance(2.0)
        text = scrape(published[0][0])
        assert 'deployment="resnet50-classifier"' in text and 'pod="a"' in text
        ok = next(
            s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
            if s.name == "serving_requests_total" and s.labels["status"] == "ok"
        )
        assert ok == pytest.approx(400.0)  # 200 req/s for 2 s
        state["pods"] = [pod_json("c", "t4-a", TRITON_MAX_BATCH_SIZE="8")]
        twin.refresh()
        assert len(published) == 2 and len(published[1]) == 1
        ((pod_state, perf),) = twin.snapshot()
        assert pod_state.pool == "gpu-t4" and perf is not None and perf.offered_rps == 400.0
        twin.refresh()  # same pods: nothing re-published
        assert len(published) == 2
    finally:
        twin.stop()


def test_a_nodes_pool_is_read_from_any_platforms_pool_label() -> None:
    from servingopt.devcluster.twin import pool_of

    assert pool_of({"servingopt.io/pool": "gpu-t4"}) == "gpu-t4"
    assert pool_of({"eks.amazonaws.com/nodegroup": "gpu-a10g"}) == "gpu-a10g"
    assert pool_of({"cloud.google.com/gke-nodepool": "l4-pool"}) == "l4-pool"
    assert pool_of({"kubernetes.io/hostname": "n"}) == "unknown"
