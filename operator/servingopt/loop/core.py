"""One pass of servingopt's loop, pure: observe -> plan -> settle -> guard -> proposal.

:func:`step` is the only place where the sequence lives. The kopf reconcile
(``controller/reconcile.py``) reads the cluster and Prometheus into a :class:`LoopInput`,
calls it and executes the verdict's commands; the replay (``simulate/adaptive.py``)
builds the same input from its own record and applies the verdict to its emulated
Deployment and HPA; ``servingopt plan`` builds it from a history CSV. No I/O, no clock:
``now`` comes in, the planner is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from servingopt.api import InstanceCatalog, ModelServingSpec, ServingPolicySpec
from servingopt.guard import GuardInput, GuardMemory, Verdict, decide, learning_since, settle
from servingopt.optimize.ranking import spot_terms
from servingopt.values import (
    AutoscalerState,
    CorrectionKey,
    MetricHistory,
    Observation,
    ProfileCorrection,
    Proposal,
    RunningConfig,
    ServingConfig,
    SpotShare,
    canonical_behavior,
)

if TYPE_CHECKING:
    from servingopt.optimize.decision import Decision

Planner = Callable[[ModelServingSpec, InstanceCatalog, ServingPolicySpec, Observation], "Decision"]

#: The guard's reason when it holds because the planner raised.
PLANNER_FAILED = "PlannerFailed"
EXCEPTION_TEXT_LIMIT = 300

# Corrections are kept between steps rounded, with the evidence count capped: the
# operator's state annotation then only changes when what was learned changes (an
# unchanged situation sends no write), and every caller plans with what it would read back.
KEPT_FACTOR_DIGITS = 3
KEPT_OBSERVATIONS_CAP = 20


@dataclass(frozen=True, eq=False)
class LoopInput:
    """Everything one step looks at: what the caller read, remembered and was told.

    ``spec`` is the ModelServing's spec as the planner should see it (the operator fills
    an unset ``resources`` from the live Deployment); ``running`` is what the workload
    runs, as the operator reads it back from the cluster; ``history`` the metric
    history (the last rows are the running configuration's since ``memory`` says its
    last change was seen rolled out); ``replicas`` the ready replicas now.
    """

    now: float
    mode: str
    spec: ModelServingSpec
    catalog: InstanceCatalog
    policy: ServingPolicySpec
    running: ServingConfig
    replicas: int | None = None
    history: MetricHistory = field(default_factory=MetricHistory)
    demand_rps: float | None = None
    """Demand now (requests/s), planned for when there is no history."""
    plan_for_rps: float | None = None
    """Demand to plan for whatever the history says (``servingopt plan --rps``)."""
    observed_p99_ms: float | None = None
    metrics_available: bool = False
    metrics_message: str = ""
    memory: GuardMemory = field(default_factory=GuardMemory)
    corrections: Mapping[CorrectionKey, ProfileCorrection] = field(default_factory=dict)
    current_hourly: float | None = None
    """$/h the running pods cost now (None: unknown)."""
    rollout_in_flight: bool = False
    rollout_stalled: str = ""
    namespace_other_hourly: float = 0.0
    cache_hit_rate: float | None = None
    autoscaler: AutoscalerState | None = None
    """The owned HPA as read (None: none runs)."""


@dataclass(frozen=True, eq=False)
class LoopOutput:
    """What one step decided, and what to remember for the next."""

    verdict: Verdict
    proposal: Proposal | None = None
    """The plan as a configuration to apply (HPA target settled), None without a plan."""
    decision: Decision | None = None
    corrections: dict[CorrectionKey, ProfileCorrection] = field(default_factory=dict)
    """Learned corrections as kept for the next step (rounded)."""
    planner_error: Exception | None = None
    """What the planner raised (the verdict then holds with reason PlannerFailed)."""

    @property
    def memory(self) -> GuardMemory:
        return self.verdict.memory


def step(inp: LoopInput, planner: Planner) -> LoopOutput:
    """Observe, plan, settle the HPA target, guard: the operator's decision for ``inp``."""
    decision: Decision | None = None
    proposed: Proposal | None = None
    error: Exception | None = None
    corrections = dict(inp.corrections)
    if inp.metrics_available:
        try:
            decision = planner(inp.spec, inp.catalog, inp.policy, observation(inp))
        except Exception as failure:  # the planner is pure; a bug there must not stop the loop
            error = failure
        else:
            proposed = proposal(decision, inp.spec, inp.policy)
            if proposed is not None:
                proposed = settle(proposed, inp.running)
            corrections = kept(decision.corrections)
    verdict = decide(guard_input(inp, proposed, decision))
    if error is not None:
        verdict = _with_planner_failure(verdict, exception_summary(error))
    if verdict.payback and decision is not None and proposed is not None:
        decision = replace(decision, reasons=_with_payback(decision.reasons, verdict.payback))
        proposed = replace(proposed, reasons=_with_payback(proposed.reasons, verdict.payback))
    return LoopOutput(verdict, proposed, decision, corrections, error)


#: The decision's reason giving what a change saves against what its rollout costs.
ROLLOUT_REASON = "rollout: "


def _with_payback(reasons: tuple[str, ...], payback: str) -> tuple[str, ...]:
    """The plan's reasons with the guard's payback figure last (replacing one a
    decision taken again already carries)."""
    kept_reasons = tuple(r for r in reasons if not r.startswith(ROLLOUT_REASON))
    return (*kept_reasons, ROLLOUT_REASON + payback)


def guard_input(
    inp: LoopInput, proposed: Proposal | None, decision: Decision | None = None
) -> GuardInput:
    """The guard's input. The running configuration's cost, for the saving, is the
    planner's pricing of it when the planner could price it (whole nodes, as the
    proposal is priced), else what its pods cost now."""
    running = decision.running_hourly_cost if decision is not None else None
    return GuardInput(
        now=inp.now,
        mode=inp.mode,
        policy=inp.policy,
        slo_p99_ms=inp.spec.slo.latency_p99_ms,
        proposal=proposed,
        current=inp.running,
        current_hourly=running if running is not None else inp.current_hourly,
        metrics_available=inp.metrics_available,
        metrics_message=inp.metrics_message,
        observed_p99_ms=inp.observed_p99_ms,
        rollout_in_flight=inp.rollout_in_flight,
        rollout_stalled=inp.rollout_stalled,
        metrics_window_s=inp.spec.metrics.window_seconds,
        namespace_other_hourly=inp.namespace_other_hourly,
        memory=inp.memory,
        startup_seconds=float(inp.spec.autoscaling.startup_seconds),
        provisioning_seconds=provisioning_seconds(inp.catalog, proposed),
        model_error=decision.model_error if decision is not None else None,
        autoscaler=inp.autoscaler,
    )


def provisioning_seconds(catalog: InstanceCatalog, proposed: Proposal | None) -> float:
    """How long a node of the proposed instance type takes to become ready (0 when
    the catalog does not list it)."""
    itype = catalog.by_name().get(proposed.config.instance_type or "") if proposed else None
    return float(itype.provisioning_seconds) if itype is not None else 0.0


def attribution_start(memory: GuardMemory, now: float) -> float | None:
    """Where the metrics start to be the running configuration's own: None when
    servingopt never changed the workload, else from when its last change was seen
    rolled out (nothing yet while a rollout mixes old and new pods)."""
    if memory.rolled_at is None:
        return None
    since = learning_since(memory)
    return now if since is None else since


def running_config(config: ServingConfig, replicas: int | None) -> RunningConfig:
    delay = config.max_queue_delay_us
    return RunningConfig(
        instance_type=config.instance_type,
        variant=config.variant,
        capacity_type=config.capacity_type,
        replicas=replicas,
        max_batch_size=config.max_batch_size,
        max_queue_delay_ms=delay / 1000.0 if delay is not None else None,
        cache_enabled=config.cache_enabled,
        cache_size_mib=config.cache_size_mib,
    )


def observation(inp: LoopInput) -> Observation:
    """The planner's view. Intervals since the attribution start (all of them when
    servingopt never changed the workload) are the running configuration's, so the
    planner can compare observed p99 with its prediction and learn; each with the
    replicas that served it (the current count where the history has none)."""
    history, current = inp.history, inp.running
    n = len(history)
    times = history.timestamps_s
    since = attribution_start(inp.memory, inp.now)
    attributed = np.ones(n, dtype=bool) if since is None else times >= since
    measured = history.replicas
    served = np.where(np.isnan(measured), float(inp.replicas or 0), measured)
    batch = float(current.max_batch_size) if current.max_batch_size else np.nan
    return Observation(
        timestamps_s=times,
        requests_per_second=history.requests_per_second,
        p99_latency_ms=history.p99_latency_ms,
        replicas=np.where(attributed & (served > 0), served, np.nan),
        instance_types=_labels(current.instance_type or "", attributed, times),
        variants=_labels(current.variant or "", attributed, times),
        max_batch_sizes=np.where(attributed, batch, np.nan),
        peak_requests_per_second=history.peak_rps,
        demand_rps=inp.plan_for_rps if inp.plan_for_rps is not None or n else inp.demand_rps,
        cache_hit_rate=inp.cache_hit_rate,
        current=running_config(current, inp.replicas),
        corrections=dict(inp.corrections),
        namespace_spend_hourly=inp.namespace_other_hourly,
    )


def _labels(label: str, attributed: np.ndarray, times: np.ndarray) -> tuple[str, ...]:
    """``label`` where attributed, "" elsewhere (a suffix of the increasing times)."""
    n = int(attributed.size)
    first = int(np.argmax(attributed)) if attributed.any() else n
    if attributed[first:].all():
        return ("",) * first + (label,) * (n - first)
    return tuple(label if a else "" for a in attributed.tolist())


def proposal(
    decision: Decision, spec: ModelServingSpec, policy: ServingPolicySpec
) -> Proposal | None:
    """The Decision as a configuration to apply (None when there is no configuration):
    what the spec does not let servingopt set (batching off, cache Off, no variants)
    stays unset, as the operator would read it back. A spot decision carries the
    policy's split when it keeps replicas on-demand."""
    if decision.instance_type is None or decision.capacity_type is None:
        return None
    share = SpotShare(*spot_terms(spec, policy))
    mixed = decision.capacity_type == "spot" and share.mixed
    batching = spec.batching.enabled
    caching = spec.caching.mode != "Off"
    config = ServingConfig(
        instance_type=decision.instance_type,
        pool=decision.pool,
        capacity_type=decision.capacity_type,
        variant=decision.variant if spec.variants else None,
        min_replicas=decision.min_replicas,
        max_replicas=decision.max_replicas,
        max_batch_size=decision.max_batch_size if batching else None,
        max_queue_delay_us=round(decision.max_queue_delay_ms * 1000) if batching else None,
        scaling_target=round(decision.target_value, 3),
        behavior=canonical_behavior(dict(decision.behavior)),
        cache_enabled=decision.cache.enabled if caching else None,
        cache_size_mib=decision.cache.size_mib if caching and decision.cache.enabled else None,
        max_spot_percent=share.max_spot_percent if mixed else None,
        on_demand_base=share.on_demand_base if mixed else None,
    )
    return Proposal(
        config=config,
        hourly_cost=decision.hourly_cost,
        slo_feasible=decision.slo_feasible,
        p99_latency_ms=decision.p99_latency_ms,
        replicas=decision.replicas,
        reasons=tuple(decision.reasons),
    )


def kept(
    corrections: Mapping[CorrectionKey, ProfileCorrection],
) -> dict[CorrectionKey, ProfileCorrection]:
    """Corrections as kept between steps (what :func:`corrections_from_dict` of
    :func:`corrections_to_dict` gives back)."""
    return corrections_from_dict(corrections_to_dict(corrections))


def corrections_to_dict(corrections: Mapping[CorrectionKey, ProfileCorrection]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (itype, variant), c in sorted(corrections.items()):
        kept_one: dict[str, Any] = {
            "factor": round(c.factor, KEPT_FACTOR_DIGITS),
            "observations": min(c.observations, KEPT_OBSERVATIONS_CAP),
        }
        if c.evidence_at is not None:
            kept_one["evidenceAt"] = round(c.evidence_at, 3)
        out[f"{itype}|{variant}"] = kept_one
    return out


def corrections_from_dict(data: Mapping[str, Any]) -> dict[CorrectionKey, ProfileCorrection]:
    out: dict[CorrectionKey, ProfileCorrection] = {}
    for key, raw in data.items():
        itype, _, variant = key.partition("|")
        try:
            at = raw.get("evidenceAt")
            out[(itype, variant)] = ProfileCorrection(
                factor=float(raw["factor"]),
                observations=int(raw.get("observations", 0)),
                evidence_at=float(at) if isinstance(at, int | float) else None,
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out


def exception_summary(error: BaseException, limit: int = EXCEPTION_TEXT_LIMIT) -> str:
    """``Type: message`` on one line, at most ``limit`` characters: what a condition or
    an Event may say about an exception (the traceback goes to the log only)."""
    text = f"{type(error).__name__}: {' '.join(str(error).split())}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _with_planner_failure(verdict: Verdict, failure: str) -> Verdict:
    """The guard's hold for want of a plan, saying why the planner gave none. (A
    rollback or a hold for missing metrics does not need the planner: those stand.)"""
    if verdict.reason != "NoPlan":
        return verdict
    message = f"the planner failed ({failure}); holding the current configuration"
    return replace(verdict, reason=PLANNER_FAILED, message=message)
