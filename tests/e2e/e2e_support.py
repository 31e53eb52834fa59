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
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

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


@dataclass
class PrometheusProxy:
    """Forwards to Prometheus, or fails on purpose: mode pass | down | empty | nan."""

    upstream: str
    mode: str = "pass"
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if proxy.mode == "down":
                    self.send_response(503)
                    self.end_headers()
                    return
                with urllib.request.urlopen(proxy.upstream + self.path, timeout=10) as resp:
                    body = json.loads(resp.read())
                data = body.get("data", {})
                if proxy.mode == "empty":
                    data["result"] = []
                elif proxy.mode == "nan":
                    for series in data.get("result", []):
                        if "value" in series:
                            series["value"][1] = "NaN"
                        for point in series.get("values", []):
                            point[1] = "NaN"
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = _serve(Handler)
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()


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
