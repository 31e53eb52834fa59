"""One loop: the operator's reconcile and the replay take the same step, step by step.

The replay (``servingopt simulate``/``bench``, policy (e)) runs a sample on a trace and
records, at every re-plan, what it handed :func:`servingopt.loop.step` — the metric
history it saw, what it ran, the Deployment's status and pods, its memory and learned
corrections — and what came out. Then, for each recorded step, the operator's real
``reconcile()`` runs against a mock API server (kmock) serving that world the way a
cluster would hold it: the Deployment and the HPA servingopt would have applied for the
running configuration (built with servingopt's own manifest builders), the pods on
their nodes, the Deployment's rollout status, and a ModelServing whose
``servingopt.io/state`` annotation holds the memory and corrections; a fake metric
source answers with the recorded history. The loop input the reconcile builds must be
the replay's, and the proposal and the verdict must be the same at every step.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import kmock
import numpy as np
import pytest
import yaml

from servingopt import loop
from servingopt.api import ServingPolicy
from servingopt.api.instancecatalog import LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE
from servingopt.controller import status as st
from servingopt.controller.reconcile import Deps, reconcile
from servingopt.kube import manifests as m
from servingopt.kube import paths
from servingopt.kube.client import KubeClient
from servingopt.loop import core
from servingopt.loop.core import proposal
from servingopt.metrics.source import SampleRequest
from servingopt.simulate import traces
from servingopt.simulate.adaptive import ServingoptPolicy
from servingopt.simulate.engine import History, Plan, WorkloadState, replay
from servingopt.simulate.inputs import load_scenario
from servingopt.simulate.servingbench import optimistic_factors, peak_for
from servingopt.simulate.world import Scenario
from servingopt.values import MetricsSample, Proposal

ROOT = Path(__file__).resolve().parents[2]
NS, UID = "ml", "ms-uid-1"
PROMETHEUS = "http://prometheus.test:9090"
POLICY = {
    "apiVersion": "servingopt.io/v1alpha1",
    "kind": "ServingPolicy",
    "metadata": {"name": "default"},
    "spec": {
        "namespaceSelector": {},
        "prometheusUrl": PROMETHEUS,
        "workload": {"allowedImages": ["*"], "allowedEnvNames": ["*"]},
    },
}


@dataclass(frozen=True)
class Step:
    """One re-plan of the replay: what went into the loop, what came out, the cluster."""

    inp: loop.LoopInput
    out: loop.LoopOutput
    workload: WorkloadState


class Recording(ServingoptPolicy):
    """Policy (e), recording every step with the Deployment's state it saw."""

    def __init__(self) -> None:
        super().__init__(on_step=self._record)
        self.steps: list[Step] = []
        self._workload = WorkloadState()

    def replan(self, now: float, history: History, current: Plan) -> Plan | None:
        self._workload = history.workload
        return super().replan(now, history, current)

    def _record(self, inp: loop.LoopInput, out: loop.LoopOutput) -> None:
        self.steps.append(Step(inp, out, self._workload))


def scenario_for(sample: str, optimistic: bool) -> Scenario:
    scenario = load_scenario(
        ROOT / "samples/modelservings" / f"{sample}.yaml",
        workload=ROOT / "samples/workloads" / f"{sample}.yaml",
    )
    scenario = replace(scenario, policy=ServingPolicy.model_validate(POLICY))
    if optimistic:
        scenario = replace(scenario, truth_factors=optimistic_factors(scenario, 0))
    return scenario


def replayed(scenario: Scenario, hours: float, seed: int = 0) -> list[Step]:
    trace = traces.diurnal(int(hours * 3600), peak=1.0, seed=seed)
    policy = Recording()
    replay(scenario, trace.scaled_to_peak(peak_for(scenario)), policy, seed=seed)
    return policy.steps


# -- the cluster a step's replay describes ------------------------------------------


def merged(live: dict[str, Any], apply: dict[str, Any]) -> dict[str, Any]:
    """The Deployment after servingopt's apply (and its strip of stale pool keys)."""
    out = copy.deepcopy(live)
    pod = out["spec"]["template"]["spec"]
    body = apply["spec"]["template"]["spec"]
    pod["nodeSelector"] = body["nodeSelector"]
    pod["tolerations"] = body["tolerations"]
    (patch,) = body["containers"]
    container = next(c for c in pod["containers"] if c["name"] == patch["name"])
    for key in ("image", "args"):
        if key in patch:
            container[key] = patch[key]
    env = {e["name"]: e for e in container.get("env") or []}
    env.update({e["name"]: e for e in patch.get("env") or []})
    container["env"] = list(env.values())
    for part, values in (patch.get("resources") or {}).items():
        container.setdefault("resources", {}).setdefault(part, {}).update(values)
    return out


@dataclass
class World:
    """What the mock API server serves for one step (mutable: one step after another)."""

    scenario: Scenario
    spec_doc: dict[str, Any]
    base: dict[str, Any]
    body: dict[str, Any] | None = None
    deployment: dict[str, Any] | None = None
    hpa: dict[str, Any] | None = None
    mix: dict[str, Any] | None = None
    spot: dict[str, Any] | None = None
    pods: list[dict[str, Any]] | None = None
    nodes: dict[str, dict[str, Any]] | None = None
    sample: MetricsSample | None = None

    def load(self, step: Step) -> None:
        inp, work = step.inp, step.workload
        spec, catalog = self.scenario.spec, self.scenario.catalog
        running = inp.running
        state = {
            "guard": inp.memory.to_dict(),
            "corrections": loop.corrections_to_dict(inp.corrections),
            "applied": {"config": running.to_dict(), "at": "1970-01-01T00:00:00Z", "generation": 1},
        }
        self.body = {
            "apiVersion": "servingopt.io/v1alpha1",
            "kind": "ModelServing",
            "metadata": {
                "name": self.scenario.name,
                "namespace": NS,
                "uid": UID,
                "generation": 1,
                "annotations": {m.STATE_ANNOTATION: json.dumps(state)},
            },
            "spec": self.spec_doc,
        }
        live = copy.deepcopy(self.base)
        live["metadata"].update(namespace=NS, uid="dep-uid", resourceVersion="7", generation=5)
        share = running.spot_share()
        placed = replace(running, capacity_type="on-demand") if share else running
        dep = merged(live, m.deployment_apply(live, spec, placed, catalog))
        dep["spec"]["replicas"] = work.desired
        self.mix = self.spot = None
        if share is not None:  # a spot mix: its CapacityMix and the spot copy
            on_demand, spot = share.split(work.desired)
            self.spot = m.spot_deployment_apply(live, self.body, spec, running, catalog)
            self.spot["metadata"]["generation"] = 1
            self.spot["spec"]["replicas"] = spot
            # The pods are counted on the user's Deployment: the sums are the replay's.
            self.spot["status"] = {"observedGeneration": 1, "replicas": 0, "updatedReplicas": 0}
            self.mix = m.mix_apply(self.body, spec, share)
            self.mix["spec"]["replicas"] = work.desired
            dep["spec"]["replicas"] = on_demand
        dep["status"] = {
            "observedGeneration": 5,
            "replicas": work.total,
            "updatedReplicas": work.updated,
            "readyReplicas": work.ready,
            "availableReplicas": work.available,
        }
        self.deployment = dep
        self.hpa = m.hpa_apply(self.body, spec, running)
        scaled = inp.autoscaler.last_scale_at if inp.autoscaler is not None else None
        if scaled is not None:  # the HPA controller's record of its last scale
            when = dt.datetime.fromtimestamp(scaled, dt.UTC)
            self.hpa["status"] = {"lastScaleTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
        container = dep["spec"]["template"]["spec"]["containers"][0]
        labels = dep["spec"]["selector"]["matchLabels"]
        types = catalog.by_name()
        self.pods, self.nodes = [], {}
        for itype, capacity, count in work.running:
            t = types[itype]
            for i in range(count):
                node = f"{itype}-{capacity}-{i}"
                allocatable = {
                    "cpu": f"{int((t.vcpu - t.system_reserved_cpu) * 1000)}m",
                    "memory": f"{int((t.memory_gi_b - t.system_reserved_memory_gi_b) * 1024)}Mi",
                }
                if t.gpu is not None:
                    allocatable[t.gpu.resource_name] = str(t.gpu.count)
                self.nodes[node] = {
                    "metadata": {
                        "name": node,
                        "labels": {LABEL_INSTANCE_TYPE: itype, LABEL_CAPACITY_TYPE: capacity},
                    },
                    "status": {"allocatable": allocatable},
                }
                self.pods.append(
                    {
                        "metadata": {"name": f"pod-{node}", "namespace": NS, "labels": labels},
                        "spec": {"nodeName": node, "containers": [container]},
                        "status": {"phase": "Running"},
                    }
                )
        demand, p99, replicas, peak = inp.history.points()
        self.sample = MetricsSample(
            request_rate=inp.demand_rps,
            p99_latency_ms=inp.observed_p99_ms,
            replicas=inp.replicas,
            demand_history=demand,
            p99_history=p99,
            replicas_history=replicas,
            peak_history=peak,
        )


def not_found() -> kmock.Response:
    return kmock.Response(status=404, payload={"kind": "Status", "code": 404})


def serve(server: kmock.RawHandler, world: World) -> dict[str, list[dict[str, Any]]]:
    name = world.scenario.name
    catalog = world.scenario.catalog.model_dump(by_alias=True, exclude_none=True, mode="json")
    target = world.scenario.spec.target_ref.name
    server[f"get {paths.servingpolicies()}"] << {"kind": "ServingPolicyList", "items": [POLICY]}
    server[f"get {paths.namespace(NS)}"] << {"metadata": {"name": NS, "labels": {}}}
    server[f"get {paths.instancecatalog('default')}"] << catalog
    server[f"get {paths.deployment(NS, target)}"] << (lambda: world.deployment)
    server[f"get {paths.pods(NS)}"] << (lambda: {"kind": "PodList", "items": world.pods})
    server[f"get {paths.hpas(NS)}"] << (lambda: {"kind": "List", "items": [world.hpa]})
    server[f"get {paths.hpa(NS, name)}"] << (lambda: world.hpa)
    server[f"get {paths.scaledobjects(NS)}"] << 404 << {"kind": "Status", "code": 404}
    spot = paths.deployment(NS, m.spot_deployment_name(target))
    mix = paths.capacitymix(NS, m.mix_name({"metadata": {"name": name}}))
    server[f"get {spot}"] << (lambda: world.spot or not_found())
    server[f"get {mix}"] << (lambda: world.mix or not_found())
    server[f"patch {spot}"] << {}
    server[f"patch {mix}"] << {}
    server[f"patch {paths.capacitymix_status(NS, name)}"] << {}
    server[f"post {paths.deployments(NS)}"] << {}
    server[f"post {paths.capacitymixes(NS)}"] << {}
    server[f"get {paths.modelservings(NS)}"] << (lambda: {"kind": "List", "items": [world.body]})
    written: dict[str, list[dict[str, Any]]] = {"status": [], "applies": []}
    server[f"patch {paths.modelserving_status(NS, name)}"] << (
        lambda r: written["status"].append(r.data) or {}
    )
    server[f"patch {paths.modelserving(NS, name)}"] << {}
    server[f"patch {paths.deployment(NS, target)}"] << (
        lambda r: written["applies"].append(r.data) or {}
    )
    server[f"patch {paths.hpa(NS, name)}"] << {}
    server[f"post {paths.events(NS)}"] << {}
    return written


class Recorded:
    """The metric source: what the replay's Prometheus would have answered."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def sample(self, request: SampleRequest) -> MetricsSample:
        assert self.world.sample is not None
        return self.world.sample


# -- comparing ----------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-12)
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    return bool(a == b)


def differences(replay_inp: loop.LoopInput, operator_inp: loop.LoopInput) -> list[str]:
    """The fields of the two loop inputs that differ (histories compared element-wise)."""
    return [
        f"{f.name}: replay {getattr(replay_inp, f.name)!r} != operator "
        f"{getattr(operator_inp, f.name)!r}"
        for f in fields(replay_inp)
        if not _same(getattr(replay_inp, f.name), getattr(operator_inp, f.name))
    ]


async def run_operator(scenario: Scenario, steps: list[Step]) -> None:
    spec_doc = yaml.safe_load(
        (ROOT / "samples/modelservings" / f"{scenario.name}.yaml").read_text()
    )["spec"]
    spec_doc["mode"] = "Auto"  # the replay acts as mode Auto does
    base = yaml.safe_load((ROOT / "samples/workloads" / f"{scenario.name}.yaml").read_text())
    world = World(scenario, spec_doc, base)
    for i, step in enumerate(steps):
        world.load(step)
        # A fresh API server per step: kmock keeps every request, and each new one is
        # matched against all of them.
        async with kmock.KubernetesScaffold() as server, kmock.Server(server):
            written = serve(server, world)
            seen: list[tuple[loop.LoopInput, loop.LoopOutput]] = []
            async with KubeClient.for_url(str(server.url), backoffs=()) as kube:
                deps = Deps(
                    kube=kube,
                    source_for=lambda _url: Recorded(world),
                    clock=lambda now=step.inp.now: now,
                    nodes=world.nodes or {},
                    on_step=lambda inp, out, seen=seen: seen.append((inp, out)),
                )
                assert world.body is not None
                result = await reconcile(deps, world.body)
        where = f"step {i} at {step.inp.now / 3600:.2f} h"
        assert seen, f"{where}: the reconcile did not reach the loop ({result})"
        ((inp, out),) = seen
        assert not differences(step.inp, inp), f"{where}: " + "\n".join(differences(step.inp, inp))
        assert out.proposal == step.out.proposal, where
        got, want = out.verdict, step.out.verdict
        assert (got.outcome, got.reason, got.message) == (want.outcome, want.reason, want.message)
        assert got.commands == want.commands and got.memory == want.memory, where
        assert out.corrections == step.out.corrections, where
        # ... and what the operator did with them: its outcome, its status, its writes.
        assert result.outcome == want.outcome, where
        (patch,) = written["status"]
        proposal = step.out.proposal
        if proposal is not None:
            wanted = st.summary(proposal.config, proposal.hourly_cost)
            assert patch["status"]["recommendation"] == wanted, where
        assert (result.writes > 0) == (want.outcome in ("Applied", "RolledBack")), where


# (sample, declared profiles optimistic, hours of the diurnal trace). The GPU classifier's
# first 8 hours hold, apply for a saving and for the SLO, wait out a rollout and the
# minimum interval; the CPU text model (response cache Auto) on slower-than-declared
# nodes learns corrections and applies under SLO risk.
CASES = {
    "resnet50-diurnal": ("resnet50-classifier", False, 8.0),
    "distilbert-diurnal-optimistic": ("distilbert-sentiment", True, 12.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_operator_takes_the_replays_steps(case: str) -> None:
    sample, optimistic, hours = CASES[case]
    scenario = scenario_for(sample, optimistic)
    steps = replayed(scenario, hours)
    assert steps, "the replay re-planned at least once"
    await run_operator(scenario, steps)


async def test_a_replay_with_its_own_rules_is_caught() -> None:
    """The comparison can fail: a replay proposing with the rules it had before the loop
    was shared (batching, cache and variant always set, whatever the spec allows)
    differs from the operator at its first step on a model whose cache is Auto."""

    def unmasked(decision: Any, spec: Any, policy: Any) -> Proposal | None:
        masked = proposal(decision, spec, policy)
        if masked is None:
            return None
        config = replace(
            masked.config,
            variant=decision.variant,
            max_batch_size=decision.max_batch_size,
            max_queue_delay_us=round(decision.max_queue_delay_ms * 1000),
            cache_enabled=None,
            cache_size_mib=None,
        )
        return replace(masked, config=config)

    scenario = scenario_for("distilbert-sentiment", optimistic=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core, "proposal", unmasked)
        steps = replayed(scenario, hours=1.0)
    with pytest.raises(AssertionError, match="step 0 at"):
        await run_operator(scenario, steps)
