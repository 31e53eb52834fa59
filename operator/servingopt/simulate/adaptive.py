"""Policy (e): servingopt itself, the operator's loop run on the replay's own record.

Every ``replan_seconds`` it builds a :class:`~servingopt.loop.LoopInput` from what the
replay has recorded so far — exactly what the operator would read from Prometheus and
the cluster — and calls :func:`servingopt.loop.step`, the function the kopf reconcile
calls: the same observation (the last 49 h of demand, p99 and replicas; attributed to
the running configuration since its last change was seen rolled out), the same planner
with the ModelServing's *declared* profiles and the corrections learned so far, the
same proposal rules, HPA settling and guard (minimum saving, minimum interval, replica
step, SLO-at-risk overrides, rollback, one rollout at a time). An applied verdict
changes the Deployment (a rolling update when the placement, variant or batching
changes) and the HPA it owns (bounds, target and behavior, emulated by :mod:`.hpa`).

What the replay hands the loop, and how it maps to the operator's reads:

* the history: per-minute demand, p99 and ready replicas (Prometheus' range queries);
* ``running``: the configuration last applied, as the operator reads it back
  (:func:`servingopt.loop.running.as_read_back`);
* replicas, cost and rollout: the emulated Deployment's status and pods
  (:class:`~.engine.WorkloadState`; cost priced as the operator prices pods on nodes);
* the observed p99: the highest per-minute p99 of the last ``RECENT_MINUTES``;
* memory and corrections: the previous step's, as the operator keeps them in its state
  annotation.

A ``spot`` decision runs as a mix: at most the policy's ``spot.maxPercent`` of the
replicas on spot and ``spot.onDemandBaseReplicas`` on-demand (what the planner prices).
No future is visible: the history ends at the re-plan time. Before the replay starts the
workload is tuned once from the opening demand (no guard: the starting point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from servingopt import loop
from servingopt.guard import ApplyConfig, GuardMemory
from servingopt.loop.running import as_read_back, running_hourly
from servingopt.optimize import plan
from servingopt.optimize.decision import Decision
from servingopt.values import (
    HISTORY_SECONDS,
    AutoscalerState,
    CorrectionKey,
    MetricHistory,
    Observation,
    ProfileCorrection,
)
from servingopt.values import ServingConfig as Applied

from .engine import History, HpaScaler, Plan, WorkloadState
from .hpa import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, Hpa, HpaSpec, rules_from_behavior
from .policies import opening_rate
from .traces import Trace
from .world import Scenario, ServingConfig

#: Minutes of history handed to the planner (what the operator reads from Prometheus).
HISTORY_MINUTES = HISTORY_SECONDS // 60
#: Minutes of observed p99 that count as "the current p99" for the guard.
RECENT_MINUTES = 5

StepHook = Callable[[loop.LoopInput, loop.LoopOutput], None]


@dataclass
class ServingoptPolicy:
    name: str = "servingopt"
    replan_seconds: int | None = None
    """Re-plan period; unset: the ServingPolicy's ``replanIntervalSeconds``."""
    corrections: dict[CorrectionKey, ProfileCorrection] = field(default_factory=dict)
    memory: GuardMemory = field(default_factory=GuardMemory)
    applied: Applied | None = None
    """The configuration last applied, as the operator reads it back."""
    on_step: StepHook | None = None
    """Called with every loop step's input and output (the equivalence test records them)."""
    _scenario: Scenario | None = None
    _scaler: HpaScaler | None = None

    @property
    def scenario(self) -> Scenario:
        if self._scenario is None:
            raise RuntimeError("start() first")
        return self._scenario

    # -- start: plan from the opening demand only ------------------------------------

    def start(self, scenario: Scenario, trace: Trace) -> Plan:
        self._scenario = scenario
        if self.replan_seconds is None:
            self.replan_seconds = scenario.policy.spec.replan_interval_seconds
        initial = scenario.initial_config()
        current = loop.running_config(self._as_read(initial), None)
        observation = Observation(demand_rps=opening_rate(trace), current=current)
        decision = plan(scenario.spec, scenario.catalog, scenario.policy.spec, observation)
        self.corrections = loop.kept(decision.corrections)
        proposal = loop.proposal(decision, scenario.spec, scenario.policy.spec)
        if proposal is None:  # nothing feasible to plan: stay where the workload is
            return self._initial_hpa(initial, trace)
        self.applied = as_read_back(proposal.config, scenario.spec)
        self.memory = self.memory.evolve(last_change_at=0.0, rolled_at=0.0)
        spec = self._hpa_spec(self.applied)
        self._scaler = HpaScaler(Hpa(spec), scenario.spec.autoscaling.metric)
        start = min(spec.max_replicas, max(spec.min_replicas, decision.replicas))
        return Plan(self._serving_config(self.applied), self._scaler, start, _why(decision))

    def _initial_hpa(self, initial: ServingConfig, trace: Trace) -> Plan:
        from .policies import hpa_plan

        plan_ = hpa_plan(self.scenario, initial, trace, "no feasible plan: user's HPA")
        assert isinstance(plan_.scaler, HpaScaler)
        self._scaler = plan_.scaler
        return plan_

    # -- re-plan: the operator's loop step, then apply --------------------------------

    def replan(self, now: float, history: History, current: Plan) -> Plan | None:
        inp = self.loop_input(now, history, current)
        out = loop.step(inp, plan)
        if self.on_step is not None:
            self.on_step(inp, out)
        self.memory = out.memory
        self.corrections = out.corrections
        applies = [c for c in out.verdict.commands if isinstance(c, ApplyConfig)]
        if not applies:
            return None
        self.applied = as_read_back(applies[-1].config, self.scenario.spec)
        spec = self._hpa_spec(self.applied)
        scaler = self._scaler or HpaScaler(Hpa(spec))
        scaler.update(spec, self.scenario.spec.autoscaling.metric)
        self._scaler = scaler
        why = _why(out.decision) if out.decision is not None else out.verdict.message
        return Plan(
            self._serving_config(self.applied),
            scaler,
            current.replicas,
            f"{out.verdict.reason}: {why}",
        )

    def loop_input(self, now: float, history: History, current: Plan) -> loop.LoopInput:
        """What the operator would read at ``now``, from the replay's record."""
        s = self.scenario
        n = min(len(history), HISTORY_MINUTES)
        recent = history.p99_ms.last(min(n, RECENT_MINUTES))
        recent = recent[np.isfinite(recent)]
        workload = history.workload
        return loop.LoopInput(
            now=now,
            mode="Auto",
            spec=s.spec,
            catalog=s.catalog,
            policy=s.policy.spec,
            running=self.applied or self._as_read(current.config),
            replicas=workload.ready,
            history=MetricHistory(
                timestamps_s=history.start_minute.last(n),
                requests_per_second=history.rps.last(n),
                p99_latency_ms=history.p99_ms.last(n),
                replicas=history.replicas.last(n),
                peak_rps=history.peak_rps.last(n),
            ),
            demand_rps=float(history.rps.last(1)[0]) if n else None,
            observed_p99_ms=float(recent.max()) if recent.size else None,
            metrics_available=n > 0,
            memory=self.memory,
            corrections=self.corrections,
            current_hourly=running_hourly(s.catalog, s.spec, workload.running),
            rollout_in_flight=workload.rollout_in_flight,
            autoscaler=self._autoscaler_state(workload),
        )

    def _autoscaler_state(self, workload: WorkloadState) -> AutoscalerState | None:
        """The replay's HPA as the operator reads it (only the one servingopt applied)."""
        if self.applied is None or self._scaler is None:
            return None
        hpa = self._scaler.hpa
        return AutoscalerState(
            healthy=True,
            desired_replicas=workload.desired,
            ready_replicas=workload.ready,
            max_replicas=hpa.spec.max_replicas,
            last_scale_at=hpa.last_scale_at,
        )

    # -- translation ----------------------------------------------------------------

    def _as_read(self, config: ServingConfig) -> Applied:
        """A configuration servingopt did not apply (the workload as it starts), as the
        operator reads the Deployment: no HPA of its own (the replay's starting HPA is
        the user's; the operator would refuse to add a second one)."""
        spec = self.scenario.spec
        batching = spec.batching.enabled
        itype = self.scenario.catalog.by_name().get(config.instance_type)
        return Applied(
            instance_type=config.instance_type,
            pool=itype.pool if itype is not None else None,
            capacity_type=config.capacity_type,
            variant=config.variant if spec.variants else None,
            max_batch_size=config.max_batch if batching else None,
            max_queue_delay_us=round(config.max_delay_ms * 1000) if batching else None,
        )

    def _serving_config(self, target: Applied) -> ServingConfig:
        spot = self.scenario.policy.spec.spot
        capacity = target.capacity_type or "on-demand"
        return ServingConfig(
            instance_type=target.instance_type or "",
            capacity_type=capacity,
            variant=target.variant or self.scenario.initial_config().variant,
            max_batch=target.max_batch_size or 1,
            max_delay_ms=(target.max_queue_delay_us or 0) / 1000.0,
            spot_percent=spot.max_percent if capacity == "spot" else 100,
            on_demand_base=spot.on_demand_base_replicas if capacity == "spot" else 0,
        )

    def _hpa_spec(self, target: Applied) -> HpaSpec:
        a = self.scenario.spec.autoscaling
        behavior: dict[str, Any] = target.behavior_dict() or {}
        low = target.min_replicas or a.min_replicas
        high = max(low, target.max_replicas or a.max_replicas)
        return HpaSpec(
            low,
            high,
            max(target.scaling_target or 1.0, 1e-6),
            scale_up=rules_from_behavior(behavior.get("scaleUp"), DEFAULT_SCALE_UP),
            scale_down=rules_from_behavior(behavior.get("scaleDown"), DEFAULT_SCALE_DOWN),
        )


def _why(decision: Decision) -> str:
    return "; ".join(decision.reasons[:2]) if decision.reasons else "plan"
