"""Learning from live metrics: how the history is grouped into evidence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servingopt.model import LatencyProfile
from servingopt.optimize.learning import (
    BUCKETS,
    MAX_ROWS,
    _evidence,
    _predicted_p99,
    _service_times,
    learn_all,
)
from servingopt.values import Observation, RunningConfig

CONFIGS = [("g5.xlarge", "fp16"), ("g5.xlarge", "int8"), ("c7i.xlarge", "fp32"), ("", "fp16")]


def _reference(obs: Observation) -> dict[tuple[str, str], list[tuple[float, float, float]]]:
    """The grouping written row by row, the obvious way."""
    ok = (
        np.isfinite(obs.p99_latency_ms)
        & (obs.p99_latency_ms > 0)
        & np.isfinite(obs.replicas)
        & (obs.replicas > 0)
        & (obs.requests_per_second > 0)
    )
    groups: dict[tuple[str, str], list[int]] = {}
    for i in range(ok.size):
        key = (obs.instance_types[i], obs.variants[i])
        if ok[i] and key[0] and key[1]:
            groups.setdefault(key, []).append(i)
    out = {}
    for key, idx in groups.items():
        rows = np.asarray(idx[-MAX_ROWS:])
        rate = obs.requests_per_second[rows] / obs.replicas[rows]
        order = rows[np.argsort(rate, kind="stable")]
        out[key] = [
            (
                float(np.median(obs.requests_per_second[part] / obs.replicas[part])),
                float(np.median(obs.p99_latency_ms[part])),
                float(np.nan_to_num(np.median(obs.max_batch_sizes[part]), nan=0.0)),
            )
            for part in np.array_split(order, min(BUCKETS, order.size))
        ]
    return out


@st.composite
def histories(draw: st.DrawFn) -> Observation:
    runs = draw(st.lists(st.tuples(st.sampled_from(CONFIGS), st.integers(1, 300)), max_size=6))
    keys = [key for key, length in runs for _ in range(length)]
    n = len(keys)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    p99 = rng.uniform(1.0, 200.0, n)
    p99[rng.random(n) < 0.1] = np.nan  # minutes without a p99
    replicas = rng.integers(0, 6, n).astype(float)  # some with no replica
    batches = rng.choice([1.0, 8.0, 32.0, np.nan], n)
    rps = np.round(rng.uniform(0.0, 100.0, n), 1)  # ties in load per replica
    return Observation(
        timestamps_s=60.0 * np.arange(n),
        requests_per_second=rps,
        p99_latency_ms=p99,
        replicas=replicas,
        instance_types=tuple(k[0] for k in keys),
        variants=tuple(k[1] for k in keys),
        max_batch_sizes=batches,
        current=RunningConfig("g5.xlarge", "fp16"),
    )


@settings(max_examples=60, deadline=None)
@given(histories())
def test_evidence_groups_every_usable_row_by_configuration(obs: Observation) -> None:
    got, want = _evidence(obs), _reference(obs)
    assert list(got) == list(want)  # same keys, in order of first use
    for key, buckets in want.items():
        np.testing.assert_allclose(got[key], buckets, rtol=0, atol=0)


def test_rows_without_a_configuration_name_count_for_the_running_one() -> None:
    obs = Observation(
        timestamps_s=np.array([0.0, 60.0]),
        requests_per_second=np.array([10.0, 20.0]),
        p99_latency_ms=np.array([30.0, 40.0]),
        replicas=np.array([1.0, 2.0]),
        current=RunningConfig("g5.xlarge", "fp16", max_batch_size=8),
    )
    assert _evidence(obs) == {
        ("g5.xlarge", "fp16"): [(10.0, 30.0, 8.0), (10.0, 40.0, 8.0)],
    }


def test_bursts_are_not_learned_as_slower_service() -> None:
    """p99s exactly as the model predicts at the load in each interval's bursts: with
    the burst factors nothing is learned; read at the mean, they look like slowness."""
    profile = LatencyProfile.from_points((1.0, 8.0, 32.0), (4.0, 11.0, 35.0), label="t4")
    times = _service_times(profile)
    shape = profile.a_ms / (profile.a_ms + profile.c_ms)
    n = 120
    rng = np.random.default_rng(3)
    mean = rng.uniform(200.0, 900.0, n)
    burst = rng.uniform(1.3, 2.0, n)
    loads = (mean * burst).tolist()
    p99 = np.array([_predicted_p99(times, shape, 1.0, load, 32, 2.0) for load in loads])
    obs = Observation(
        timestamps_s=60.0 * np.arange(n),
        requests_per_second=mean,
        p99_latency_ms=p99,
        replicas=np.ones(n),
        instance_types=("g4dn.xlarge",) * n,
        variants=("int8",) * n,
        max_batch_sizes=np.full(n, 32.0),
        current=RunningConfig(instance_type="g4dn.xlarge", variant="int8"),
    )
    key = ("g4dn.xlarge", "int8")
    aware = learn_all(obs, lambda _: profile, 32, 2.0, burst)
    blind = learn_all(obs, lambda _: profile, 32, 2.0)
    assert aware.corrections[key].factor == pytest.approx(1.0, abs=0.02)
    assert blind.corrections[key].factor > 1.1
