"""Bursts within the interval, read from a real Prometheus.

An exporter's request counter grows at a base rate plus an eight-second burst every
twenty seconds; Prometheus scrapes it every second. The source's history must show
each interval's mean rate and, from the ``peak_rate`` subquery, the rate of the
busiest short window, which a per-interval rate hides.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest

from servingopt.devcluster import Prometheus
from servingopt.metrics.prometheus import PrometheusClient
from servingopt.metrics.source import PrometheusSource, SampleRequest

BASE_RPS = 20.0
BURST_RPS = 100.0  # on top of the base, for BURST_S of every PERIOD_S
BURST_S = 8.0  # twice the short window: one window always lies wholly inside a burst
PERIOD_S = 20.0
LABELS = {"namespace": "bursts", "deployment": "bursty"}


def served(elapsed: float) -> float:
    """Requests served in the first ``elapsed`` seconds."""
    periods, into = divmod(elapsed, PERIOD_S)
    bursts = periods * BURST_S + min(into, BURST_S)
    return BASE_RPS * elapsed + BURST_RPS * bursts


@pytest.fixture
def bursty(prometheus: Prometheus) -> Iterator[float]:
    started = time.time()
    sel = ",".join(f'{k}="{v}"' for k, v in sorted(LABELS.items()))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            n = served(time.time() - started)
            body = f'serving_requests_total{{{sel},status="ok"}} {n:.3f}\n'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    prometheus.add_static_targets("bursty", [f"127.0.0.1:{server.server_address[1]}"])
    yield started
    prometheus.remove_static_targets("bursty")
    server.shutdown()


async def test_the_peak_short_window_rate_shows_bursts_the_mean_hides(
    prometheus: Prometheus, bursty: float
) -> None:
    time.sleep(max(0.0, bursty + 58.0 - time.time()))  # two intervals past the first point
    request = SampleRequest(
        "generic",
        LABELS,
        window_seconds=20,
        history_seconds=60,
        history_step_seconds=20,
        burst_window_seconds=4,
    )
    async with PrometheusClient(prometheus.url) as client:
        sample = await PrometheusSource(client).sample(request)
    assert sample.available, sample.message
    history = sample.history()
    ok = history.peak_rps == history.peak_rps  # measured points
    assert ok.any(), f"no peak rate in {sample.peak_history}"
    mean, peak = history.requests_per_second[ok][-1], history.peak_rps[ok][-1]
    # Each 20 s holds one burst: a mean of 20 + 100 x 8 / 20 = 60 rps; a 4 s window
    # inside the burst runs at 120 rps (Prometheus extrapolates at the windows' edges).
    expected_mean = served(PERIOD_S) / PERIOD_S
    assert 0.8 * expected_mean < mean < 1.25 * expected_mean, (mean, expected_mean)
    assert 100.0 < peak < 145.0, peak
    assert peak / mean > 1.6
