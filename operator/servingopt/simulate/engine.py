"""The replay: a demand trace against a policy, second by second, with a 15 s control loop.

How one replay advances (all pure, seeded, no clock):

* **Control loop (every 15 s, sequential).**  The policy's scaler (an emulated HPA, a
  threshold rule or a fixed count) reads the per-pod metrics of the last 60 s (what a
  Prometheus ``rate(...[1m])`` behind a metrics adapter reports) and sets the
  Deployment's replicas.  The Deployment controller creates or deletes pods, rolling
  from one revision to the next with the Kubernetes defaults (maxSurge 25 %, rounded
  up; maxUnavailable 25 %, rounded down) when the policy changes the configuration.
  A new pod becomes ready after image pull + model load (``startupSeconds``), plus the
  node's provisioning time when no free node slot of its instance type exists.  Empty
  nodes live ``node_idle_seconds`` before they are removed; every node is billed while
  it lives.  Spot nodes can be interrupted (optional, seeded).
* **Data plane (every second, vectorised per chunk).**  Arrivals (exact counts, or
  Poisson around the rate) are spread evenly over the ready pods.  Each pod's latency
  follows :class:`~servingopt.simulate.latency.ReplicaLatency` of the *true* profile.
  Load beyond the pods' largest throughput joins a backlog (fluid queue) that delays
  later requests; requests that would wait longer than the request timeout are
  dropped, and so is whatever is still queued when the trace ends.
* **Policies re-plan** every ``replan_seconds`` with the per-minute history produced
  so far (rates, p99, replicas, configuration) — never with the future.

Latency quantiles are computed on a fixed geometric grid of latencies around the SLO
(ratio 2^(1/4) between points, the SLO itself on the grid, SLO/16 to 128 x SLO), so the
fraction of requests within the SLO is exact for the model and p99 values are
interpolated within ~19 %.  A minute whose p99 lies beyond the grid records the grid's
top (like the highest finite bucket of a histogram); the whole replay's p99 is then
reported as off-grid (infinite).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .hpa import Hpa, HpaSpec, PodMetrics
from .latency import SATURATION, ReplicaLatency, survival
from .traces import Trace
from .world import Scenario, ServingConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SYNC_SECONDS = 15
METRIC_WINDOW_SECONDS = 60
#: Latency grid: SLO * 2**(j/4) for j in GRID_STEPS (the SLO is j = 0).
GRID_STEPS = np.arange(-16, 29)
_SLO_INDEX = 16


# ----------------------------------------------------------------------------- scalers


@dataclass(frozen=True)
class StepMetrics:
    """What the metrics pipeline shows a scaler at one control-loop pass."""

    rps_per_pod: float | None
    """Average requests/s per ready pod over the last minute (None: no ready pod)."""
    ready: int
    unready: int
    latency: ReplicaLatency | None = None
    """True latency model of the running configuration (for derived metrics)."""

    @property
    def utilisation(self) -> float | None:
        """rps_per_pod over the running configuration's largest throughput (0..1+)."""
        if self.rps_per_pod is None or self.latency is None:
            return None
        return self.rps_per_pod / self.latency.max_rps

    @property
    def concurrency_per_pod(self) -> float | None:
        """In-flight requests per ready pod (Little's law on the true mean latency)."""
        if self.rps_per_pod is None or self.latency is None:
            return None
        rate = min(self.rps_per_pod, SATURATION * self.latency.max_rps)
        return self.rps_per_pod * float(self.latency.mean_ms(rate)) / 1000.0


class Scaler(Protocol):
    def desired(self, now: float, current: int, metrics: StepMetrics) -> int: ...


@dataclass
class FixedReplicas:
    """No autoscaler: a fixed replica count."""

    replicas: int

    def desired(self, now: float, current: int, metrics: StepMetrics) -> int:
        return self.replicas


def _cpu_percent(metrics: StepMetrics) -> float | None:
    return None if metrics.utilisation is None else 100 * metrics.utilisation


_METRICS: dict[str, Callable[[StepMetrics], float | None]] = {
    "RequestsPerSecond": lambda m: m.rps_per_pod,
    "Concurrency": lambda m: m.concurrency_per_pod,
    "CPUUtilization": _cpu_percent,
}


@dataclass
class HpaScaler:
    """An emulated HPA on a Pods metric (requests/s, concurrency or CPU %)."""

    hpa: Hpa
    metric: str = "RequestsPerSecond"

    def desired(self, now: float, current: int, metrics: StepMetrics) -> int:
        value = _METRICS[self.metric](metrics)  # only the one the HPA reads
        values = [] if value is None else [value] * metrics.ready
        return self.hpa.sync(now, current, PodMetrics(values, unready=metrics.unready))

    def update(self, spec: HpaSpec, metric: str) -> None:
        """Edit the HPA object in place: the controller keeps its history."""
        self.hpa.spec = spec
        self.metric = metric


@dataclass
class ThresholdScaler:
    """Rule-of-thumb step scaling: up by half above ``up``, down by one below ``down``
    (utilisation of the declared capacity), then ``cooldown`` seconds of nothing."""

    capacity_rps: float
    min_replicas: int
    max_replicas: int
    up: float = 0.60
    down: float = 0.25
    cooldown: float = 240.0
    _last: float = -math.inf

    def desired(self, now: float, current: int, metrics: StepMetrics) -> int:
        if metrics.rps_per_pod is None or now - self._last < self.cooldown:
            return current
        load = metrics.rps_per_pod / self.capacity_rps
        target = current
        if load > self.up:
            target = min(self.max_replicas, current + max(1, math.ceil(current / 2)))
        elif load < self.down:
            target = max(self.min_replicas, current - 1)
        if target != current:
            self._last = now
        return target


# ----------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Plan:
    """What a policy runs: a configuration, the scaler that sizes it, a starting count."""

    config: ServingConfig
    scaler: Scaler
    replicas: int
    reason: str = ""


class _Column:
    """A float column that grows by appending; reads are views of the filled part."""

    def __init__(self) -> None:
        self._data = np.empty(1024)
        self._size = 0

    def append(self, value: float) -> None:
        if self._size == self._data.size:
            self._data = np.concatenate([self._data, np.empty(self._data.size)])
        self._data[self._size] = value
        self._size += 1

    def last(self, n: int) -> FloatArray:
        """The last ``n`` values (a read-only view)."""
        view = self._data[max(self._size - n, 0) : self._size]
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return self._size


@dataclass(frozen=True)
class WorkloadState:
    """The Deployment and its pods at a re-plan, as the API server would show them."""

    desired: int = 0
    """``spec.replicas`` (what the scaler last set)."""
    updated: int = 0
    """Pods of the newest revision (``status.updatedReplicas``)."""
    available: int = 0
    """Of those, the ready ones (``status.availableReplicas``)."""
    total: int = 0
    """Pods of every revision (``status.replicas``)."""
    ready: int = 0
    """Ready pods of every revision (``status.readyReplicas``)."""
    running: tuple[tuple[str, str, int], ...] = ()
    """Pods on a node, by (instance type, capacity type), sorted. A pod waiting for a
    new node is not on one yet; its image pull and model load are not told apart."""

    @property
    def rollout_in_flight(self) -> bool:
        """The operator's rule (``kube.manifests.rollout_in_flight``) on this status: the
        newest revision is short of replicas or old pods remain (a scale-out of the
        newest revision does not count)."""
        return self.updated < self.desired or self.total > self.updated


@dataclass
class History:
    """Per-minute observations up to now (what a monitoring system has recorded).

    Columns grow in place so that a policy reading the last week every few minutes
    pays for a view, not for a copy of the whole record.
    """

    start_minute: _Column = field(default_factory=_Column)
    rps: _Column = field(default_factory=_Column)
    p99_ms: _Column = field(default_factory=_Column)
    replicas: _Column = field(default_factory=_Column)
    max_batch: _Column = field(default_factory=_Column)
    peak_rps: _Column = field(default_factory=_Column)
    config: list[ServingConfig | None] = field(default_factory=list)
    instance_types: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    workload: WorkloadState = field(default_factory=WorkloadState)
    """The Deployment and its pods as the API server shows them now."""

    def record(
        self,
        minute: float,
        rps: float,
        p99_ms: float,
        replicas: float,
        config: ServingConfig,
        mixed: bool = False,
        peak_rps: float = math.nan,
    ) -> None:
        """One minute; ``mixed``: two revisions served in it, so its p99 is no
        configuration's own (recorded without one, as nothing can be learned from it)."""
        self.start_minute.append(minute)
        self.rps.append(rps)
        self.p99_ms.append(p99_ms)
        self.replicas.append(replicas)
        self.peak_rps.append(peak_rps)
        self.max_batch.append(np.nan if mixed else float(config.max_batch))
        self.config.append(None if mixed else config)
        self.instance_types.append("" if mixed else config.instance_type)
        self.variants.append("" if mixed else config.variant)

    def __len__(self) -> int:
        return len(self.rps)


class Policy(Protocol):
    name: str
    replan_seconds: int | None

    def start(self, scenario: Scenario, trace: Trace) -> Plan: ...

    def replan(self, now: float, history: History, current: Plan) -> Plan | None: ...


# ----------------------------------------------------------------------------- cluster


@dataclass
class Pod:
    created: float
    ready_at: float
    capacity: str = "on-demand"
    removed_at: float = math.inf
    on_node_at: float = -math.inf
    """When the pod is bound to a node (later than ``created`` when one is provisioned)."""


@dataclass
class NodeGroup:
    """Nodes of one instance type and capacity type."""

    per_node: int
    nodes: int = 0
    excess_since: float | None = None


@dataclass
class Revision:
    config: ServingConfig
    live: list[Pod] = field(default_factory=list)


class Cluster:
    """Deployment revisions, pods and nodes — the sequential half of the replay."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        self.scenario = scenario
        self.rng = rng
        self.revisions: list[Revision] = []
        self.history: dict[ServingConfig, list[Pod]] = {}
        self.nodes: dict[tuple[str, str], NodeGroup] = {}
        self.node_seconds: dict[tuple[str, str], float] = {}
        self.cost = 0.0
        self.cost_log: list[float] = []
        self.interrupted_nodes = 0

    # -- pods -----------------------------------------------------------------------

    def _group(self, instance_type: str, capacity: str) -> NodeGroup:
        key = (instance_type, capacity)
        if key not in self.nodes:
            self.nodes[key] = NodeGroup(self.scenario.pods_per_node(instance_type))
        return self.nodes[key]

    def _pods_on(self, instance_type: str, capacity: str) -> int:
        return sum(
            1
            for r in self.revisions
            if r.config.instance_type == instance_type
            for p in r.live
            if p.capacity == capacity
        )

    def _spot_split(self, revision: Revision, count: int) -> int:
        """How many of ``count`` new pods go to spot (spot mixes keep an on-demand base)."""
        config = revision.config
        if config.capacity_type != "spot":
            return 0
        total = len(revision.live) + count
        on_spot = sum(1 for p in revision.live if p.capacity == "spot")
        wanted = min(total - config.on_demand_base, total * config.spot_percent // 100)
        return min(count, max(0, wanted - on_spot))

    def create(self, revision: Revision, count: int, now: float) -> None:
        config = revision.config
        spot = self._spot_split(revision, count)
        for capacity, n in (("spot", spot), ("on-demand", count - spot)):
            if n <= 0:
                continue
            group = self._group(config.instance_type, capacity)
            free = max(
                0, group.nodes * group.per_node - self._pods_on(config.instance_type, capacity)
            )
            warm = self.scenario.startup_seconds(config, new_node=False)
            cold = self.scenario.startup_seconds(config, new_node=True)
            node = now + cold - warm  # when a new node is up
            pods = [
                Pod(now, now + warm, capacity, on_node_at=now)
                if i < free
                else Pod(now, now + cold, capacity, on_node_at=node)
                for i in range(n)
            ]
            if n > free:
                group.nodes += -(-(n - free) // group.per_node)
            revision.live.extend(pods)
            self.history.setdefault(config, []).extend(pods)

    def remove(
        self,
        revision: Revision,
        count: int,
        now: float,
        *,
        ready_ok: bool = True,
        capacity: str | None = None,
    ) -> int:
        """Delete up to ``count`` pods, not-ready ones first, newest first."""
        order = sorted(revision.live, key=lambda p: (p.ready_at <= now, -p.created))
        victims = [
            p
            for p in order
            if (ready_ok or p.ready_at > now) and (capacity is None or p.capacity == capacity)
        ][:count]
        for pod in victims:
            pod.removed_at = now
        gone = {id(p) for p in victims}
        revision.live = [p for p in revision.live if id(p) not in gone]
        return len(victims)

    def ready(self, now: float) -> int:
        return sum(1 for r in self.revisions for p in r.live if p.ready_at <= now)

    def live(self) -> int:
        return sum(len(r.live) for r in self.revisions)

    def workload(self, desired: int, now: float) -> WorkloadState:
        """The Deployment's status and its pods' placement at ``now``."""
        newest = self.revisions[-1].live if self.revisions else []
        running: dict[tuple[str, str], int] = {}
        for r in self.revisions:
            for p in r.live:
                if p.on_node_at <= now:
                    key = (r.config.instance_type, p.capacity)
                    running[key] = running.get(key, 0) + 1
        return WorkloadState(
            desired=desired,
            updated=len(newest),
            available=sum(1 for p in newest if p.ready_at <= now),
            total=self.live(),
            ready=self.ready(now),
            running=tuple((t, c, n) for (t, c), n in sorted(running.items())),
        )

    # -- the Deployment controller ------------------------------------------------

    def reconcile(self, desired: int, now: float) -> None:
        new = self.revisions[-1]
        old = [r for r in self.revisions[:-1] if r.live]
        if not old:
            self.revisions = [new]
            if len(new.live) < desired:
                self.create(new, desired - len(new.live), now)
            elif len(new.live) > desired:
                self.remove(new, len(new.live) - desired, now)
            return
        surge = math.ceil(0.25 * desired)
        unavailable = math.floor(0.25 * desired)
        if len(new.live) > desired:
            self.remove(new, len(new.live) - desired, now)
        room = desired + surge - self.live()
        if room > 0 and len(new.live) < desired:
            self.create(new, min(room, desired - len(new.live)), now)
        for rev in old:  # unhealthy old pods go first, they serve nothing
            self.remove(rev, len(rev.live), now, ready_ok=False)
        spare = self.ready(now) - (desired - unavailable)
        for rev in old:
            if spare <= 0:
                break
            spare -= self.remove(rev, spare, now)
        self.revisions = [r for r in self.revisions[:-1] if r.live] + [new]

    def roll_to(self, config: ServingConfig) -> None:
        if self.revisions and self.revisions[-1].config == config:
            return
        existing = [r for r in self.revisions if r.config == config]
        rest = [r for r in self.revisions if r.config != config]
        self.revisions = [*rest, existing[0] if existing else Revision(config)]

    # -- nodes, interruptions, billing --------------------------------------------

    def interrupt_spot(self, now: float, seconds: float) -> None:
        for (name, capacity), group in self.nodes.items():
            if capacity != "spot" or group.nodes == 0:
                continue
            rate = self.scenario.instance(name).spot_interruptions_per_hour
            hit = int(self.rng.binomial(group.nodes, min(1.0, rate * seconds / 3600.0)))
            if not hit:
                continue
            group.nodes -= hit
            self.interrupted_nodes += hit
            lost = hit * group.per_node
            for rev in self.revisions:
                if rev.config.instance_type == name and lost > 0:
                    lost -= self.remove(rev, lost, now, capacity="spot")

    def settle_nodes(self, now: float) -> None:
        """The node autoscaler: drop nodes that have been empty long enough."""
        for (name, capacity), group in self.nodes.items():
            needed = -(-self._pods_on(name, capacity) // group.per_node)
            if needed >= group.nodes:
                group.excess_since = None
            elif group.excess_since is None:
                group.excess_since = now
            elif now - group.excess_since >= self.scenario.node_idle_seconds:
                group.nodes = needed
                group.excess_since = None

    def bill(self, seconds: float) -> float:
        spent = 0.0
        for (name, capacity), group in self.nodes.items():
            if group.nodes:
                price = self.scenario.instance(name).hourly_price(capacity) or 0.0
                spent += group.nodes * price * seconds / 3600.0
                key = (name, capacity)
                self.node_seconds[key] = self.node_seconds.get(key, 0.0) + group.nodes * seconds
        self.cost += spent
        self.cost_log.append(self.cost)
        return spent

    def ready_series(self, t0: int, t1: int) -> dict[ServingConfig, IntArray]:
        """Ready pods per configuration for every second in ``[t0, t1)``."""
        out: dict[ServingConfig, IntArray] = {}
        for config, pods in self.history.items():
            diff = np.zeros(t1 - t0 + 1, dtype=np.int64)
            keep: list[Pod] = []
            for pod in pods:
                if pod.removed_at <= t0:
                    continue  # gone before this chunk: never needed again
                keep.append(pod)
                start = max(math.ceil(pod.ready_at), t0)
                end = min(math.ceil(pod.removed_at) if pod.removed_at < math.inf else t1, t1)
                if start < end:
                    diff[start - t0] += 1
                    diff[end - t0] -= 1
            self.history[config] = keep
            counts = np.cumsum(diff[:-1])
            if counts.any():
                out[config] = counts
        return out


# ----------------------------------------------------------------------------- result


@dataclass
class ReplayResult:
    """Everything one replay measured."""

    policy: str
    trace: str
    seconds: int
    cost: float
    requests: int
    within_slo: float
    dropped: float
    p99_ms: float
    replica_hours: float
    node_hours: dict[str, float]
    cost_by_type: dict[str, float]
    minutes: dict[str, list[float]]
    """Per-minute series: t, rps, capacity_rps, replicas, pods, p99_ms, cost, within."""
    minute_config: list[str]
    decisions: list[tuple[float, str, str]]
    """(time s, configuration, reason) every time the policy changed its plan."""
    spot_interruptions: int = 0
    """Spot nodes reclaimed during the replay (with ``spot_interruptions`` drawn)."""

    @property
    def slo_attainment(self) -> float:
        return self.within_slo / self.requests if self.requests else 1.0

    @property
    def served(self) -> float:
        return self.requests - self.dropped


@dataclass
class _Accumulator:
    grid: FloatArray
    minute_exceed: list[FloatArray] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    configs: list[str] = field(default_factory=list)
    requests: int = 0
    dropped: float = 0.0
    within: float = 0.0
    ready_seconds: float = 0.0

    def add(self, key: str, values: npt.ArrayLike) -> None:
        self.series.setdefault(key, []).extend(np.asarray(values, dtype=np.float64).tolist())


def quantile_from_exceed(grid: FloatArray, exceed: FloatArray, total: float, q: float) -> float:
    """Latency at which the share of requests above it falls to ``1 - q`` (log-interpolated)."""
    if total <= 0:
        return 0.0
    share = exceed / total
    limit = 1.0 - q
    above = np.nonzero(share > limit)[0]
    if above.size == 0:
        return float(grid[0])
    i = int(above[-1])
    if i + 1 >= grid.size:
        return math.inf
    s0, s1 = max(share[i], 1e-12), max(share[i + 1], 1e-12)
    if s1 >= s0:
        return float(grid[i + 1])
    w = (math.log(s0) - math.log(limit)) / (math.log(s0) - math.log(s1))
    return float(math.exp(math.log(grid[i]) + w * (math.log(grid[i + 1]) - math.log(grid[i]))))


# ----------------------------------------------------------------------------- replay


Progress = Callable[[int, int], None]


def replay(
    scenario: Scenario,
    trace: Trace,
    policy: Policy,
    arrivals: IntArray | None = None,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> ReplayResult:
    """Replay ``trace`` under ``policy``; ``arrivals`` fixes per-second arrivals (shared
    by all policies of a comparison so that they face the same requests)."""
    rng = np.random.default_rng(seed)
    if arrivals is None:
        arrivals = trace.arrivals(np.random.default_rng(seed))
    total = int(arrivals.size)
    slo = scenario.slo_ms
    acc = _Accumulator(grid=slo * 2.0 ** (GRID_STEPS / 4.0))
    cluster = Cluster(scenario, np.random.default_rng(rng.integers(1 << 62)))
    plan = policy.start(scenario, trace)
    cluster.roll_to(plan.config)
    cluster.reconcile(plan.replicas, 0.0)
    # The starting pods are already running (the workload exists before the replay).
    for pod in cluster.revisions[-1].live:
        pod.ready_at = 0.0
    desired = plan.replicas
    decisions = [(0.0, plan.config.label(), plan.reason)]
    history = History()
    latency_of: dict[ServingConfig, ReplicaLatency] = {}
    capacity_of: dict[ServingConfig, float] = {}

    def true_latency(config: ServingConfig) -> ReplicaLatency:
        if config not in latency_of:
            latency_of[config] = scenario.true_latency(config)
            capacity_of[config] = scenario.capacity(config, truth=True)
        return latency_of[config]

    step_arrivals = np.add.reduceat(arrivals, np.arange(0, total, SYNC_SECONDS)).tolist()
    ready_log: list[int] = []
    mixed_log: list[bool] = []  # per control step: more than one revision live
    window = METRIC_WINDOW_SECONDS // SYNC_SECONDS
    chunk = policy.replan_seconds or 3600
    chunk = max(SYNC_SECONDS, chunk - chunk % SYNC_SECONDS)
    backlog = 0.0
    for t0 in range(0, total, chunk):
        t1 = min(total, t0 + chunk)
        for step_start in range(t0, t1, SYNC_SECONDS):
            k = step_start // SYNC_SECONDS
            now = float(step_start)
            ready = cluster.ready(now)
            metrics = _metrics(
                step_arrivals, ready_log, k, window, ready, cluster, now, true_latency
            )
            ready_log.append(ready)
            if step_start > 0:
                desired = plan.scaler.desired(now, desired, metrics)
            if scenario.spot_interruptions:
                cluster.interrupt_spot(now, SYNC_SECONDS)
            cluster.reconcile(desired, now)
            cluster.settle_nodes(now)
            cluster.bill(min(SYNC_SECONDS, total - step_start))
            mixed_log.append(sum(1 for r in cluster.revisions if r.live) > 1)
        backlog = _data_plane(
            acc, cluster, arrivals, t0, t1, backlog, scenario, true_latency, capacity_of
        )
        _record_history(acc, history, plan.config, mixed_log)
        history.workload = cluster.workload(desired, float(t1))
        if progress:
            progress(t1, total)
        if policy.replan_seconds and t1 < total:
            new_plan = policy.replan(float(t1), history, plan)
            if new_plan is not None:
                if new_plan.config != plan.config:
                    cluster.roll_to(new_plan.config)
                    decisions.append((float(t1), new_plan.config.label(), new_plan.reason))
                plan = new_plan
    # Whatever is still queued at the end was not served within the replay.
    acc.dropped += backlog
    if acc.minute_exceed:
        acc.minute_exceed[-1] = acc.minute_exceed[-1] + backlog
    return _result(acc, policy.name, trace.name, total, cluster, decisions)


def _metrics(
    step_arrivals: list[int],
    ready_log: list[int],
    k: int,
    window: int,
    ready: int,
    cluster: Cluster,
    now: float,
    true_latency: Callable[[ServingConfig], ReplicaLatency],
) -> StepMetrics:
    lo = max(0, k - window)
    pod_seconds = SYNC_SECONDS * sum(ready_log[lo:k])
    unready = cluster.live() - ready
    if pod_seconds <= 0 or ready == 0:
        return StepMetrics(None, ready, unready)
    rps = sum(step_arrivals[lo:k]) / pod_seconds
    return StepMetrics(rps, ready, unready, true_latency(cluster.revisions[-1].config))


def _data_plane(
    acc: _Accumulator,
    cluster: Cluster,
    arrivals: IntArray,
    t0: int,
    t1: int,
    backlog: float,
    scenario: Scenario,
    true_latency: Callable[[ServingConfig], ReplicaLatency],
    capacity_of: dict[ServingConfig, float],
) -> float:
    n = t1 - t0
    a = arrivals[t0:t1].astype(np.float64)
    ready = cluster.ready_series(t0, t1)
    pods = np.zeros(n)
    throughput = np.zeros(n)
    slo_capacity = np.zeros(n)
    for config, count in ready.items():
        latency = true_latency(config)
        pods += count
        throughput += count * latency.max_rps
        slo_capacity += count * capacity_of[config]
    dropped = np.zeros(n)
    waiting = np.zeros(n)
    if backlog > 0 or np.any(a > throughput):
        backlog = _fluid_queue(a, throughput, backlog, scenario.request_timeout_s, dropped, waiting)
    with np.errstate(divide="ignore", invalid="ignore"):
        wait_ms = np.where(throughput > 0, 1000.0 * waiting / throughput, 0.0)
    per_pod = np.where(pods > 0, a / np.maximum(pods, 1), 0.0)
    served = a - dropped
    grid = acc.grid
    exceed = np.zeros((n, grid.size))
    queued = np.nonzero(wait_ms > 0)[0]
    for config, count in ready.items():
        latency = true_latency(config)
        share = np.where(pods > 0, count / np.maximum(pods, 1), 0.0)
        part = latency.survival_at_loads(grid, per_pod)
        if queued.size:  # behind a backlog: shift the distribution by the wait
            s, f, q, theta = (v[:, None] for v in latency.parameters(per_pod[queued]))
            x = grid[None, :] - wait_ms[queued, None]
            part[queued] = survival(x, s, f, q, theta)
        exceed += share[:, None] * part
    exceed[pods == 0] = 1.0
    weighted = served[:, None] * exceed + dropped[:, None]
    minute_edges = np.arange(0, n, 60)
    per_minute = np.add.reduceat(weighted, minute_edges, axis=0)
    acc.minute_exceed.extend(per_minute)
    minute_requests = np.add.reduceat(a, minute_edges)
    acc.requests += int(a.sum())
    acc.dropped += float(dropped.sum())
    acc.within += float((served * (1.0 - exceed[:, _SLO_INDEX])).sum())
    acc.ready_seconds += float(pods.sum())
    lengths = np.diff(np.append(minute_edges, n)).astype(np.float64)
    acc.add("t", (t0 + minute_edges).astype(np.float64))
    acc.add("rps", minute_requests / lengths)
    acc.add("peak_rps", _peak_rates(a, minute_edges, scenario.spec.metrics.burst_window_seconds))
    acc.add("capacity_rps", np.add.reduceat(slo_capacity, minute_edges) / lengths)
    acc.add("replicas", np.add.reduceat(pods, minute_edges) / lengths)
    acc.add("dropped", np.add.reduceat(dropped, minute_edges))
    acc.add(
        "p99_ms",
        [
            min(quantile_from_exceed(grid, row, float(tot), 0.99), float(grid[-1]))
            for row, tot in zip(per_minute, minute_requests, strict=True)
        ],
    )
    acc.add(
        "within",
        np.add.reduceat(served * (1.0 - exceed[:, _SLO_INDEX]), minute_edges),
    )
    ends = np.minimum(t0 + minute_edges + 60, t1)
    steps = np.minimum(-(-ends // SYNC_SECONDS) - 1, len(cluster.cost_log) - 1)
    acc.add("cost", [cluster.cost_log[int(i)] for i in steps])
    label = cluster.revisions[-1].config.label()
    acc.configs.extend([label] * minute_edges.size)
    return backlog


def _peak_rates(a: FloatArray, minute_edges: IntArray, window_s: int) -> FloatArray:
    """Each minute's highest request rate over ``window_s``-second windows (what a
    ``max_over_time`` of a short ``rate()`` reads), NaN for a minute shorter than one."""
    out = np.full(minute_edges.size, np.nan)
    per_minute = 60 // window_s * window_s  # whole windows of a full minute
    lengths = np.diff(np.append(minute_edges, a.size))
    full = np.flatnonzero(lengths >= per_minute)
    if full.size:
        at = minute_edges[full][:, None] + np.arange(per_minute)[None, :]
        windows = a[at].reshape(full.size, -1, window_s)
        out[full] = windows.mean(axis=2).max(axis=1)
    for i in np.flatnonzero((lengths < per_minute) & (lengths >= window_s)).tolist():
        minute = a[minute_edges[i] : minute_edges[i] + lengths[i]]
        whole = minute.size // window_s * window_s
        out[i] = float(minute[:whole].reshape(-1, window_s).mean(axis=1).max())
    return out


def _fluid_queue(
    a: FloatArray,
    throughput: FloatArray,
    backlog: float,
    timeout_s: float,
    dropped: FloatArray,
    waiting: FloatArray,
) -> float:
    """Backlog carried from second to second; what would wait past the timeout is dropped."""
    arrivals = a.tolist()
    capacity = throughput.tolist()
    for i, (arrived, cap) in enumerate(zip(arrivals, capacity, strict=True)):
        backlog = max(0.0, backlog + arrived - cap)
        limit = timeout_s * cap
        if backlog > limit:
            dropped[i] = backlog - limit
            backlog = limit
        waiting[i] = backlog
    return backlog


def _record_history(
    acc: _Accumulator, history: History, config: ServingConfig, mixed_log: list[bool]
) -> None:
    """The new minutes, each marked mixed when a rollout had two revisions serving."""
    have = len(history)
    series = acc.series
    per_minute = 60 // SYNC_SECONDS
    for i in range(have, len(series["t"])):
        k = int(series["t"][i]) // SYNC_SECONDS
        history.record(
            series["t"][i],
            series["rps"][i],
            series["p99_ms"][i],
            series["replicas"][i],
            config,
            mixed=any(mixed_log[k : k + per_minute]),
            peak_rps=series["peak_rps"][i],
        )


def _result(
    acc: _Accumulator,
    policy: str,
    trace: str,
    seconds: int,
    cluster: Cluster,
    decisions: list[tuple[float, str, str]],
) -> ReplayResult:
    exceed = np.sum(acc.minute_exceed, axis=0) if acc.minute_exceed else np.zeros(1)
    p99 = quantile_from_exceed(acc.grid, exceed, float(acc.requests), 0.99)
    node_hours = {f"{k[0]}/{k[1]}": v / 3600.0 for k, v in sorted(cluster.node_seconds.items())}
    cost_by = {
        f"{k[0]}/{k[1]}": v / 3600.0 * (cluster.scenario.instance(k[0]).hourly_price(k[1]) or 0.0)
        for k, v in sorted(cluster.node_seconds.items())
    }
    return ReplayResult(
        policy=policy,
        trace=trace,
        seconds=seconds,
        cost=cluster.cost,
        requests=acc.requests,
        within_slo=acc.within,
        dropped=acc.dropped,
        p99_ms=p99,
        replica_hours=acc.ready_seconds / 3600.0,
        node_hours=node_hours,
        cost_by_type=cost_by,
        minutes=acc.series,
        minute_config=acc.configs,
        decisions=decisions,
        spot_interruptions=cluster.interrupted_nodes,
    )
