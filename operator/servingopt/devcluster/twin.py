"""The traffic twin: plays the data plane of a workload on the dev cluster.

kwok pods run nothing, so no server answers requests or exports latency. The twin
stands in for them: it reads which pods of a Deployment are ready, the node each runs
on (instance type, pool), and the variant and batching settings each pod's container
carries; splits a demand curve over those pods the way a Service would (evenly); and
computes each pod's latency with :mod:`servingopt.model.queue` from a GROUND-TRUTH
profile: the ModelServing's declared profile times a per-pool or per-instance-type
factor, because real hardware rarely matches what was declared. Each pod gets its own
loopback metrics endpoint in servingopt's ``generic`` convention
(:data:`servingopt.metrics.promql.GENERIC`), which the dev cluster's Prometheus
scrapes as one target per pod, so ``count by (instance)`` counts replicas.

Pure parts (demand split, per-pod performance, counters) are plain functions and
classes; the cluster reads and HTTP endpoints are in :class:`TrafficTwin`.

Run it by hand against a dev cluster:
``python -m servingopt.devcluster.twin --cluster default --deployment resnet50-classifier
-f samples/modelservings/resnet50-classifier.yaml --demand steady:mean=800``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from servingopt.api.instancecatalog import LABEL_INSTANCE_TYPE, LABEL_POOL, PLACEMENT_PRESETS
from servingopt.api.modelserving import ModelServingSpec, Variant
from servingopt.model import LatencyProfile, predict

if TYPE_CHECKING:
    from servingopt.devcluster.prometheus import Prometheus

#: Histogram buckets of ``serving_request_duration_seconds`` (seconds): fine where GPU
#: serving latencies live, so Prometheus' histogram_quantile interpolates closely.
LATENCY_BUCKETS_S = (
    0.001, 0.002, 0.003, 0.004, 0.005, 0.0065, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025,
    0.03, 0.035, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5,
)  # fmt: skip
#: Quantiles read from the queue model to draw each pod's latency CDF.
CDF_QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
#: An overloaded pod times requests out after this long and reports them as errors.
TIMEOUT_MS = 1000.0
#: At most this many pods get an endpoint (each is a thread and a port).
MAX_PODS = 64


# ------------------------------------------------------------------------ pure parts


@dataclass(frozen=True)
class PodState:
    """What the twin needs to know about one ready pod."""

    name: str
    instance_type: str
    pool: str
    variant: str
    max_batch: int
    max_delay_ms: float


@dataclass(frozen=True)
class PodPerformance:
    """Steady-state behaviour of one pod at its share of the demand."""

    offered_rps: float
    served_rps: float
    error_rps: float
    cdf_ms: tuple[tuple[float, float], ...]  # (latency ms, fraction at or below), rising
    mean_latency_ms: float
    mean_batch: float
    queue_ms: float

    def fraction_within(self, latency_ms: float) -> float:
        """Share of served requests finishing within ``latency_ms`` (linear CDF)."""
        xs = [x for x, _ in self.cdf_ms]
        ps = [p for _, p in self.cdf_ms]
        if latency_ms <= xs[0]:
            return 0.0
        if latency_ms >= xs[-1]:
            return 1.0
        for i in range(1, len(xs)):
            if latency_ms <= xs[i]:
                span = xs[i] - xs[i - 1]
                w = (latency_ms - xs[i - 1]) / span if span > 0 else 1.0
                return ps[i - 1] + w * (ps[i] - ps[i - 1])
        return 1.0

    @property
    def p99_ms(self) -> float:
        return next(x for x, p in self.cdf_ms if p >= 0.99)


def split_demand(total_rps: float, pods: Sequence[PodState]) -> dict[str, float]:
    """Demand per pod: an even share each, as a Service balancing connections would."""
    if not pods:
        return {}
    share = max(total_rps, 0.0) / len(pods)
    return {p.name: share for p in pods}


def pod_performance(
    profile: LatencyProfile,
    rate_rps: float,
    max_batch: int,
    max_delay_ms: float,
    *,
    service_cv: float = 0.0,
) -> PodPerformance:
    """Latency CDF, batch and queue time of one pod from the queue model.

    Past the stability limit the pod serves at 98 % of it; the excess times out
    (errors) and what it serves waits close to the timeout.
    """
    b = max(1, int(max_batch))
    limit = 1000.0 * b / float(profile.service_time_ms(b))
    if rate_rps <= 0:
        t1 = float(profile.service_time_ms(1))
        return PodPerformance(0.0, 0.0, 0.0, ((t1, 0.0), (t1, 1.0)), t1, 1.0, 0.0)
    if rate_rps >= 0.98 * limit:
        served = 0.98 * limit
        t_b = float(profile.service_time_ms(b))
        cdf: tuple[tuple[float, float], ...] = ((0.5 * TIMEOUT_MS, 0.0), (TIMEOUT_MS, 1.0))
        return PodPerformance(
            rate_rps, served, rate_rps - served, cdf, 0.75 * TIMEOUT_MS, float(b),
            0.75 * TIMEOUT_MS - t_b,
        )  # fmt: skip
    points = []
    mean_ms = mean_batch = 0.0
    for q in CDF_QUANTILES:
        pred = predict(profile, rate_rps, b, max_delay_ms, quantile=q, service_cv=service_cv)
        points.append((pred.p99_latency_ms, q))
        mean_ms, mean_batch = pred.mean_latency_ms, pred.mean_batch
    floor = min(float(profile.service_time_ms(1)), points[0][0])
    top = points[-1][0] + (points[-1][0] - points[-2][0])
    cdf = ((floor, 0.0), *points, (top, 1.0))
    service_ms = float(profile.service_time_ms(max(mean_batch, 1.0)))
    return PodPerformance(
        rate_rps, rate_rps, 0.0, cdf, mean_ms, mean_batch, max(0.0, mean_ms - service_ms)
    )


@dataclass
class PodCounters:
    """Cumulative series of one pod (what a real server's counters would hold)."""

    ok: float = 0.0
    errors: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(LATENCY_BUCKETS_S))
    latency_sum_s: float = 0.0
    batch_sum: float = 0.0
    batch_count: float = 0.0
    queue_sum_s: float = 0.0

    def advance(self, perf: PodPerformance, seconds: float) -> None:
        served = perf.served_rps * seconds
        self.ok += served
        self.errors += perf.error_rps * seconds
        for i, le in enumerate(LATENCY_BUCKETS_S):
            self.buckets[i] += served * perf.fraction_within(le * 1000.0)
        self.latency_sum_s += served * perf.mean_latency_ms / 1000.0
        self.batch_sum += served
        self.batch_count += served / max(perf.mean_batch, 1.0)
        self.queue_sum_s += served * perf.queue_ms / 1000.0

    def exposition(self, labels: Mapping[str, str]) -> str:
        """Prometheus text format of these counters, ``generic`` preset names."""
        sel = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        n = self.ok
        lines = [
            "# TYPE serving_requests_total counter",
            f'serving_requests_total{{{sel},status="ok"}} {self.ok:.6f}',
            f'serving_requests_total{{{sel},status="error"}} {self.errors:.6f}',
            "# TYPE serving_request_duration_seconds histogram",
        ]
        for le, count in zip(LATENCY_BUCKETS_S, self.buckets, strict=True):
            lines.append(
                f'serving_request_duration_seconds_bucket{{{sel},le="{le:g}"}} {count:.6f}'
            )
        lines += [
            f'serving_request_duration_seconds_bucket{{{sel},le="+Inf"}} {n:.6f}',
            f"serving_request_duration_seconds_sum{{{sel}}} {self.latency_sum_s:.6f}",
            f"serving_request_duration_seconds_count{{{sel}}} {n:.6f}",
            "# TYPE serving_batch_size summary",
            f"serving_batch_size_sum{{{sel}}} {self.batch_sum:.6f}",
            f"serving_batch_size_count{{{sel}}} {self.batch_count:.6f}",
            "# TYPE serving_queue_duration_seconds summary",
            f"serving_queue_duration_seconds_sum{{{sel}}} {self.queue_sum_s:.6f}",
            f"serving_queue_duration_seconds_count{{{sel}}} {n:.6f}",
        ]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(frozen=True)
class GroundTruth:
    """How fast each (variant, instance type) really is: declared profile x factor.

    ``factors`` maps a pool name or an instance type to a slowdown (1.15: 15 % slower
    than declared); instance types win over pools. A combination without a declared
    profile runs at the variant's slowest declared profile (a pessimistic stand-in).
    """

    spec: ModelServingSpec
    factors: Mapping[str, float] = field(default_factory=dict)
    service_cv: float = 0.1

    def factor(self, instance_type: str, pool: str) -> float:
        return self.factors.get(instance_type, self.factors.get(pool, 1.0))

    def profile(self, variant: str, instance_type: str, pool: str) -> LatencyProfile | None:
        found = next((v for v in self.spec.variants or () if v.name == variant), None)
        if found is None or not found.profiles:
            return None
        declared = {p.instance_type: p for p in found.profiles}
        chosen = declared.get(instance_type) or max(
            found.profiles, key=lambda p: p.points[0].latency_ms
        )
        base = LatencyProfile.from_points(
            [pt.batch_size for pt in chosen.points],
            [pt.latency_ms for pt in chosen.points],
            label=f"{instance_type}/{variant}",
        )
        return base.scaled(self.factor(instance_type, pool))


def parse_factors(text: str) -> dict[str, float]:
    """``gpu-t4=1.15,p3.2xlarge=1.0`` -> ``{"gpu-t4": 1.15, "p3.2xlarge": 1.0}``."""
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        factor = float(value) if sep else math.nan
        if not key or not (factor > 0 and math.isfinite(factor)):
            raise ValueError(f"ground-truth factor {item!r} must be NAME=POSITIVE_NUMBER")
        out[key.strip()] = factor
    return out


def variant_of(container: Mapping[str, Any], variants: Sequence[Variant]) -> str:
    """The variant a container runs: its image matches, else all its env vars match."""
    env = {e.get("name"): e.get("value", "") for e in container.get("env", [])}
    for v in variants:
        if v.image and container.get("image") == v.image:
            return v.name
    for v in variants:
        if v.env and all(env.get(e.name) == e.value for e in v.env):
            return v.name
    return variants[0].name if variants else ""


def ready_pods(
    pods: Iterable[Mapping[str, Any]],
    nodes: Mapping[str, Mapping[str, str]],
    spec: ModelServingSpec,
) -> list[PodState]:
    """Ready, not terminating pods with what the twin needs (pods and nodes as JSON)."""
    out = []
    names = spec.batching.env
    for pod in pods:
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions", [])
        )
        node = pod.get("spec", {}).get("nodeName")
        if meta.get("deletionTimestamp") or not ready or status.get("phase") != "Running":
            continue
        labels = nodes.get(node or "", {})
        containers = pod["spec"].get("containers", [])
        if not containers:
            continue
        container = containers[0]
        env = {e.get("name"): e.get("value", "") for e in container.get("env", [])}
        out.append(
            PodState(
                name=meta["name"],
                instance_type=labels.get(LABEL_INSTANCE_TYPE, "unknown"),
                pool=pool_of(labels),
                variant=variant_of(container, spec.variants or ()),
                max_batch=_int(env.get(names.max_batch_size), 1),
                max_delay_ms=_int(env.get(names.max_queue_delay_microseconds), 0) / 1000.0,
            )
        )
    return sorted(out, key=lambda p: p.name)


def pool_of(labels: Mapping[str, str]) -> str:
    """A node's pool, by the pool label of whichever platform labelled it."""
    keys = dict.fromkeys([LABEL_POOL, *(p.pool_label for p in PLACEMENT_PRESETS.values())])
    return next((labels[k] for k in keys if k in labels), "unknown")


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(str(value)))
    except ValueError:
        return default


# ------------------------------------------------------------------------- demand


Demand = Callable[[float], float]


def demand_curve(spec: str, speedup: float = 1.0, seed: int = 0) -> Demand:
    """Requests/s at ``t`` seconds since start, from a generator of
    :mod:`servingopt.simulate.traces` (``steady:mean=800``, ``diurnal:peak=900``…),
    played ``speedup`` times faster (720: a day in two minutes) and looped."""
    from servingopt.simulate.traces import generate

    trace = generate(spec, seed=seed)
    rates = trace.rates

    def at(t: float) -> float:
        return float(rates[int(t * speedup) % rates.size])

    return at


# ------------------------------------------------------------------------- the shell


class _PodEndpoint:
    """One pod's loopback metrics endpoint."""

    def __init__(self, render: Callable[[], str]) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the scraper gave up or left
                    self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class TwinPod:
    state: PodState
    counters: PodCounters
    endpoint: _PodEndpoint
    perf: PodPerformance | None = None


class TrafficTwin:
    """Reads the cluster, advances every ready pod's counters each tick, serves them.

    ``read_cluster`` returns ``(pods JSON, {node name: labels})`` of the Deployment;
    ``publish_targets`` receives the list of ``host:port`` endpoints whenever it
    changes (e.g. :meth:`~servingopt.devcluster.Prometheus.add_static_targets`).
    """

    def __init__(
        self,
        *,
        namespace: str,
        deployment: str,
        truth: GroundTruth,
        demand: Demand,
        read_cluster: Callable[[], tuple[list[dict[str, Any]], dict[str, dict[str, str]]]],
        publish_targets: Callable[[list[str]], object],
        tick_seconds: float = 1.0,
        refresh_seconds: float = 2.0,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.namespace, self.deployment = namespace, deployment
        self.truth, self.demand = truth, demand
        self.read_cluster, self.publish_targets = read_cluster, publish_targets
        self.tick_seconds, self.refresh_seconds = tick_seconds, refresh_seconds
        self.log = log
        self.pods: dict[str, TwinPod] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._perf_cache: dict[tuple[Any, ...], PodPerformance] = {}
        self.errors = 0

    # -- lifecycle

    def start(self) -> TrafficTwin:
        self._started = time.monotonic()
        try:
            self.refresh()
        except Exception as error:  # e.g. the Deployment is not applied yet: wait for it
            self.errors += 1
            self.log(f"twin: cluster read failed ({error}); retrying")
        self._thread = threading.Thread(target=self._run, name="traffic-twin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            for pod in self.pods.values():
                pod.endpoint.stop()
            self.pods.clear()

    def _run(self) -> None:
        last_tick = last_refresh = time.monotonic()
        while not self._stop.wait(self.tick_seconds):
            now = time.monotonic()
            if now - last_refresh >= self.refresh_seconds:
                try:
                    self.refresh()
                except Exception as error:  # an API hiccup: keep the last known pods
                    self.errors += 1
                    self.log(f"twin: cluster read failed ({error}); keeping {len(self.pods)} pods")
                last_refresh = now
            self.advance(now - last_tick)
            last_tick = now

    # -- work

    def total_demand(self) -> float:
        return self.demand(time.monotonic() - self._started)

    def refresh(self) -> None:
        """Re-reads the cluster: new pods get an endpoint, gone pods lose theirs."""
        pods_json, nodes = self.read_cluster()
        states = ready_pods(pods_json, nodes, self.truth.spec)[:MAX_PODS]
        shares = split_demand(self.total_demand(), states)
        with self._lock:
            current = {s.name: s for s in states}
            changed = set(current) != set(self.pods)
            for name in list(self.pods):
                if name not in current:
                    self.pods.pop(name).endpoint.stop()
            for state in states:
                pod = self.pods.get(state.name)
                if pod is None:
                    labels = {
                        "namespace": self.namespace,
                        "deployment": self.deployment,
                        "pod": state.name,
                    }
                    counters = PodCounters()
                    endpoint = _PodEndpoint(self._renderer(counters, labels))
                    pod = self.pods[state.name] = TwinPod(state, counters, endpoint)
                pod.state = state
                pod.perf = self._performance(state, shares[state.name])
            targets = [p.endpoint.target for p in self.pods.values()]
        if changed:
            self.publish_targets(targets)
            self.log(f"twin: {len(states)} ready pods: {_describe(states)}")

    def advance(self, seconds: float) -> None:
        with self._lock:
            for pod in self.pods.values():
                if pod.perf is not None:
                    pod.counters.advance(pod.perf, seconds)

    def _renderer(self, counters: PodCounters, labels: Mapping[str, str]) -> Callable[[], str]:
        def render() -> str:
            with self._lock:
                return counters.exposition(labels)

        return render

    def _performance(self, state: PodState, rate: float) -> PodPerformance | None:
        # Rates rounded to 3 significant digits so a wobbling demand reuses results.
        rounded = float(f"{rate:.3g}")
        key = (state.variant, state.instance_type, state.pool, state.max_batch,
               state.max_delay_ms, rounded)  # fmt: skip
        if key not in self._perf_cache:
            profile = self.truth.profile(state.variant, state.instance_type, state.pool)
            if profile is None:
                return None
            if len(self._perf_cache) > 4096:
                self._perf_cache.clear()
            self._perf_cache[key] = pod_performance(
                profile, rounded, state.max_batch, state.max_delay_ms,
                service_cv=self.truth.service_cv,
            )  # fmt: skip
        return self._perf_cache[key]

    def snapshot(self) -> list[tuple[PodState, PodPerformance | None]]:
        """Each pod and its current performance (for narration and tests)."""
        with self._lock:
            return [(p.state, p.perf) for p in self.pods.values()]


def _describe(states: Sequence[PodState]) -> str:
    groups: dict[str, int] = {}
    for s in states:
        key = f"{s.pool}/{s.variant}/B={s.max_batch}"
        groups[key] = groups.get(key, 0) + 1
    return ", ".join(f"{n} x {k}" for k, n in sorted(groups.items())) or "none"


# ----------------------------------------------------------------- cluster readers


def kubernetes_reader(
    kubeconfig: Path, namespace: str, deployment: str
) -> Callable[[], tuple[list[dict[str, Any]], dict[str, dict[str, str]]]]:
    """Reads the Deployment's pods and the nodes' labels with the kubernetes client
    (raw JSON, no per-call process: the twin polls every couple of seconds)."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    node_labels: dict[str, dict[str, str]] = {}

    def raw(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        resp = call(*args, _preload_content=False, _request_timeout=10, **kwargs)
        body: dict[str, Any] = json.loads(resp.data)
        return body

    def read() -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
        dep = raw(apps.read_namespaced_deployment, deployment, namespace)
        match = dep["spec"]["selector"].get("matchLabels", {})
        selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        pods = raw(core.list_namespaced_pod, namespace, label_selector=selector)["items"]
        if any(p.get("spec", {}).get("nodeName") not in node_labels for p in pods):
            for node in raw(core.list_node)["items"]:
                node_labels[node["metadata"]["name"]] = node["metadata"].get("labels", {})
        return pods, node_labels

    return read


@contextlib.contextmanager
def serving(
    *,
    kubeconfig: Path,
    prometheus: Prometheus,
    namespace: str,
    deployment: str,
    truth: GroundTruth,
    demand: Demand,
    log: Callable[[str], None] = lambda _: None,
) -> Iterator[TrafficTwin]:
    """A running twin of a Deployment whose pods Prometheus scrapes (one file-SD job),
    stopped and unscraped on exit."""
    job = f"servingopt-twin-{namespace}-{deployment}"
    twin = TrafficTwin(
        namespace=namespace,
        deployment=deployment,
        truth=truth,
        demand=demand,
        read_cluster=kubernetes_reader(kubeconfig, namespace, deployment),
        publish_targets=lambda targets: prometheus.add_static_targets(job, targets),
        log=log,
    ).start()
    try:
        yield twin
    finally:
        twin.stop()
        prometheus.remove_static_targets(job)


def load_spec(path: Path) -> ModelServingSpec:
    """The ModelServing whose declared profiles are the ground truth's starting point."""
    doc = yaml.safe_load(path.read_text())
    return ModelServingSpec.model_validate(doc["spec"])


# ---------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m servingopt.devcluster.twin``: run a twin until Ctrl-C / SIGTERM."""
    p = argparse.ArgumentParser(prog="python -m servingopt.devcluster.twin", description=__doc__)
    p.add_argument("--cluster", default="default", help="dev cluster name (with Prometheus)")
    p.add_argument("--state-root", type=Path, help="where cluster state dirs live")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--deployment", required=True)
    p.add_argument("-f", "--modelserving", type=Path, required=True, help="declared profiles")
    p.add_argument("--demand", default="steady:mean=800", help="trace generator spec")
    p.add_argument("--speedup", type=float, default=1.0, help="trace seconds per second")
    p.add_argument("--truth", default="gpu-t4=1.15", help="slowdown per pool/instance type")
    args = p.parse_args(argv)

    from servingopt.devcluster import DevCluster

    cluster = DevCluster.load(args.cluster, args.state_root)
    prom = cluster.prometheus
    if prom is None:
        print("twin: the cluster has no Prometheus (start it with --prometheus)", file=sys.stderr)
        return 2
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    with serving(
        kubeconfig=cluster.kubeconfig,
        prometheus=prom,
        namespace=args.namespace,
        deployment=args.deployment,
        truth=GroundTruth(load_spec(args.modelserving), parse_factors(args.truth)),
        demand=demand_curve(args.demand, args.speedup),
        log=lambda m: print(m, file=sys.stderr, flush=True),
    ):
        while not stopped.wait(1.0):
            pass
    return 0


def pods_summary(twin: TrafficTwin) -> Iterator[str]:
    """One line per pod: pool, variant, batch, rate and ground-truth p99."""
    for state, perf in twin.snapshot():
        rate = f"{perf.offered_rps:.0f} req/s" if perf else "-"
        p99 = f"p99 {perf.p99_ms:.1f} ms" if perf else "no profile"
        yield (
            f"{state.name} on {state.instance_type} ({state.pool}), {state.variant}, "
            f"maxBatch {state.max_batch}: {rate}, {p99}"
        )


if __name__ == "__main__":
    sys.exit(main())
