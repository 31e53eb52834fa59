"""Helpers of the end-to-end tests: a metrics exporter, a faulty Prometheus proxy, and
the operator as a subprocess."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from servingopt.devcluster import Kubectl
from servingopt.kube.manifests import spot_deployment_name
from servingopt.metrics.source import SampleRequest
from servingopt.values import MetricsSample

ROOT = Path(__file__).resolve().parents[2]
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Exporter:
    """Serves the ``generic`` preset's series of one workload at a constant rate.

    Counters grow with wall time, so Prometheus' rate() is exactly ``rps``; every
    request falls in the first latency bucket at or above ``p99_ms``. Without
    ``p99_ms`` no latency is exported: nothing in the cluster serves for real, and a
    made-up latency would teach the planner wrong service times.
    """

    labels: dict[str, str]
    rps: float = 1500.0
    p99_ms: float | None = None  # None: no latency histogram (nothing to learn from)
    batch: float = 4.0
    queue_ms: float = 2.0
    started: float = field(default_factory=time.time)
    server: ThreadingHTTPServer | None = None

    def render(self) -> str:
        n = self.rps * (time.time() - self.started)
        sel = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        lines = [
            f'serving_requests_total{{{sel},status="ok"}} {n:.3f}',
            f'serving_requests_total{{{sel},status="error"}} 0',
        ]
        if self.p99_ms is not None:
            for le in LATENCY_BUCKETS:
                count = n if le * 1000 >= self.p99_ms else 0.0
                lines.append(
                    f'serving_request_duration_seconds_bucket{{{sel},le="{le}"}} {count:.3f}'
                )
            lines.append(f'serving_request_duration_seconds_bucket{{{sel},le="+Inf"}} {n:.3f}')
            lines.append(f"serving_request_duration_seconds_count{{{sel}}} {n:.3f}")
        lines.append(f"serving_batch_size_sum{{{sel}}} {n:.3f}")
        lines.append(f"serving_batch_size_count{{{sel}}} {n / self.batch:.3f}")
        lines.append(f"serving_queue_duration_seconds_sum{{{sel}}} {n * self.queue_ms / 1000:.6f}")
        lines.append(f"serving_queue_duration_seconds_count{{{sel}}} {n:.3f}")
        return "\n".join(lines) + "\n"

    def start(self) -> str:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = _serve(Handler)
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()


# What the ``echo`` mode puts in its error body; it must never show up anywhere.
ECHO_MARKER = "servingopt-e2e-echo-marker-7f3c"
HANG_LIMIT_S = 120.0  # a hung answer is dropped after this, or when the mode changes
SHIFT_S = 3600.0  # how far back ``stale`` moves the evaluation time


def huge_answer(size: int = 30 * 1024 * 1024) -> bytes:
    """A valid Prometheus answer of about ``size`` bytes: one vector of many series."""
    line = '{"metric":{"pod":"pod-%07d"},"value":[1800000000,"1"]},'
    count = size // len(line % 0)
    rows = "".join(line % i for i in range(count))
    tail = '{"metric":{},"value":[1800000000,"1"]}'
    head = '{"status":"success","data":{"resultType":"vector","result":['
    return f"{head}{rows}{tail}]}}}}".encode()


def shifted(path: str, seconds: float) -> str:
    """``path`` with its ``time``, ``start`` and ``end`` parameters moved by ``seconds``
    (``time`` added when absent: Prometheus would use its own clock)."""
    url = urllib.parse.urlsplit(path)
    params = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
    if url.path.endswith("/query") and not any(k == "time" for k, _ in params):
        params.append(("time", f"{time.time():.3f}"))
    moved = [
        (k, f"{float(v) + seconds:.3f}" if k in ("time", "start", "end") else v) for k, v in params
    ]
    return urllib.parse.urlunsplit(url._replace(query=urllib.parse.urlencode(moved)))


@dataclass
class PrometheusProxy:
    """Forwards to Prometheus, or fails on purpose. Modes:

    - ``pass``: forwards; ``down``: 503; ``empty``: no series; ``nan``: every value NaN;
    - ``hang``: accepts the connection and never answers (until the mode changes);
    - ``huge``: a valid JSON answer of about 30 MB, without Content-Length;
    - ``stale``: forwards with ``time``/``start``/``end`` moved back by an hour, as a
      lagging proxy or remote store would answer;
    - ``echo``: HTTP 400 with a JSON error body carrying :data:`ECHO_MARKER`.
    """

    upstream: str
    mode: str = "pass"
    server: ThreadingHTTPServer | None = None
    requests: int = 0
    _huge: bytes = b""

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def huge_body(self) -> bytes:
        if not self._huge:
            self._huge = huge_answer()
        return self._huge

    def start(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.requests += 1
                mode = proxy.mode
                try:
                    if mode in FAULTS:
                        FAULTS[mode](proxy, self)
                    else:
                        self.forward(mode)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a cap, a deadline): expected in these modes

            def forward(self, mode: str) -> None:
                path = shifted(self.path, -SHIFT_S) if mode == "stale" else self.path
                with urllib.request.urlopen(proxy.upstream + path, timeout=10) as resp:
                    body = json.loads(resp.read())
                data = body.get("data", {})
                if mode == "empty":
                    data["result"] = []
                elif mode == "nan":
                    for series in data.get("result", []):
                        if "value" in series:
                            series["value"][1] = "NaN"
                        for point in series.get("values", []):
                            point[1] = "NaN"
                self.send(200, json.dumps(body).encode(), length=False)

            def send(self, status: int, raw: bytes, length: bool = True) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if length:
                    self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = _serve(Handler)
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()


def _down(_: PrometheusProxy, handler: Any) -> None:
    handler.send_response(503)
    handler.end_headers()


def _hang(proxy: PrometheusProxy, _: Any) -> None:
    until = time.monotonic() + HANG_LIMIT_S
    while proxy.mode == "hang" and time.monotonic() < until:
        time.sleep(0.05)  # then close without a byte of an answer


def _huge(proxy: PrometheusProxy, handler: Any) -> None:
    # HTTP/1.0 without Content-Length: the body ends when the connection does, so the
    # client cannot refuse it up front and has to count what it reads.
    handler.send(200, proxy.huge_body(), length=False)


def _echo(_: PrometheusProxy, handler: Any) -> None:
    body = {"status": "error", "errorType": ECHO_MARKER, "error": f"parse error: {ECHO_MARKER}"}
    handler.send(400, json.dumps(body).encode())


FAULTS = {"down": _down, "hang": _hang, "huge": _huge, "echo": _echo}


@dataclass
class Operator:
    """``servingopt run`` as a subprocess, with its metrics endpoint on loopback."""

    kubeconfig: Path
    prometheus_url: str
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    namespaces: tuple[str, ...] = ()  # -n globs; empty: all namespaces
    extra_args: tuple[str, ...] = ()  # appended last (a repeated flag overrides the above)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            str(Path(sys.executable).parent / "servingopt"),
            "run",
            f"--kubeconfig={self.kubeconfig}",
            f"--prometheus-url={self.prometheus_url}",
            "--liveness=",
            f"--metrics-bind=127.0.0.1:{self.metrics_port}",
            "--verbose",
            *(f"--namespace={glob}" for glob in self.namespaces),
            *self.extra_args,
        ]
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples matching ``labels`` (0 when absent)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
            ) as r:
                text = r.read().decode()
        except (urllib.error.URLError, OSError):
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def pods_by_node_label(
    kubectl: Kubectl, deployment: str, label: str, missing: str
) -> dict[str, int]:
    """Live pods of a Deployment counted by their node's ``label`` (``missing`` on a node
    without it, 'Pending' for pods not Running)."""
    values = {
        n["metadata"]["name"]: n["metadata"]["labels"].get(label, missing)
        for n in kubectl.json("get", "nodes")["items"]
    }
    out: dict[str, int] = {}
    for pod in kubectl.json("get", "pods", "-l", f"app.kubernetes.io/name={deployment}")["items"]:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        running = pod["status"].get("phase") == "Running"
        where = values.get(pod["spec"].get("nodeName", ""), missing) if running else "Pending"
        out[where] = out.get(where, 0) + 1
    return out


def workload_replicas(kubectl: Kubectl, deployment: str) -> int:
    """Replicas the autoscaler set: the Deployment's, plus its spot copy's when the plan
    is a spot mix (the autoscaler then scales the CapacityMix that splits them)."""
    names = {deployment, spot_deployment_name(deployment)}
    return sum(
        int(d["spec"].get("replicas") or 0)
        for d in kubectl.json("get", "deployments")["items"]
        if d["metadata"]["name"] in names
    )


def service_account_kubeconfig(admin: Path, token: str, target: Path) -> Path:
    config = yaml.safe_load(admin.read_text())
    cluster = config["clusters"][0]
    target.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "servingopt", "user": {"token": token}}],
                "contexts": [
                    {"name": "sa", "context": {"cluster": cluster["name"], "user": "servingopt"}}
                ],
                "current-context": "sa",
            }
        )
    )
    return target


def shipped_rbac(namespace: str) -> list[dict[str, Any]]:
    """The shipped RBAC, bound to a service account of ``namespace``: the leader-election
    Role and its binding moved to that namespace, the cluster-wide binding renamed."""
    docs = list(yaml.safe_load_all((ROOT / "deploy/operator/rbac.yaml").read_text()))
    for doc in docs:
        if doc["kind"] in ("Role", "RoleBinding"):
            doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "ClusterRoleBinding":
            doc["metadata"]["name"] = f"servingopt-{namespace}"
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return docs


class Demand:
    """The twin's total demand, set by the test."""

    def __init__(self, rps: float) -> None:
        self.rps = rps

    def __call__(self, _: float) -> float:
        return self.rps


def load(path: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / path).read_text())
    return doc


def workload() -> dict[str, Any]:
    return load("samples/workloads/resnet50-classifier.yaml")


def modelserving(policy: str, mode: str = "Auto") -> dict[str, Any]:
    doc = copy.deepcopy(load("samples/modelservings/resnet50-classifier.yaml"))
    spec = doc["spec"]
    spec["mode"] = mode
    spec["policyRef"] = {"name": policy}
    spec["metrics"] = {"preset": "generic", "windowSeconds": 30}
    return doc


def gitops_modelserving(policy: str, mode: str | None = "Auto") -> dict[str, Any]:
    """The sample ModelServing with variants chosen by env only: the image is Git's.
    ``mode`` None leaves ``spec.mode`` unset (the policy's ``defaultMode``)."""
    doc = modelserving(policy)
    for variant in doc["spec"]["variants"]:
        variant.pop("image", None)
    if mode is None:
        del doc["spec"]["mode"]
    else:
        doc["spec"]["mode"] = mode
    return doc


class ScriptedSource:
    """1500 req/s for the last hour; p99 set by the test."""

    def __init__(self, now: float) -> None:
        self.history = tuple((now - 60 * i, 1500.0) for i in range(60, -1, -1))
        self.p99_ms = 10.0

    async def sample(self, _: SampleRequest) -> MetricsSample:
        return MetricsSample(
            request_rate=1500.0,
            p99_latency_ms=self.p99_ms,
            replicas=3,
            demand_history=self.history,
        )
