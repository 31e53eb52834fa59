"""Policy (e): servingopt itself, re-planning during the replay with what it has seen.

Every ``replan_seconds`` it builds an :class:`~servingopt.optimize.Observation` from the
replay's own per-minute history so far — demand, observed p99, replicas and the
configuration that produced them — and calls :func:`servingopt.optimize.plan` (the
operator's planner) with the ModelServing's *declared* profiles and the corrections it
learned from earlier observations.  The Decision goes through the operator's guard
(:func:`servingopt.guard.decide`: minimum saving, minimum interval between changes,
replica step, SLO-at-risk overrides, one rollout at a time) and, when applied, changes
the Deployment (a rolling update when the placement, variant or batching changes) and
the HPA it owns (bounds, target and behavior, emulated by :mod:`.hpa`).

A ``spot`` decision runs as a mix: at most the policy's ``spot.maxPercent`` of the
replicas on spot and ``spot.onDemandBaseReplicas`` on-demand (what the planner prices).
No future is visible: the history ends at the re-plan time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from servingopt.guard import GuardInput, decide, settle
from servingopt.guard.types import ApplyConfig, GuardMemory, Proposal, canonical_behavior
from servingopt.guard.types import ServingConfig as GuardConfig
from servingopt.model import ProfileCorrection
from servingopt.optimize import Observation, RunningConfig, plan
from servingopt.optimize.decision import Decision
from servingopt.optimize.observation import HISTORY_SECONDS, CorrectionKey

from .engine import History, HpaScaler, Plan
from .hpa import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, Hpa, HpaSpec, rules_from_behavior
from .policies import opening_rate
from .traces import Trace
from .world import Scenario, ServingConfig

#: Minutes of history handed to the planner (what the operator reads from Prometheus).
HISTORY_MINUTES = HISTORY_SECONDS // 60
#: Minutes of observed p99 that count as "the current p99" for the guard.
RECENT_MINUTES = 5


@dataclass
class ServingoptPolicy:
    name: str = "servingopt"
    replan_seconds: int | None = None
    """Re-plan period; unset: the ServingPolicy's ``replanIntervalSeconds``."""
    corrections: dict[CorrectionKey, ProfileCorrection] = field(default_factory=dict)
    memory: GuardMemory = field(default_factory=GuardMemory)
    applied: GuardConfig | None = None
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
        observation = Observation(demand_rps=opening_rate(trace), current=_running(initial, None))
        decision = self._plan(observation)
        target = _guard_config(decision, scenario)
        if target is None:  # nothing feasible to plan: stay where the workload is
            return self._initial_hpa(initial, trace)
        self.applied = target
        self.memory = self.memory.evolve(last_change_at=0.0)
        config = self._serving_config(target)
        spec = self._hpa_spec(target)
        self._scaler = HpaScaler(Hpa(spec), decision.scaling_metric_type)
        start = min(spec.max_replicas, max(spec.min_replicas, decision.replicas))
        return Plan(config, self._scaler, start, _why(decision))

    def _initial_hpa(self, initial: ServingConfig, trace: Trace) -> Plan:
        from .policies import hpa_plan

        plan_ = hpa_plan(self.scenario, initial, trace, "no feasible plan: user's HPA")
        assert isinstance(plan_.scaler, HpaScaler)
        self._scaler = plan_.scaler
        return plan_

    # -- re-plan: observe, plan, guard, apply -----------------------------------------

    def replan(self, now: float, history: History, current: Plan) -> Plan | None:
        observation = self._observe(history, current)
        decision = self._plan(observation)
        proposal = _proposal(decision, self.scenario)
        recent = [p for p in history.p99_ms.last(RECENT_MINUTES).tolist() if np.isfinite(p)]
        running = self.applied or _as_guard(current.config, self.scenario)
        if proposal is not None:  # as the operator does: keep a target within tolerance
            proposal = settle(proposal, running)
        verdict = decide(
            GuardInput(
                now=now,
                mode="Auto",
                policy=self.scenario.policy.spec,
                slo_p99_ms=self.scenario.slo_ms,
                proposal=proposal,
                current=running,
                current_hourly=self._hourly(current.config, history),
                metrics_available=len(history) > 0,
                observed_p99_ms=max(recent) if recent else None,
                rollout_in_flight=history.rolling,
                memory=self.memory,
            )
        )
        self.memory = verdict.memory
        applies = [c for c in verdict.commands if isinstance(c, ApplyConfig)]
        if not applies:
            return None
        target = applies[-1].config
        self.applied = target
        config = self._serving_config(target)
        scaler = self._scaler or HpaScaler(Hpa(self._hpa_spec(target)))
        scaler.update(self._hpa_spec(target), decision.scaling_metric_type)
        self._scaler = scaler
        return Plan(config, scaler, current.replicas, f"{verdict.reason}: {_why(decision)}")

    def _hourly(self, config: ServingConfig, history: History) -> float | None:
        """What the running configuration costs now (replicas x their share of a node)."""
        if not len(history):
            return None
        price = self.scenario.replica_price(config)
        if config.capacity_type == "spot":  # a mix: price the on-demand share too
            od = self.scenario.replica_price(replace(config, capacity_type="on-demand"))
            share = config.spot_percent / 100.0
            price = share * price + (1.0 - share) * od
        return max(float(history.replicas.last(1)[0]), 1.0) * price

    def _plan(self, observation: Observation) -> Decision:
        s = self.scenario
        decision = plan(s.spec, s.catalog, s.policy.spec, observation)
        self.corrections = dict(decision.corrections)
        return decision

    def _observe(self, history: History, current: Plan) -> Observation:
        n = min(len(history), HISTORY_MINUTES)
        return Observation(
            timestamps_s=history.start_minute.last(n),
            requests_per_second=history.rps.last(n),
            p99_latency_ms=history.p99_ms.last(n),
            replicas=history.replicas.last(n),
            instance_types=tuple(history.instance_types[-n:]) if n else (),
            variants=tuple(history.variants[-n:]) if n else (),
            max_batch_sizes=history.max_batch.last(n),
            current=_running(
                current.config, round(float(history.replicas.last(1)[0])) if n else None
            ),
            corrections=dict(self.corrections),
        )

    # -- translation ----------------------------------------------------------------

    def _serving_config(self, target: GuardConfig) -> ServingConfig:
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

    def _hpa_spec(self, target: GuardConfig) -> HpaSpec:
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


def _running(config: ServingConfig, replicas: int | None) -> RunningConfig:
    return RunningConfig(
        instance_type=config.instance_type,
        variant=config.variant,
        capacity_type=config.capacity_type,
        replicas=replicas,
        max_batch_size=config.max_batch,
        max_queue_delay_ms=config.max_delay_ms,
    )


def _guard_config(decision: Decision, scenario: Scenario) -> GuardConfig | None:
    proposal = _proposal(decision, scenario)
    return None if proposal is None else proposal.config


def _proposal(decision: Decision, scenario: Scenario) -> Proposal | None:
    if decision.instance_type is None or decision.capacity_type is None:
        return None
    config = GuardConfig(
        instance_type=decision.instance_type,
        pool=decision.pool,
        capacity_type=decision.capacity_type,
        variant=decision.variant,
        min_replicas=decision.min_replicas,
        max_replicas=decision.max_replicas,
        max_batch_size=decision.max_batch_size,
        max_queue_delay_us=round(decision.max_queue_delay_ms * 1000),
        scaling_target=round(decision.target_value, 3),
        behavior=canonical_behavior(dict(decision.behavior)),
    )
    return Proposal(
        config,
        decision.hourly_cost,
        decision.slo_feasible,
        decision.p99_latency_ms,
        decision.replicas,
        tuple(decision.reasons),
    )


def _as_guard(config: ServingConfig, scenario: Scenario) -> GuardConfig:
    return GuardConfig(
        instance_type=config.instance_type,
        capacity_type=config.capacity_type,
        variant=config.variant,
        max_batch_size=config.max_batch,
        max_queue_delay_us=round(config.max_delay_ms * 1000),
    )


def _why(decision: Decision) -> str:
    return "; ".join(decision.reasons[:2]) if decision.reasons else "plan"
