"""Trace generators (seeded), loaders and reshaping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from servingopt.simulate import traces as T

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "traces"


@pytest.mark.parametrize("name", sorted(T.GENERATORS))
def test_generators_are_seeded_and_non_negative(name: str) -> None:
    a = T.generate(name, seconds=2 * 3600, seed=1)
    b = T.generate(name, seconds=2 * 3600, seed=1)
    assert a.seconds == 2 * 3600
    assert np.array_equal(a.rates, b.rates)
    assert np.all(a.rates >= 0)


def test_diurnal_peaks_in_the_afternoon_and_dips_at_night() -> None:
    trace = T.diurnal(T.DAY, peak=100.0, ratio=5.0, noise=0.0)
    hourly = T.per_interval_mean(trace.rates, 3600)
    assert int(np.argmax(hourly)) in (13, 14)
    assert int(np.argmin(hourly)) in (1, 2)
    assert hourly.max() / hourly.min() == pytest.approx(5.0, rel=0.05)


def test_weekly_weekends_are_quieter() -> None:
    trace = T.weekly(7 * T.DAY, weekend=0.5, noise=0.0)
    daily = T.per_interval_mean(trace.rates, T.DAY)
    assert daily[5] == pytest.approx(0.5 * daily[0])


def test_spikes_and_growth() -> None:
    spiky = T.spiky(T.DAY, base=10.0, spike=5.0, spikes_per_day=4, seed=2)
    assert spiky.peak_rps > 3 * np.median(spiky.rates)
    growing = T.growing(4 * T.DAY, growth=2.0, seed=2)
    daily = T.per_interval_mean(growing.rates, T.DAY)
    assert daily[-1] / daily[0] == pytest.approx(2 ** (3 / 4), rel=0.1)


def test_generator_spec_parameters() -> None:
    trace = T.generate("steady:mean=7", seconds=60)
    assert trace.mean_rps == pytest.approx(7.0)
    with pytest.raises(ValueError, match="unknown"):
        T.generate("nope")
    with pytest.raises(ValueError):
        T.generate("steady:mean")


def test_rescaling_and_stretching() -> None:
    trace = T.diurnal(3600, peak=50.0, seed=1)
    assert trace.scaled_to_peak(200.0).peak_rps == pytest.approx(200.0)
    stretched = trace.stretched(2.0)
    assert stretched.seconds == 7200
    assert stretched.rates.sum() == pytest.approx(2 * trace.rates.sum(), rel=0.01)
    assert trace.truncated(5000).seconds == 5000


def test_timestamp_csv_gives_exact_counts(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens\n"
        "2023-11-16 18:15:46.6805900,1\n2023-11-16 18:15:46.9,2\n2023-11-16 18:15:49.1,3\n"
    )
    trace = T.load(path)
    assert trace.counts is not None
    assert trace.counts.tolist() == [2, 0, 1]  # seconds since the first request
    assert np.array_equal(trace.arrivals(np.random.default_rng(0)), trace.counts)


def test_timestamp_csv_without_a_header_keeps_its_first_request(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text("1700000000.2\n1700000000.7\n1700000002.5\n")
    trace = T.load(path)
    assert trace.counts is not None and trace.counts.tolist() == [2, 0, 1]


def test_rate_csv_and_per_container_samples(tmp_path: Path) -> None:
    rates = tmp_path / "history.csv"
    rates.write_text("timestamp,requests_per_second\n0,10\n60,20\n")
    trace = T.load(rates)
    assert trace.seconds == 120
    assert trace.rates[0] == 10 and trace.rates[119] == 20
    qps = tmp_path / "qps.csv"
    qps.write_text(
        "timestamp_anon,value,container_ip,request_type\n100,1.5,a,x\n100,2.5,b,x\n157,1.0,a,x\n"
    )
    summed = T.load(qps)
    assert summed.rates[0] == pytest.approx(4.0)
    assert summed.rates[-1] == pytest.approx(1.0)


@pytest.mark.skipif(not SHARED.is_dir(), reason="public traces not present")
def test_public_traces_load() -> None:
    path = SHARED / "azure-llm-2023-conv.csv"
    rows = sum(1 for line in path.read_text().splitlines()[1:] if line.strip())
    conv = T.load(path)
    assert conv.counts is not None and int(conv.counts.sum()) == rows
    assert 50 * 60 < conv.seconds < 60 * 60
    qps = T.load(SHARED / "alibaba-genai-2026-qps.csv")
    assert qps.seconds / 3600 == pytest.approx(22.3, abs=0.2)
