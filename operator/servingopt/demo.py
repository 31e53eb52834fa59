"""``servingopt demo``: the whole loop on an embedded local cluster, narrated.

It starts the dev cluster (real control plane, kwok GPU/CPU pools, real Prometheus),
installs the CRDs, the default catalog and policy, deploys the ResNet-50 sample on the
most expensive pool (3 x p3.2xlarge, fp32, no batching), starts the traffic twin (the
data plane: per-pod metrics from a ground-truth model that is slower than declared on
T4s) and the operator (``servingopt run`` in a subprocess), applies the ModelServing
in Auto mode, and waits until the operator has really moved the workload: the
Deployment targets a cheaper pool, its pods run there, the owned HPA exists, the status
reports the saving, and the p99 Prometheus measures on the new pods meets the SLO.

Exit 0 only when all of that was observed; 1 (with what was missing) otherwise. The
cluster is always stopped at the end, also on Ctrl-C or failure, unless ``--keep``.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NAMESPACE = "default"
DEPLOY = "resnet50-classifier"
START_POOL = "gpu-v100"
POLICY = "demo"
TWIN_JOB = "servingopt-twin"
MS_FILE = "samples/modelservings/resnet50-classifier.yaml"
WORKLOAD_FILE = "samples/workloads/resnet50-classifier.yaml"
CATALOG_FILE = "deploy/catalog/default-instancecatalog.yaml"
POLICY_FILE = "deploy/policy/default-servingpolicy.yaml"
# What the resnet50 sample's variants set: Triton images of one repository, a precision
# env var, and Triton's batching env names.
SAMPLE_WORKLOAD_RULES = {
    "allowedImages": ["registry.example.com/ml/resnet50-triton:*"],
    "allowedEnvNames": ["MODEL_PRECISION", "TRITON_MAX_BATCH_SIZE", "TRITON_MAX_QUEUE_DELAY_*"],
}
POOL_LABEL = "servingopt.io/pool"
SETTLE_S = 15  # seconds of new-pod traffic behind the measured p99 (its rate window)
WINDOW_S = 30  # the ModelServing's metrics window (the CRD's minimum)


class DemoError(RuntimeError):
    pass


# ------------------------------------------------------------------------ narration


@dataclass
class Narrator:
    """Prints plain progress lines with the seconds since the demo started."""

    started: float = field(default_factory=time.monotonic)
    out: Callable[[str], None] = lambda line: print(line, flush=True)

    def __call__(self, message: str) -> None:
        self.out(f"[{time.monotonic() - self.started:6.1f}s] {message}")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def find_root(explicit: Path | None) -> Path:
    candidates = [explicit] if explicit else [Path.cwd(), Path(__file__).resolve().parents[2]]
    for root in candidates:
        if root is not None and (root / MS_FILE).exists() and (root / "crds").is_dir():
            return root
    raise DemoError(f"cannot find {MS_FILE} and crds/; run from the repository or pass --root")


# ---------------------------------------------------------------- manifests (pure)


def load(root: Path, path: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((root / path).read_text())
    return doc


def demo_policy(default_policy: dict[str, Any], replan_seconds: int) -> dict[str, Any]:
    """The default policy, re-planning every ``replan_seconds`` (a demo cannot wait 5 min)."""
    doc = copy.deepcopy(default_policy)
    doc["metadata"] = {"name": POLICY}
    spec = doc["spec"]
    spec["replanIntervalSeconds"] = replan_seconds
    # Governs the demo namespace only, and lets the sample's variants select themselves.
    spec["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}
    spec["priority"] = 10
    spec["workload"] = SAMPLE_WORKLOAD_RULES
    return doc


def demo_modelserving(sample: dict[str, Any]) -> dict[str, Any]:
    """The sample, Auto mode, reading the twin's ``generic`` series over 30 s windows."""
    doc = copy.deepcopy(sample)
    doc["metadata"] = {"name": sample["metadata"]["name"], "namespace": NAMESPACE}
    spec = doc["spec"]
    spec["mode"] = "Auto"
    spec["policyRef"] = {"name": POLICY}
    spec["metrics"] = {"preset": "generic", "windowSeconds": WINDOW_S}
    return doc


# ---------------------------------------------------------------- what "closed" means


@dataclass(frozen=True)
class LoopState:
    """One look at the cluster: what the loop has achieved so far."""

    applied_pool: str | None = None
    template_pool: str | None = None
    pods_by_pool: dict[str, int] = field(default_factory=dict)
    terminating: int = 0
    rollout_done: bool = False
    hpa: str | None = None
    hpa_in_bounds: bool = False
    hpa_active: bool = False
    savings_percent: float | None = None
    projected_hourly: float | None = None
    current_hourly: float | None = None
    baseline_hourly: float | None = None
    new_pods: tuple[str, ...] = ()

    @property
    def moved(self) -> bool:
        return self.applied_pool is not None and self.applied_pool != START_POOL

    @property
    def template_follows(self) -> bool:
        return self.moved and self.template_pool == self.applied_pool

    @property
    def running_on_new_pool(self) -> bool:
        return (
            self.template_follows
            and self.rollout_done
            and set(self.pods_by_pool) == {self.applied_pool}
            and self.terminating == 0
        )

    @property
    def saving(self) -> bool:
        return (
            self.projected_hourly is not None
            and self.baseline_hourly is not None
            and self.projected_hourly < self.baseline_hourly
        )

    @property
    def observed(self) -> bool:
        """The operator's own re-plan saw the new configuration running (current cost)."""
        return (
            self.current_hourly is not None
            and self.baseline_hourly is not None
            and self.current_hourly < self.baseline_hourly
        )

    def missing(self, *, observed: bool = True) -> list[str]:
        """What the loop still lacks; ``observed=False`` skips the operator's re-read."""
        checks = [
            (self.moved, f"the operator applied a pool other than {START_POOL}"),
            (self.template_follows, "the Deployment's pod template targets that pool"),
            (self.running_on_new_pool, "every pod Running on that pool, rollout complete"),
            (self.hpa is not None, "the HPA owned by the ModelServing"),
            (self.hpa_in_bounds, "the Deployment's replicas within the HPA's bounds"),
            (self.hpa_active, "the HPA reading its metric through the custom metrics API"),
            (self.saving, "status.cost showing projected $/h below the baseline"),
        ]
        if observed:
            checks.append((self.observed, "a re-plan reporting the current $/h below the baseline"))
        return [what for ok, what in checks if not ok]


def loop_state(items: list[dict[str, Any]], nodes: dict[str, str]) -> LoopState:
    """Reads the ModelServing, Deployment, HPAs and pods (``kubectl get -o json`` items)."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_kind.setdefault(item["kind"], []).append(item)
    ms = next(iter(by_kind.get("ModelServing", [])), {})
    dep = next(iter(by_kind.get("Deployment", [])), {})
    status = ms.get("status") or {}
    applied, cost = status.get("applied") or {}, status.get("cost") or {}
    template = dep.get("spec", {}).get("template", {}).get("spec", {})
    dstat, dspec = dep.get("status", {}), dep.get("spec", {})
    want = dspec.get("replicas")
    rollout_done = bool(dep) and (
        dstat.get("observedGeneration") == dep["metadata"].get("generation")
        and dstat.get("updatedReplicas") == want
        and dstat.get("readyReplicas") == want
        and dstat.get("replicas") == want
    )
    pods_by_pool: dict[str, int] = {}
    terminating = 0
    new_pods = []
    for pod in by_kind.get("Pod", []):
        if pod["metadata"].get("deletionTimestamp"):
            terminating += 1
            continue
        if pod.get("status", {}).get("phase") != "Running":
            pool = "Pending"
        else:
            pool = nodes.get(pod["spec"].get("nodeName", ""), "?")
        pods_by_pool[pool] = pods_by_pool.get(pool, 0) + 1
        if pool == applied.get("pool"):
            new_pods.append(pod["metadata"]["name"])
    uid = ms.get("metadata", {}).get("uid")
    owned = [
        h
        for h in by_kind.get("HorizontalPodAutoscaler", [])
        if uid and any(o.get("uid") == uid for o in h["metadata"].get("ownerReferences", []))
    ]
    hpa = owned[0]["metadata"]["name"] if owned else None
    bounds = owned[0]["spec"] if owned else {}
    hpa_in_bounds = bool(owned) and (
        bounds.get("minReplicas", 1) <= (want or 0) <= bounds.get("maxReplicas", 0)
    )
    hpa_conditions = owned[0].get("status", {}).get("conditions", []) if owned else []
    hpa_active = any(
        c.get("type") == "ScalingActive" and c.get("status") == "True" for c in hpa_conditions
    )
    return LoopState(
        applied_pool=applied.get("pool"),
        template_pool=(template.get("nodeSelector") or {}).get(POOL_LABEL),
        pods_by_pool=pods_by_pool,
        terminating=terminating,
        rollout_done=rollout_done,
        hpa=hpa,
        hpa_in_bounds=hpa_in_bounds,
        hpa_active=hpa_active,
        savings_percent=cost.get("savingsPercent"),
        projected_hourly=cost.get("projectedHourly"),
        current_hourly=cost.get("currentHourly"),
        baseline_hourly=cost.get("baselineHourly"),
        new_pods=tuple(sorted(new_pods)),
    )


def pods_line(state: LoopState) -> str:
    parts = [f"{n} on {pool}" for pool, n in sorted(state.pods_by_pool.items())]
    if state.terminating:
        parts.append(f"{state.terminating} terminating")
    return ", ".join(parts) or "none"


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:.2f}/h"


# ------------------------------------------------------------------------- the run


@dataclass
class Demo:
    args: argparse.Namespace
    say: Narrator
    root: Path
    cluster: Any = None
    kubectl: Any = None
    prometheus: Any = None
    twin: Any = None
    operator: Any = None  # (Popen, ProcessRecord)
    operator_log: Path | None = None
    twin_started: float = 0.0

    # -- steps

    def start_cluster(self) -> None:
        from servingopt.devcluster import ClusterError, DevCluster
        from servingopt.devcluster.process import is_alive

        try:
            old = DevCluster.load(self.args.name)
            if any(is_alive(r) for r in old.records.values()):
                self.say(f"stopping the demo cluster {self.args.name!r} left by an earlier --keep")
                old.down()
        except ClusterError:
            pass
        self.say(
            f"starting dev cluster {self.args.name!r}: etcd, kube-apiserver, "
            "controller-manager, scheduler, kwok node pools, Prometheus, prometheus-adapter"
        )
        self.cluster = DevCluster(
            name=self.args.name, bin_dir=self.args.bin_dir, detach=self.args.keep, log=self._quiet
        )
        self.cluster.up(with_prometheus=True)
        self.cluster.start_adapter()  # the custom metrics API the HPA scales through
        self.kubectl = self.cluster.kubectl(NAMESPACE)
        self.prometheus = self.cluster.prometheus
        nodes = self.kubectl.json("get", "nodes")["items"]
        self.say(
            f"cluster up in {self.cluster.startup_seconds:.1f} s: {len(nodes)} kwok nodes, "
            f"Prometheus at {self.prometheus.url}, custom metrics API from prometheus-adapter"
        )

    def _quiet(self, message: str) -> None:
        pass  # the dev cluster's own progress lines; the demo narrates instead

    def install(self) -> None:
        k = self.kubectl
        self.say("installing the CRDs (crds/), the default InstanceCatalog and ServingPolicy")
        k.run("apply", "--server-side", "-f", str(self.root / "crds"))
        k.run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        k.run("apply", "-f", str(self.root / CATALOG_FILE))
        default_policy = load(self.root, POLICY_FILE)
        k.apply([default_policy, demo_policy(default_policy, self.args.replan_seconds)])
        self.say(
            f"ServingPolicy {POLICY!r} = the default one, re-planning every "
            f"{self.args.replan_seconds} s"
        )

    def deploy_workload(self) -> None:
        self.say(f"deploying {DEPLOY}: 3 replicas, fp32, no batching, on {START_POOL} (V100)")
        self.kubectl.apply(load(self.root, WORKLOAD_FILE))
        self._wait(
            lambda: self._state().pods_by_pool == {START_POOL: 3}, 90, f"3 pods on {START_POOL}"
        )
        self.say(f"3 pods Running on {START_POOL} kwok nodes (p3.2xlarge)")

    def start_twin(self) -> None:
        from servingopt.devcluster.twin import (
            GroundTruth,
            TrafficTwin,
            demand_curve,
            kubernetes_reader,
            load_spec,
            parse_factors,
        )

        truth = parse_factors(self.args.truth)
        started = time.monotonic()
        self.twin = TrafficTwin(
            namespace=NAMESPACE,
            deployment=DEPLOY,
            truth=GroundTruth(load_spec(self.root / MS_FILE), truth),
            demand=demand_curve(self.args.demand, self.args.speedup),
            read_cluster=kubernetes_reader(self.cluster.kubeconfig, NAMESPACE, DEPLOY),
            publish_targets=lambda targets: self.prometheus.add_static_targets(TWIN_JOB, targets),
            log=self._twin_log,
        ).start()
        factors = ", ".join(f"{k} x{v:g}" for k, v in truth.items()) or "as declared"
        self.say(
            f"traffic twin started: demand {self.args.demand}; ground truth = declared "
            f"profiles, slower where reality differs ({factors})"
        )
        self.twin_started = started

    def wait_for_traffic(self) -> None:
        started = self.twin_started
        self._wait(self._observed_rate, 60, "Prometheus to see the twin's traffic")
        # rate() divides by the whole window: with less history than the ModelServing's
        # 30 s window, Prometheus under-reports demand (and the planner would size for it).
        self.say(f"waiting for a full {WINDOW_S} s window of traffic in Prometheus")
        time.sleep(max(0.0, WINDOW_S + 3 - (time.monotonic() - started)))
        rate = self._observed_rate()
        p99 = self._observed_p99(())
        self.say(
            f"Prometheus sees {rate or 0:.0f} req/s over {self._replicas_seen()} pods, "
            f"p99 {_ms(p99)} (SLO {self._slo():g} ms)"
        )

    def _twin_log(self, message: str) -> None:
        if "failed" in message:
            self.say(message)

    def start_operator(self) -> None:
        from servingopt.devcluster.process import free_ports, spawn

        self.operator_log = self.cluster.directory / "logs" / "operator.log"
        argv = [
            sys.executable,
            "-c",
            "import sys; from servingopt.cli import main; sys.exit(main())",
            "run",
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--prometheus-url={self.prometheus.url}",
            "--liveness=",
            f"--metrics-bind=127.0.0.1:{free_ports(1)[0]}",
        ]
        # Attached (dies with the demo), started from the main thread.
        self.operator = spawn("operator", argv, self.operator_log, detach=False)
        self.say(f"operator started: servingopt run (log: {self.operator_log})")

    def apply_modelserving(self) -> None:
        doc = demo_modelserving(load(self.root, MS_FILE))
        self.kubectl.apply(doc)
        self.say(
            f"applied ModelServing {DEPLOY} (mode Auto, SLO p99 <= {self._slo():g} ms, "
            f"candidates {', '.join(doc['spec']['candidates']['pools'])})"
        )

    def wait_for_the_loop(self) -> tuple[LoopState, float | None]:
        """Narrates milestones until the loop closes or the timeout passes."""
        deadline = time.monotonic() + self.args.timeout
        seen: set[str] = set()
        last_pods = ""
        state = LoopState()
        closed_at: float | None = None
        p99: float | None = None
        while time.monotonic() < deadline:
            self._check_operator()
            try:
                state = self._state()
            except Exception as error:  # a slow API call; try again
                self.say(f"(read failed: {error}; retrying)")
                time.sleep(2)
                continue
            self._milestones(state, seen)
            line = pods_line(state)
            if line != last_pods and "applied" in seen:
                self.say(f"pods: {line}")
                last_pods = line
            if state.missing(observed=False):
                closed_at, p99 = None, None
            elif closed_at is None:
                closed_at = time.monotonic()
                self.say(f"measuring the new pods' p99 in Prometheus for {SETTLE_S} s")
            elif p99 is None and time.monotonic() - closed_at >= SETTLE_S:
                p99 = self._observed_p99(state.new_pods)
                if p99 is not None and math.isfinite(p99):
                    self.say(f"Prometheus: p99 on the new pods {_ms(p99)} (SLO {self._slo():g} ms)")
                else:
                    p99 = None
            if p99 is not None and not state.missing():
                return state, p99
            time.sleep(2)
        return state, p99

    def _milestones(self, state: LoopState, seen: set[str]) -> None:
        status = self._item("ModelServing").get("status") or {}
        if "decision" not in seen and status.get("recommendation"):
            seen.add("decision")
            self.say(f"operator decided: {_plan_line(status['recommendation'])}")
            for entry in (status.get("history") or [])[-1:]:
                reason = entry.get("reason") or entry.get("summary")
                if reason:
                    self.say(f"  why: {reason}")
        if "applied" not in seen and state.moved:
            seen.add("applied")
            self.say(
                f"operator applied it (server-side apply): template now on {state.applied_pool}"
            )
        if "cost" not in seen and state.saving:
            seen.add("cost")
            self.say(
                f"status.cost: baseline {money(state.baseline_hourly)} -> projected "
                f"{money(state.projected_hourly)} ({state.savings_percent}% saved)"
            )
        if "hpa" not in seen and state.hpa:
            seen.add("hpa")
            hpa = self._item("HorizontalPodAutoscaler", state.hpa).get("spec", {})
            self.say(
                f"HPA {state.hpa} created, owned by the ModelServing: "
                f"{hpa.get('minReplicas')}..{hpa.get('maxReplicas')} replicas"
            )
        if "observed" not in seen and state.observed:
            seen.add("observed")
            self.say(
                f"the operator's re-plan observes the new configuration: current "
                f"{money(state.current_hourly)} (baseline {money(state.baseline_hourly)})"
            )
        if "rolled" not in seen and state.running_on_new_pool:
            seen.add("rolled")
            self.say(f"rollout complete: {pods_line(state)}")

    # -- reads

    def _state(self) -> LoopState:
        from servingopt.api.instancecatalog import LABEL_POOL

        items = self.kubectl.json(
            "get", f"modelservings.servingopt.io/{DEPLOY}", f"deployment/{DEPLOY}",
            "--ignore-not-found",
        ).get("items", [])  # fmt: skip
        items += self.kubectl.json("get", "hpa,pods")["items"]
        self._items = items
        nodes = {
            n["metadata"]["name"]: n["metadata"]["labels"].get(LABEL_POOL, "?")
            for n in self._nodes()
        }
        return loop_state(items, nodes)

    def _item(self, kind: str, name: str | None = None) -> dict[str, Any]:
        """From the last :meth:`_state` read."""
        for item in getattr(self, "_items", []):
            if item["kind"] == kind and name in (None, item["metadata"]["name"]):
                found: dict[str, Any] = item
                return found
        return {}

    def _nodes(self) -> list[dict[str, Any]]:
        if not hasattr(self, "_node_cache"):
            self._node_cache: list[dict[str, Any]] = self.kubectl.json("get", "nodes")["items"]
        return self._node_cache

    def _ms(self) -> dict[str, Any]:
        found: dict[str, Any] = self.kubectl.json("get", "modelservings.servingopt.io", DEPLOY)
        return found

    def _slo(self) -> float:
        return float(load(self.root, MS_FILE)["spec"]["slo"]["latencyP99Ms"])

    def _selector(self, pods: tuple[str, ...]) -> str:
        sel = f'namespace="{NAMESPACE}",deployment="{DEPLOY}"'
        return sel + (f',pod=~"{"|".join(pods)}"' if pods else "")

    def _query(self, promql: str) -> float | None:
        result = self.prometheus.query(promql)
        return float(result[0]["value"][1]) if result else None

    def _observed_rate(self) -> float | None:
        rate = self._query(
            f"sum(rate(serving_requests_total{{{self._selector(())}}}[{WINDOW_S}s]))"
        )
        return rate if rate and rate > 0 else None

    def _replicas_seen(self) -> int:
        n = self._query(
            f"count(count by (instance) (serving_requests_total{{{self._selector(())}}}))"
        )
        return int(n or 0)

    def _observed_p99(self, pods: tuple[str, ...]) -> float | None:
        return self._query(
            "histogram_quantile(0.99, sum by (le) (rate(serving_request_duration_seconds_bucket"
            f"{{{self._selector(pods)}}}[15s]))) * 1000"
        )

    def _check_operator(self) -> None:
        proc = self.operator[0] if self.operator else None
        if proc is not None and proc.poll() is not None:
            raise DemoError(f"the operator exited with code {proc.returncode}")

    def _wait(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        from servingopt.devcluster import wait_until

        return wait_until(check, timeout, what, interval=1.0)

    # -- report

    def report(self, state: LoopState, p99: float | None) -> bool:
        k = self.kubectl
        print()
        for title, args in (
            ("kubectl get ms -o wide", ("get", "ms", "-o", "wide")),
            ("kubectl get deploy,hpa,pods -o wide", ("get", "deploy,hpa,pods", "-o", "wide")),
        ):
            print(f"$ {title}\n{k.run(*args).stdout}")
        ms = self._ms()
        status = ms.get("status") or {}
        print("ModelServing status:")
        for line in status_summary(status):
            print(f"  {line}")
        if self.twin is not None:
            from servingopt.devcluster.twin import pods_summary

            print("\ntraffic twin (ground truth per pod):")
            for line in pods_summary(self.twin):
                print(f"  {line}")
        print("\nrecent Events:")
        print(self._events())
        closed = not state.missing() and p99 is not None
        slo = self._slo()
        slo_ok = p99 is not None and p99 <= slo
        if closed and slo_ok:
            verdict = (
                f"LOOP CLOSED in {self.say.elapsed:.0f} s: {START_POOL} -> {state.applied_pool}, "
                f"{pods_line(state)}, HPA {state.hpa}, {money(state.baseline_hourly)} -> "
                f"{money(state.current_hourly)} now, {money(state.projected_hourly)} planned "
                f"({state.savings_percent}% saved), measured "
                f"p99 {_ms(p99)} <= SLO {slo:g} ms"
            )
        elif closed:
            verdict = f"MOVED BUT SLO BROKEN: measured p99 {_ms(p99)} > SLO {slo:g} ms"
        else:
            verdict = "LOOP NOT CLOSED within the timeout; missing: " + "; ".join(
                state.missing() or ["a measured p99 on the new pods"]
            )
        print(f"verdict: {verdict}")
        return closed and slo_ok

    def _events(self) -> str:
        out = self.kubectl.run(
            "get",
            "events",
            "--sort-by=.lastTimestamp",
            "-o",
            "custom-columns=LAST:.lastTimestamp,TYPE:.type,REASON:.reason,"
            "OBJECT:.involvedObject.kind,NAME:.involvedObject.name,MESSAGE:.message",
            check=False,
        ).stdout
        lines = out.splitlines()
        keep = [ln for ln in lines[1:] if "ModelServing" in ln or "HorizontalPod" in ln]
        return "\n".join([lines[0], *keep[-12:]] if lines else [])

    def operator_tail(self, lines: int = 40) -> str:
        if self.operator_log is None or not self.operator_log.exists():
            return ""
        return "\n".join(self.operator_log.read_text(errors="replace").splitlines()[-lines:])

    # -- teardown

    def stop(self) -> None:
        from servingopt.devcluster.process import stop

        if self.operator is not None:
            stop(self.operator[1], self.operator[0])
            self.operator = None
        if self.twin is not None:
            self.twin.stop()
            self.twin = None
            if self.prometheus is not None:
                self.prometheus.remove_static_targets(TWIN_JOB)
        if self.cluster is None:
            return
        if self.args.keep:
            env = self.cluster.env()
            self.say(f"--keep: cluster {self.args.name!r} left running")
            print(
                f"  export KUBECONFIG={env['KUBECONFIG']}\n"
                f"  kubectl get ms,deploy,hpa,pods -o wide\n"
                f"  Prometheus: {env.get('SERVINGOPT_PROMETHEUS_URL', '-')}\n"
                f"  stop it: servingopt dev-cluster down --name {self.args.name}"
            )
        else:
            self.say("stopping the dev cluster")
            self.cluster.down()


def status_summary(status: dict[str, Any]) -> list[str]:
    """Plain lines: plan applied, prediction, cost and conditions."""
    cost, pred = status.get("cost") or {}, status.get("predicted") or {}
    lines = []
    if status.get("applied"):
        lines.append(f"applied:    {_plan_line(status['applied'])}")
    lines.append(
        f"predicted:  p99 {_ms(pred.get('p99LatencyMs'))}, {pred.get('replicas', '-')} replica(s) "
        f"at {pred.get('demandRps', '-')} req/s, utilisation {pred.get('utilization', '-')}"
    )
    lines.append(
        f"cost:       baseline {money(cost.get('baselineHourly'))}, current "
        f"{money(cost.get('currentHourly'))}, projected {money(cost.get('projectedHourly'))}, "
        f"savings {cost.get('savingsPercent', '-')}%"
    )
    for c in status.get("conditions", []):
        lines.append(
            f"condition:  {c['type']}={c['status']} ({c['reason']}) {c.get('message', '')}"
        )
    return lines


def _plan_line(plan: dict[str, Any]) -> str:
    replicas = plan.get("replicas") or {}
    return (
        f"{plan.get('instanceType')} ({plan.get('pool')}, {plan.get('capacityType')}), "
        f"variant {plan.get('variant')}, replicas {replicas.get('min')}..{replicas.get('max')}, "
        f"maxBatchSize {plan.get('maxBatchSize')}"
        + (f", {money(plan['hourlyCost'])}" if plan.get("hourlyCost") is not None else "")
    )


def _ms(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.1f} ms"
