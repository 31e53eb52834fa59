"""The local dev cluster: etcd, kube-apiserver, controller-manager, scheduler, kwok and,
on request, Prometheus and prometheus-adapter (the custom metrics API), all on loopback,
with fake node pools.

Its state dir (default ~/.cache/servingopt/clusters/<name>/) holds certificates,
kubeconfigs, logs, etcd data and state.json, so that `down`, `env` and `status` work from
another shell when the cluster was started detached.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from servingopt.devcluster import adapter as adapter_mod
from servingopt.devcluster import components as comp
from servingopt.devcluster import keda as keda_mod
from servingopt.devcluster import pools as pools_mod
from servingopt.devcluster.binaries import Binaries, find_binaries
from servingopt.devcluster.kubectl import Kubectl, wait_until, write_kubeconfig
from servingopt.devcluster.pki import Pki, load_pki, make_pki
from servingopt.devcluster.process import ProcessRecord, free_ports, is_alive, spawn, stop
from servingopt.devcluster.prometheus import Prometheus

DEV_NAMESPACE = "servingopt-dev"
DEV_USER = "servingopt-dev"
DEV_GROUP = "servingopt:developers"
ADAPTER = "prometheus-adapter"
TWIN = "traffic-twin"
STOP_ORDER = (
    TWIN,
    keda_mod.METRICS_SERVER,
    keda_mod.OPERATOR,
    ADAPTER,
    "prometheus",
    "kwok",
    "kube-scheduler",
    "kube-controller-manager",
    "kube-apiserver",
    "etcd",
)
READY_TIMEOUT = 90.0
START_ATTEMPTS = 3


class ClusterError(RuntimeError):
    pass


def state_root() -> Path:
    cache = os.environ.get("SERVINGOPT_CACHE") or str(Path.home() / ".cache" / "servingopt")
    return Path(cache) / "clusters"


def _log(msg: str) -> None:
    print(f"[dev-cluster {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class DevCluster:
    """One local cluster. `up()` starts it, `down()` stops it and deletes its state dir.

    Attached (detach=False) components die with the thread that called `up()`; call it
    from the main thread or one that outlives the cluster."""

    name: str = "default"
    root: Path = field(default_factory=state_root)
    bin_dir: Path | None = None
    pools_file: Path | None = None
    nodes_per_pool: int | None = None
    detach: bool = False
    log: Callable[[str], None] = _log
    records: dict[str, ProcessRecord] = field(default_factory=dict)
    ports: comp.Ports | None = None
    prometheus_port: int | None = None
    adapter_port: int | None = None
    keda_ports: dict[str, int] | None = None
    startup_seconds: float | None = None
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _binaries: Binaries | None = field(default=None, repr=False)

    # ---- paths -----------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self.root / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def developer_kubeconfig(self) -> Path:
        return self.directory / "kubeconfig-developer"

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def server(self) -> str:
        assert self.ports is not None, "cluster not started"
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def binaries(self) -> Binaries:
        if self._binaries is None:
            self._binaries = find_binaries(self.bin_dir)
        return self._binaries

    def kubectl(self, namespace: str | None = None) -> Kubectl:
        return Kubectl(self.binaries.kubectl, self.kubeconfig, namespace)

    def developer_kubectl(self, namespace: str | None = DEV_NAMESPACE) -> Kubectl:
        return Kubectl(self.binaries.kubectl, self.developer_kubeconfig, namespace)

    @property
    def prometheus(self) -> Prometheus | None:
        if self.prometheus_port is None or self.binaries.prometheus is None:
            return None
        return Prometheus(
            self.binaries.prometheus, self.directory / "prometheus", self.prometheus_port
        )

    # ---- lifecycle -------------------------------------------------------------------

    def up(self, *, with_prometheus: bool = False) -> DevCluster:
        """Starts every component and waits until the cluster schedules pods on kwok nodes."""
        self._refuse_if_running()
        started = time.monotonic()
        if not self.detach:
            _install_cleanup(self)
        for attempt in range(1, START_ATTEMPTS + 1):
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory.mkdir(parents=True)
            try:
                self._start_all(with_prometheus)
                break
            except ClusterError as e:
                self.down(remove=False)
                # Ports are picked free, then bound by the child: another process may win.
                if "address already in use" not in str(e) or attempt == START_ATTEMPTS:
                    raise
                self.log(f"a port was taken meanwhile; retrying ({e})")
            except BaseException:
                self.log("start failed; stopping what was started")
                self.down(remove=False)
                raise
        self.startup_seconds = round(time.monotonic() - started, 2)
        self.save()
        self.log(f"cluster {self.name!r} ready in {self.startup_seconds:.1f} s")
        return self

    def _start_all(self, with_prometheus: bool) -> None:
        bins = self.binaries
        pki = make_pki(self.directory / "pki", DEV_USER, DEV_GROUP)
        self.ports = comp.Ports.from_list(free_ports(6))
        self._start("etcd", comp.etcd_argv(bins, self.ports, self.directory / "etcd"))
        self._wait_http("etcd", f"http://127.0.0.1:{self.ports.etcd}/health", b'"health":"true"')
        self._start("kube-apiserver", comp.apiserver_argv(bins, self.ports, pki))
        self._write_kubeconfigs(pki)
        self._wait_apiserver(pki)
        self._start_controllers(bins, pki)
        self._bootstrap_objects()
        if with_prometheus:
            self.start_prometheus()
        self._wait_controllers()
        self._wait_nodes_ready()
        self._wait_service_account("default")

    def _start_controllers(self, bins: Binaries, pki: Pki) -> None:
        assert self.ports is not None
        kc = self.kubeconfig
        stages = Path(str(resources.files("servingopt.devcluster") / "kwok-stages.yaml"))
        self._start(
            "kube-controller-manager", comp.controller_manager_argv(bins, self.ports, pki, kc)
        )
        self._start("kube-scheduler", comp.scheduler_argv(bins, self.ports, kc))
        self._start("kwok", comp.kwok_argv(bins, self.ports, pki, kc, stages))

    def start_prometheus(self) -> Prometheus:
        """Starts Prometheus (once) and returns it; needs Debian's `prometheus` or
        $SERVINGOPT_PROMETHEUS."""
        running = self.records.get("prometheus")
        if self.prometheus is not None and running is not None and is_alive(running):
            return self.prometheus
        if self.binaries.prometheus is None:
            raise ClusterError("no prometheus binary: run hack/install-system-deps.sh")
        self.prometheus_port = free_ports(1)[0]
        prom = self.prometheus
        assert prom is not None
        self.records["prometheus"] = prom.start(detach=self.detach)
        prom.wait_ready()
        self.save()
        return prom

    def start_adapter(self, rules: dict[str, Any] | None = None) -> float:
        """Starts prometheus-adapter (once; Prometheus too if needed), registers it as the
        custom metrics API and waits until the API server serves it. ``rules`` is the
        adapter's configuration (default: `servingopt adapter-config`'s). Returns the
        seconds until the API answered."""
        from servingopt.metrics import adapter as rules_mod

        running = self.records.get(ADAPTER)
        if running is not None and is_alive(running):
            return 0.0
        binary = self.binaries.prometheus_adapter
        if binary is None:
            raise ClusterError("no prometheus-adapter binary: run hack/build-controlplane.sh")
        started = time.monotonic()
        prom = self.start_prometheus()
        config = self.directory / "adapter" / "config.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        rules = rules or rules_mod.adapter_config(rules_mod.served_metrics([]))
        config.write_text(json.dumps(rules, indent=2))  # JSON is YAML
        pki = load_pki(self.directory / "pki")
        self.adapter_port = free_ports(1)[0]
        argv = adapter_mod.adapter_argv(
            binary, self.adapter_port, pki, self.kubeconfig, prom.url, config
        )
        self._start(ADAPTER, argv)
        self._wait_component(ADAPTER)
        self.kubectl().apply(adapter_mod.registration(self.adapter_port, pki))
        self._wait_custom_metrics_api()
        took = time.monotonic() - started
        self.log(f"{ADAPTER} serving {adapter_mod.GROUP} in {took:.1f} s")
        return took

    def _wait_custom_metrics_api(self) -> None:
        kubectl = self.kubectl()
        path = f"/apis/{adapter_mod.GROUP}/{adapter_mod.VERSIONS[-1]}"

        def served() -> bool:
            self._check_alive(ADAPTER)
            return kubectl.run("get", "--raw", path, check=False).returncode == 0

        _wait_alive_aware(served, f"the API server to serve {path}")

    def start_keda(self) -> float:
        """Starts KEDA (once): its CRDs, its operator and its metrics API server, registered
        as the external metrics API; waits until the API server serves it. Returns the
        seconds that took."""
        names = (keda_mod.OPERATOR, keda_mod.METRICS_SERVER)
        if all(n in self.records and is_alive(self.records[n]) for n in names):
            return 0.0
        operator, server = self.binaries.keda_operator, self.binaries.keda_metrics_apiserver
        if operator is None or server is None:
            raise ClusterError("no KEDA binaries: run hack/build-controlplane.sh")
        started = time.monotonic()
        kubectl = self.kubectl()
        kubectl.run("apply", "--server-side", "-f", str(keda_mod.keda_crds_dir()))
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        kubectl.apply(keda_mod.namespace())
        certs = self.directory / "keda" / "certs"
        ca = keda_mod.make_certs(certs)
        metrics, probe, grpc, secure, server_metrics = free_ports(5)
        self.keda_ports = {"probe": probe, "secure": secure}
        self._start(
            keda_mod.OPERATOR,
            keda_mod.operator_argv(operator, self.kubeconfig, certs, (metrics, probe, grpc)),
        )
        self._wait_component(keda_mod.OPERATOR)
        argv = keda_mod.metrics_server_argv(
            server, self.kubeconfig, certs, secure, server_metrics, grpc
        )
        self._start(keda_mod.METRICS_SERVER, argv)
        self._wait_component(keda_mod.METRICS_SERVER)
        kubectl.apply(keda_mod.registration(secure, ca.cert))
        path = f"/apis/{keda_mod.GROUP}/{keda_mod.VERSION}"

        def served() -> bool:
            for name in names:
                self._check_alive(name)
            return kubectl.run("get", "--raw", path, check=False).returncode == 0

        _wait_alive_aware(served, f"the API server to serve {path}")
        took = time.monotonic() - started
        self.log(f"KEDA serving {keda_mod.GROUP} in {took:.1f} s")
        return took

    def start_twin(self, modelserving: Path, namespace: str = "default", demand: str = "") -> None:
        """Starts the traffic twin (once; Prometheus too) as a component of the cluster:
        it plays the data plane of the Deployment ``modelserving`` targets in
        ``namespace`` (from when it exists) and Prometheus scrapes its pods' metrics in the
        ``generic`` convention. ``demand``: a trace generator spec (default: the twin's)."""
        running = self.records.get(TWIN)
        if running is not None and is_alive(running):
            return
        self.start_prometheus()
        spec = yaml.safe_load(modelserving.read_text())
        deployment = spec["spec"]["targetRef"]["name"]
        argv = [
            sys.executable,
            "-m",
            "servingopt.devcluster.twin",
            f"--cluster={self.name}",
            f"--state-root={self.root}",
            f"--namespace={namespace}",
            f"--deployment={deployment}",
            f"--modelserving={modelserving.resolve()}",
        ]
        if demand:
            argv.append(f"--demand={demand}")
        self._start(TWIN, argv)
        time.sleep(1.0)
        self._check_alive(TWIN)
        self.log(f"traffic twin playing {namespace}/{deployment}")

    def down(self, *, remove: bool = True) -> None:
        """Stops every component (prometheus first, etcd last); removes the state dir."""
        for name in STOP_ORDER:
            rec = self.records.pop(name, None)
            if rec is not None:
                stop(rec, self._procs.pop(name, None))
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)
        elif self.directory.exists():
            self.save()

    def stop_component(self, name: str, *, kill: bool = False) -> None:
        """Stops one component (SIGTERM, or SIGKILL with ``kill``), keeping its record,
        ports and state (etcd data, certificates) so that `start_component` brings the
        same process back: an outage of one piece, as a test wants it."""
        rec = self.records[name]
        proc = self._procs.get(name)
        if kill and is_alive(rec):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(rec.pid, signal.SIGKILL)
        stop(rec, proc)
        self.log(f"{name} stopped (pid {rec.pid})")

    def start_component(self, name: str) -> float:
        """Starts a stopped component again with the argv (hence the ports and data dir)
        it had, waits until it answers its health check, and returns the seconds that took.
        Its log file is appended to."""
        rec = self.records[name]
        if is_alive(rec):
            raise ClusterError(f"{name} is still running (pid {rec.pid})")
        started = time.monotonic()
        proc, new = spawn(name, rec.argv, Path(rec.log), detach=self.detach)
        self._procs[name] = proc
        self.records[name] = new
        self.save()
        self._wait_component(name)
        took = time.monotonic() - started
        self.log(f"{name} started again (pid {new.pid}) and ready in {took:.1f} s")
        return took

    def _wait_component(self, name: str) -> None:
        """Waits for one component's own health endpoint."""
        assert self.ports is not None
        p = self.ports
        if name == "etcd":
            self._wait_http(name, f"http://127.0.0.1:{p.etcd}/health", b'"health":"true"')
        elif name == "kube-apiserver":
            self._wait_apiserver(load_pki(self.directory / "pki"))
        elif name == "prometheus":
            assert self.prometheus is not None
            self.prometheus.wait_ready()
        elif name == "kwok":
            self._wait_http(name, f"http://127.0.0.1:{p.kwok}/healthz", b"ok")
        elif name in (keda_mod.OPERATOR, keda_mod.METRICS_SERVER):
            assert self.keda_ports is not None
            if name == keda_mod.OPERATOR:
                url = f"http://127.0.0.1:{self.keda_ports['probe']}/healthz"
                self._wait_http(name, url, b"ok")
            else:
                ca = ssl.create_default_context(cafile=str(self.directory / "keda/certs/ca.crt"))
                url = f"https://127.0.0.1:{self.keda_ports['secure']}/healthz"
                self._wait_http(name, url, b"ok", ca)
        elif name == ADAPTER:
            ca = ssl.create_default_context(cafile=str(load_pki(self.directory / "pki").ca.cert))
            self._wait_http(name, f"https://127.0.0.1:{self.adapter_port}/healthz", b"ok", ca)
        else:
            port = {"kube-controller-manager": p.controller_manager, "kube-scheduler": p.scheduler}
            insecure = ssl.create_default_context()
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE  # self-signed serving certs on loopback
            self._wait_http(name, f"https://127.0.0.1:{port[name]}/healthz", b"ok", insecure)

    def _refuse_if_running(self) -> None:
        if not self.state_file.exists():
            return
        old = DevCluster.load(self.name, self.root)
        if any(is_alive(r) for r in old.records.values()):
            raise ClusterError(
                f"cluster {self.name!r} is already running; stop it with "
                f"`servingopt dev-cluster down --name {self.name}`"
            )

    # ---- starting and waiting ------------------------------------------------------------

    def _start(self, name: str, argv: list[str]) -> None:
        log = self.directory / "logs" / f"{name}.log"
        proc, rec = spawn(name, argv, log, detach=self.detach)
        self._procs[name] = proc
        self.records[name] = rec
        self.save()

    def _check_alive(self, name: str) -> None:
        rec = self.records[name]
        if not is_alive(rec):
            tail = _tail(Path(rec.log))
            raise ClusterError(f"{name} exited during start-up; last log lines:\n{tail}")

    def _wait_http(
        self, name: str, url: str, expect: bytes, context: ssl.SSLContext | None = None
    ) -> None:
        def ready() -> bool:
            self._check_alive(name)
            return expect in _fetch(url, context)

        _wait_alive_aware(ready, f"{name} at {url}")

    def _wait_apiserver(self, pki: Pki) -> None:
        ctx = ssl.create_default_context(cafile=str(pki.ca.cert))
        ctx.load_cert_chain(str(pki.admin.cert), str(pki.admin.key))
        self._wait_http("kube-apiserver", f"{self.server}/readyz", b"ok", ctx)

    def _wait_controllers(self) -> None:
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            self._wait_component(name)

    def _write_kubeconfigs(self, pki: Pki) -> None:
        cluster = f"servingopt-{self.name}"
        ca = pki.ca.cert
        write_kubeconfig(
            self.kubeconfig,
            cluster=cluster,
            server=self.server,
            ca=ca,
            user="servingopt-admin",
            cert=pki.admin.cert,
            key=pki.admin.key,
        )
        write_kubeconfig(
            self.developer_kubeconfig,
            cluster=cluster,
            server=self.server,
            ca=ca,
            user=DEV_USER,
            cert=pki.developer.cert,
            key=pki.developer.key,
            namespace=DEV_NAMESPACE,
        )

    def _bootstrap_objects(self) -> None:
        pool_set = pools_mod.load_pools(self.pools_file, self.nodes_per_pool)
        self.kubectl().create([*developer_rbac(), *pools_mod.node_manifests(pool_set)])

    def _wait_nodes_ready(self) -> None:
        def ready() -> bool:
            for name in ("kwok", "kube-controller-manager"):
                self._check_alive(name)
            nodes = self.kubectl().json("get", "nodes")["items"]
            return bool(nodes) and all(_node_schedulable(n) for n in nodes)

        _wait_alive_aware(ready, "kwok nodes to be Ready")

    def _wait_service_account(self, namespace: str) -> None:
        kubectl = self.kubectl(namespace)
        _wait_alive_aware(
            lambda: kubectl.run("get", "serviceaccount", "default", check=False).returncode == 0,
            f"the default service account in {namespace}",
        )

    # ---- state ---------------------------------------------------------------------------

    def save(self) -> None:
        state = {
            "name": self.name,
            "binDir": str(self.binaries.bin_dir),
            "detached": self.detach,
            "ports": self.ports.__dict__ if self.ports else None,
            "prometheusPort": self.prometheus_port,
            "adapterPort": self.adapter_port,
            "kedaPorts": self.keda_ports,
            "startupSeconds": self.startup_seconds,
            "processes": {k: r.to_json() for k, r in self.records.items()},
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.rename(self.state_file)

    @classmethod
    def load(cls, name: str = "default", root: Path | None = None) -> DevCluster:
        """The cluster recorded in `root/name/state.json` (started by another process)."""
        root = root or state_root()
        path = root / name / "state.json"
        if not path.exists():
            raise ClusterError(f"no dev cluster named {name!r} (no {path})")
        raw = json.loads(path.read_text())
        cluster = cls(
            name=name, root=root, bin_dir=Path(raw["binDir"]), detach=bool(raw["detached"])
        )
        cluster.ports = comp.Ports(**raw["ports"]) if raw["ports"] else None
        cluster.prometheus_port = raw.get("prometheusPort")
        cluster.adapter_port = raw.get("adapterPort")
        cluster.keda_ports = raw.get("kedaPorts")
        cluster.startup_seconds = raw.get("startupSeconds")
        cluster.records = {k: ProcessRecord.from_json(v) for k, v in raw["processes"].items()}
        return cluster

    def status(self) -> dict[str, Any]:
        """Per component: pid, alive, current and peak resident memory (MiB)."""
        procs: dict[str, dict[str, Any]] = {}
        total_rss = total_peak = 0.0
        for name, rec in self.records.items():
            rss, peak = _memory_mib(rec.pid) if is_alive(rec) else (0.0, 0.0)
            procs[name] = {
                "pid": rec.pid,
                "alive": is_alive(rec),
                "rssMiB": rss,
                "peakRssMiB": peak,
                "log": rec.log,
            }
            total_rss += rss
            total_peak += peak
        return {
            "name": self.name,
            "server": self.server if self.ports else None,
            "kubeconfig": str(self.kubeconfig),
            "developerKubeconfig": str(self.developer_kubeconfig),
            "prometheus": self.prometheus.url if self.prometheus else None,
            "startupSeconds": self.startup_seconds,
            "components": procs,
            "totalRssMiB": round(total_rss, 1),
            "totalPeakRssMiB": round(total_peak, 1),
        }

    def env(self) -> dict[str, str]:
        out = {"KUBECONFIG": str(self.kubeconfig)}
        if self.prometheus:
            out["SERVINGOPT_PROMETHEUS_URL"] = self.prometheus.url
        return out

    def tail_logs(self, lines: int = 20) -> str:
        return "\n".join(f"--- {n}\n{_tail(Path(r.log), lines)}" for n, r in self.records.items())


def prune_stale(root: Path | None = None, prefix: str = "") -> list[str]:
    """Deletes state dirs (names starting with `prefix`) whose processes are all gone,
    e.g. left by a launcher that was SIGKILLed. Returns the names removed."""
    root = root or state_root()
    removed = []
    for state in sorted(root.glob(f"{prefix}*/state.json")):
        try:
            cluster = DevCluster.load(state.parent.name, root)
        except (ValueError, KeyError, OSError):
            continue
        if not any(is_alive(r) for r in cluster.records.values()):
            shutil.rmtree(state.parent, ignore_errors=True)
            removed.append(cluster.name)
    return removed


def developer_rbac() -> list[dict[str, Any]]:
    """A namespace where the non-admin developer user may read and edit workloads and
    ModelServings, and nothing else (no secrets, no deletes, no other namespace)."""
    verbs = ["get", "list", "watch", "create", "update", "patch"]
    rules = [
        {
            "apiGroups": [""],
            "resources": ["pods", "services", "configmaps", "events"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": verbs},
        {"apiGroups": ["servingopt.io"], "resources": ["modelservings"], "verbs": verbs},
        {"apiGroups": ["servingopt.io"], "resources": ["modelservings/status"], "verbs": ["get"]},
    ]
    meta = {"name": "servingopt-developer", "namespace": DEV_NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEV_NAMESPACE}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": meta["name"],
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEV_USER}
            ],
        },
    ]


# ---- helpers ---------------------------------------------------------------------------


def _wait_alive_aware(check: Callable[[], bool], what: str) -> None:
    try:
        wait_until(check, READY_TIMEOUT, what)
    except TimeoutError as e:
        # A ClusterError (a component died) is the real story; surface it directly.
        if isinstance(e.__cause__, ClusterError):
            raise e.__cause__ from None
        raise


def _fetch(url: str, context: ssl.SSLContext | None) -> bytes:
    with urllib.request.urlopen(url, timeout=2, context=context) as resp:
        body: bytes = resp.read()
        return body


def _node_schedulable(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    taints = {t["key"] for t in node.get("spec", {}).get("taints", [])}
    return ready and not taints & {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MiB; VmHWM is the peak resident set."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values["VmRSS"], values["VmHWM"]


def _install_cleanup(cluster: DevCluster) -> None:
    """Attached clusters die with their launcher: at exit, and on SIGTERM/SIGHUP (turned
    into SystemExit so that finally blocks and pytest finalizers run). Ctrl-C already
    raises KeyboardInterrupt. PR_SET_PDEATHSIG covers a SIGKILLed launcher."""
    atexit.register(_stop_at_exit, cluster)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _exit_on_signal)


def _stop_at_exit(cluster: DevCluster) -> None:
    # Keep the state dir (logs): whoever owns the cluster decides when to delete it.
    if cluster.records:
        cluster.down(remove=False)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
