"""PromQL presets: the series names of common model servers, as queries the planner needs.

Pure: builds query strings, no I/O. Every value that comes from a spec (label matcher
values, the namespace, the Deployment name) goes through :func:`quote`, which renders a
PromQL double-quoted string literal, so a spec cannot end the literal early and append
its own PromQL. Label names are checked against Prometheus' label-name grammar and
refused otherwise (the CRD refuses them too).

Each preset answers the same questions (one instant query each):

- ``request_rate``    — requests per second over the window, summed over replicas;
- ``error_ratio``     — failed / all requests (0..1);
- ``p99_latency_ms``  — 99th-percentile end-to-end latency in milliseconds;
- ``mean_batch_size`` — mean executed batch size;
- ``queue_ms``        — time spent queued before execution, in milliseconds;
- ``replicas``        — how many replicas report the request counter.

Two more, apart from those: :meth:`Preset.peak_rate_query`, each interval's highest
short-window request rate (bursts within the interval), and
:meth:`Preset.freshness_query`, the time of the newest
raw sample of the preset's request counter, so that a Prometheus that stopped scraping
(or a remote store that lags) is not taken for a quiet workload, and a proxy that
answers for another time than the one asked is noticed even when it finds no data.

A question a server's metrics cannot answer is ``None`` in its preset; the planner then
falls back to its model for that quantity. See docs/operator.md for the ``generic``
convention and the sources of the other presets' names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
QUESTIONS = ("request_rate", "error_ratio", "p99_latency_ms", "mean_batch_size", "queue_ms")


def quote(value: str) -> str:
    """``value`` as a PromQL double-quoted string literal (Go escaping rules)."""
    out = ['"']
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def matchers(labels: Mapping[str, str]) -> str:
    """Exact-match label matchers, comma-separated, sorted by name (no braces)."""
    parts = []
    for name in sorted(labels):
        if not LABEL_NAME.match(name):
            raise ValueError(f"invalid Prometheus label name {name!r}")
        parts.append(f"{name}={quote(labels[name])}")
    return ",".join(parts)


def duration(seconds: int) -> str:
    """A PromQL range duration such as ``300s``."""
    if seconds <= 0:
        raise ValueError("window must be positive")
    return f"{int(seconds)}s"


# Templates: $sel expands to the escaped matchers (never empty), $w to the window.
Templates = Mapping[str, str | None]


@dataclass(frozen=True)
class Preset:
    """Query templates of one server family."""

    name: str
    description: str
    templates: Templates
    counter: str  # the raw request counter, whose newest sample says how fresh data is
    pod_requests: tuple[str, ...] = ()
    """Counters whose summed rate is one pod's request rate (for the adapter's rules)."""
    pod_busy: tuple[str, float] | None = None
    """A counter of request time and its unit in seconds: its rate is one pod's mean
    number of requests in flight (Little's law), the ``Concurrency`` metric."""

    def queries(self, labels: Mapping[str, str], window_seconds: int) -> dict[str, str]:
        """The instant queries this preset can answer, keyed by question."""
        if not labels:
            raise ValueError("at least one label matcher is required")
        values = {"sel": matchers(labels), "w": duration(window_seconds)}
        return {
            question: Template(text).substitute(values)
            for question, text in self.templates.items()
            if text is not None
        }

    def freshness_query(self, labels: Mapping[str, str]) -> str:
        """Unix time of the newest raw sample of the request counter, or 0 when there is
        none within Prometheus' lookback. Never empty, so its evaluation timestamp always
        shows at which time the server really evaluated it."""
        if not labels:
            raise ValueError("at least one label matcher is required")
        return f"max(timestamp({self.counter}{{{matchers(labels)}}})) or vector(0)"

    def demand_query(self, labels: Mapping[str, str], window_seconds: int) -> str:
        """Requests per second, for range queries of the demand history."""
        return self.queries(labels, window_seconds)["request_rate"]

    def concurrency_query(self, labels: Mapping[str, str], window_seconds: int) -> str | None:
        """Requests in flight summed over the pods (the rate of request time, Little's
        law), or None when the preset has no request-time counter."""
        if self.pod_busy is None:
            return None
        counter, unit = self.pod_busy
        scale = "" if unit == 1.0 else f" * {unit:g}"
        window = duration(window_seconds)
        return f"sum(rate({counter}{{{matchers(labels)}}}[{window}])){scale}"

    def peak_rate_query(self, labels: Mapping[str, str], burst_seconds: int, step: int) -> str:
        """The highest request rate over ``burst_seconds`` windows within each ``step``
        (a subquery evaluated every ``burst_seconds``), for range queries: bursts the
        per-interval rate hides. Needs a scrape interval of at most half the window;
        with fewer samples the windows have no rate and the point is absent."""
        rate = self.demand_query(labels, burst_seconds)
        return f"max_over_time(({rate})[{duration(step)}:{duration(burst_seconds)}])"


def _histogram_p99(metric: str, scale_to_ms: float) -> str:
    return (
        f"histogram_quantile(0.99, sum by (le) (rate({metric}_bucket{{$sel}}[$w])))"
        f" * {scale_to_ms:g}"
    )


def _ratio(numerator: str, denominator: str) -> str:
    return f"sum(rate({numerator}[$w])) / sum(rate({denominator}[$w]))"


GENERIC = Preset(
    name="generic",
    counter="serving_requests_total",
    pod_requests=("serving_requests_total",),
    pod_busy=("serving_request_duration_seconds_sum", 1.0),
    description="servingopt's convention (docs/operator.md): serving_requests_total{status}, "
    "serving_request_duration_seconds, serving_batch_size, serving_queue_duration_seconds",
    templates={
        "request_rate": "sum(rate(serving_requests_total{$sel}[$w]))",
        "error_ratio": _ratio(
            'serving_requests_total{$sel,status="error"}', "serving_requests_total{$sel}"
        ),
        "p99_latency_ms": _histogram_p99("serving_request_duration_seconds", 1000),
        "mean_batch_size": _ratio("serving_batch_size_sum{$sel}", "serving_batch_size_count{$sel}"),
        "queue_ms": _ratio(
            "serving_queue_duration_seconds_sum{$sel}", "serving_queue_duration_seconds_count{$sel}"
        )
        + " * 1000",
        "replicas": "count(count by (instance) (serving_requests_total{$sel}))",
    },
)

# Triton Inference Server metrics (docs: user_guide/metrics.md). Latency counters are
# cumulative microseconds; the p99 needs summaries enabled
# (--metrics-config summary_latencies=true), otherwise it is absent and the model decides.
TRITON = Preset(
    name="triton",
    counter="nv_inference_request_success",
    pod_requests=("nv_inference_request_success", "nv_inference_request_failure"),
    pod_busy=("nv_inference_request_duration_us", 1e-6),
    description="NVIDIA Triton: nv_inference_request_success/failure, nv_inference_count, "
    "nv_inference_exec_count, nv_inference_queue_duration_us, nv_inference_request_summary_us",
    templates={
        "request_rate": "sum(rate(nv_inference_request_success{$sel}[$w]))"
        " + sum(rate(nv_inference_request_failure{$sel}[$w]))",
        "error_ratio": "sum(rate(nv_inference_request_failure{$sel}[$w])) / ("
        "sum(rate(nv_inference_request_success{$sel}[$w]))"
        " + sum(rate(nv_inference_request_failure{$sel}[$w])))",
        "p99_latency_ms": 'max(nv_inference_request_summary_us{$sel,quantile="0.99"}) / 1000',
        "mean_batch_size": _ratio("nv_inference_count{$sel}", "nv_inference_exec_count{$sel}"),
        "queue_ms": _ratio(
            "nv_inference_queue_duration_us{$sel}", "nv_inference_request_success{$sel}"
        )
        + " / 1000",
        "replicas": "count(count by (instance) (nv_inference_request_success{$sel}))",
    },
)

# KServe's Python model server: request_{preprocess,predict,postprocess}_seconds
# histograms. It exposes no request outcome or batch size.
KSERVE = Preset(
    name="kserve",
    counter="request_predict_seconds_count",
    pod_requests=("request_predict_seconds_count",),
    pod_busy=("request_predict_seconds_sum", 1.0),
    description="KServe model server: request_predict_seconds (and pre/postprocess) histograms",
    templates={
        "request_rate": "sum(rate(request_predict_seconds_count{$sel}[$w]))",
        "error_ratio": None,
        "p99_latency_ms": _histogram_p99("request_predict_seconds", 1000),
        "mean_batch_size": None,
        "queue_ms": None,
        "replicas": "count(count by (instance) (request_predict_seconds_count{$sel}))",
    },
)

# vLLM's OpenAI-compatible server (docs: serving/metrics). The running-request gauge is
# the continuous batch; requests are finished requests.
VLLM = Preset(
    name="vllm",
    counter="vllm:e2e_request_latency_seconds_count",
    pod_requests=("vllm:e2e_request_latency_seconds_count",),
    pod_busy=("vllm:e2e_request_latency_seconds_sum", 1.0),
    description="vLLM: vllm:request_success_total, vllm:e2e_request_latency_seconds, "
    "vllm:num_requests_running, vllm:request_queue_time_seconds",
    templates={
        "request_rate": "sum(rate(vllm:e2e_request_latency_seconds_count{$sel}[$w]))",
        "error_ratio": None,
        "p99_latency_ms": _histogram_p99("vllm:e2e_request_latency_seconds", 1000),
        "mean_batch_size": "avg(avg_over_time(vllm:num_requests_running{$sel}[$w]))",
        "queue_ms": _ratio(
            "vllm:request_queue_time_seconds_sum{$sel}",
            "vllm:request_queue_time_seconds_count{$sel}",
        )
        + " * 1000",
        "replicas": "count(count by (instance) (vllm:num_requests_running{$sel}))",
    },
)

PRESETS: dict[str, Preset] = {p.name: p for p in (GENERIC, TRITON, KSERVE, VLLM)}


def preset(name: str) -> Preset:
    """The preset called ``name``; ValueError names the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown metrics preset {name!r}; known: {sorted(PRESETS)}") from None


def default_labels(namespace: str, deployment: str) -> dict[str, str]:
    """Matchers used when a ModelServing names none: the target's namespace and name."""
    return {"namespace": namespace, "deployment": deployment}
