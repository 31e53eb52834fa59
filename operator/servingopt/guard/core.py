"""The guard: policy and safety between the planner and the cluster. Pure.

``decide`` looks at what the planner proposes, what runs now, the live metrics and the
ServingPolicy, and returns a :class:`Verdict` with the commands to execute. Order of
the checks (the first that applies wins):

1. mode ``Off``: remove the owned HPA and release the workload's fields.
2. rollback: a stalled rollout (pods Pending past the policy's rollout timeout, or the
   Deployment's progress deadline exceeded), or p99 above the SLO for the policy's
   breach window after a change, returns to the last configuration that served within
   the SLO (and blocks the bad one for a while).
3. missing or stale metrics: hold. Nothing scales down or moves without demand.
4. no proposal, or the proposal equals what runs: nothing to do.
5. a rollout in flight: hold (at most one per workload).
6. budgets: refuse proposals above the ModelServing's or the namespace's $/h budget.
7. mode ``Recommend``: status only.
8. unless the SLO is at risk (and the HPA cannot absorb it: a healthy HPA below its
   maximum that has pods starting, or scaled within a metrics window plus a start-up,
   is already answering the load, and its effect is not in the observed p99 yet):
   minimum saving, the change paying for its own rollout
   within the policy's payback horizon (:mod:`~servingopt.guard.payback`), minimum
   interval between changes, maintenance windows, recently rolled-back configurations.
9. apply, with minReplicas moved by at most the policy's replica step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from servingopt.api.servingpolicy import MaintenanceWindow, ServingPolicySpec
from servingopt.values import AutoscalerState, Proposal, ServingConfig

from .payback import Payback, payback
from .types import ApplyConfig, GuardMemory, ReleaseWorkload, RemoveOwnedHpa, Verdict

TARGET_TOLERANCE = 0.05  # HPA targets closer than this to the current one are not a change
AT_RISK_FRACTION = 0.9  # observed p99 above this share of the SLO counts as "at risk"
BLOCK_AFTER_ROLLBACK_S = 3600.0  # minimum time a rolled-back configuration stays blocked
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class GuardInput:
    """Everything the guard looks at; built by the controller, no I/O here."""

    now: float  # unix seconds
    mode: str
    policy: ServingPolicySpec
    slo_p99_ms: float
    proposal: Proposal | None
    current: ServingConfig
    current_hourly: float | None = None
    metrics_available: bool = False
    metrics_message: str = ""
    observed_p99_ms: float | None = None
    rollout_in_flight: bool = False
    rollout_stalled: str = ""  # why the rollout is stalled ("" when it is not)
    metrics_window_s: float = 0.0  # a p99 judges a configuration once it served this long
    namespace_other_hourly: float = 0.0
    memory: GuardMemory = field(default_factory=GuardMemory)
    startup_seconds: float = 0.0
    """How long a new pod takes to serve once placed (spec.autoscaling.startupSeconds)."""
    provisioning_seconds: float = 0.0
    """How long a node of the proposed instance type takes to become ready (catalog)."""
    model_error: float | None = None
    """How wrong the planner's model has been (relative capacity error; None: unknown)."""
    autoscaler: AutoscalerState | None = None
    """The owned HPA, when one runs."""


def decide(inp: GuardInput) -> Verdict:
    """The verdict for one reconcile."""
    memory = _track(inp)
    if inp.mode == "Off":
        return Verdict(
            "Off",
            "ModeOff",
            "mode is Off: the owned HPA is removed and the workload left as it is",
            (RemoveOwnedHpa(), ReleaseWorkload()),
            memory,
        )
    stalled = _stalled(inp, memory)
    if stalled is not None:
        return stalled
    rollback = _rollback(inp, memory)
    if rollback is not None:
        return rollback
    if not inp.metrics_available:
        return _hold(memory, "MetricsUnavailable", f"holding: {inp.metrics_message}")
    proposal = inp.proposal
    if proposal is None:
        return _hold(memory, "NoPlan", "the planner returned no configuration")
    target = _step_limited(proposal.config, inp.current, inp.policy.guardrails.max_replica_step)
    if target == inp.current:
        return Verdict(
            "Unchanged",
            "UpToDate",
            "the workload runs the recommended configuration",
            memory=memory,
            target=target,
        )
    if inp.rollout_in_flight:
        return _hold(memory, "RolloutInProgress", "a rollout of the workload is still in flight")
    refused = _over_budget(inp, proposal)
    if refused:
        return Verdict("Refused", "BudgetExceeded", refused, memory=memory)
    if inp.mode == "Recommend":
        return Verdict(
            "Recommended",
            "RecommendOnly",
            f"recommended {proposal.config.summary()} (mode Recommend)",
            memory=memory,
            target=target,
        )
    at_risk = _slo_at_risk(inp)
    pay = _payback(inp, proposal, target)
    held = _blocked(memory, target, inp.now)
    if held is None and not at_risk:
        held = _cost_change_held(inp, proposal, target, memory, pay)
    if held is not None:
        return held
    why = "SLO at risk" if at_risk else _saving_text(inp, proposal)
    if pay is not None and not at_risk:
        why = f"{why}; {pay.text()}"
    return Verdict(
        "Applied",
        "SLOAtRisk" if at_risk else "Saving",
        f"applying {target.summary()}: {why}",
        (ApplyConfig(target),),
        _changed(memory, inp.now, target, inp.current),
        target,
        payback=pay.text() if pay is not None else "",
    )


def _changed(
    memory: GuardMemory, now: float, target: ServingConfig, current: ServingConfig
) -> GuardMemory:
    """The memory once ``target`` replaces ``current``: a change now; a rolled change
    (learning starts over) only when the pod template changes."""
    memory = memory.evolve(last_change_at=now, breach_since=None)
    return memory.evolve(rolled_at=now) if target.rolls_pods_from(current) else memory


def settle(proposal: Proposal, current: ServingConfig) -> Proposal:
    """The proposal with the current HPA target kept when the new one is within
    TARGET_TOLERANCE of it: the target follows demand noise, and chasing it would
    roll out (and write) on every re-plan."""
    new, old = proposal.config.scaling_target, current.scaling_target
    if new is None or old is None or old <= 0 or abs(new - old) / old > TARGET_TOLERANCE:
        return proposal
    return replace(proposal, config=replace(proposal.config, scaling_target=old))


def _hold(memory: GuardMemory, reason: str, message: str) -> Verdict:
    return Verdict("Held", reason, message, memory=memory)


def _track(inp: GuardInput) -> GuardMemory:
    """Update the memory with what the metrics say about the current configuration.

    A configuration becomes the last good one only once its pods served within the SLO:
    the workload as servingopt found it, or a change whose rollout completed at least a
    metrics window ago. While it breaks the SLO the breach start is kept; during a
    rollout (or a stalled one) no breach counts; unknown metrics change nothing.
    """
    memory = inp.memory
    changed = memory.last_change_at
    settled = not inp.rollout_in_flight and not inp.rollout_stalled
    if settled and memory.rolled_at is not None and learning_since(memory) is None:
        memory = memory.evolve(serving_since=inp.now)
    if not inp.metrics_available or inp.observed_p99_ms is None:
        return memory
    if not settled:
        # old pods serve until the new ones are ready: the p99 judges neither
        # configuration, and a breach the old one left must not roll the new one back
        return memory.evolve(breach_since=None)
    if inp.observed_p99_ms > inp.slo_p99_ms:
        since = memory.breach_since if memory.breach_since is not None else inp.now
        return memory.evolve(breach_since=since)
    alone = learning_since(memory)
    served = changed is None or (
        alone is not None and inp.now - max(alone, changed) >= inp.metrics_window_s
    )
    if not served:
        return memory.evolve(breach_since=None)
    return memory.evolve(last_good=inp.current, breach_since=None)


def learning_since(memory: GuardMemory) -> float | None:
    """Since when the current pods' configuration has served alone, once its rollout was
    seen complete (None: not yet, or never rolled).  Intervals before it belong to the
    previous configuration or to both; an HPA-only change since does not move it."""
    since, rolled = memory.serving_since, memory.rolled_at
    return since if since is not None and rolled is not None and since > rolled else None


def _stalled(inp: GuardInput, memory: GuardMemory) -> Verdict | None:
    """A rollout servingopt started that cannot finish goes back to the last good
    configuration (held, with a reason, when there is none or rollback is off)."""
    if not inp.rollout_stalled or memory.rolled_at is None or inp.mode != "Auto":
        return None
    good = memory.last_good
    what = f"the rollout of {inp.current.summary()} is stalled ({inp.rollout_stalled})"
    if not inp.policy.guardrails.rollback.enabled:
        return _hold(memory, "RolloutStalled", f"{what}; rollback is disabled by the policy")
    if good is None or good == inp.current:
        return _hold(
            memory, "RolloutStalled", f"{what}; no configuration is known to have served well"
        )
    return Verdict(
        "RolledBack",
        "RolloutStalled",
        f"{what}; returning to {good.summary()}",
        (ApplyConfig(good),),
        _blocking(inp, memory),
        good,
    )


def _blocking(inp: GuardInput, memory: GuardMemory) -> GuardMemory:
    """The memory after rolling back: the current configuration blocked for a while."""
    block_for = max(BLOCK_AFTER_ROLLBACK_S, 4.0 * inp.policy.guardrails.min_interval_seconds)
    good = memory.last_good or inp.current
    return _changed(memory, inp.now, good, inp.current).evolve(
        blocked=inp.current, blocked_until=inp.now + block_for
    )


def _rollback(inp: GuardInput, memory: GuardMemory) -> Verdict | None:
    rollback = inp.policy.guardrails.rollback
    good = memory.last_good
    if not rollback.enabled or inp.mode != "Auto" or good is None or good == inp.current:
        return None
    if memory.last_change_at is None or memory.breach_since is None:
        return None
    # Only a breach after the change counts against it.
    since = max(memory.breach_since, memory.last_change_at)
    if inp.now - since < rollback.breach_window_seconds:
        return None
    message = (
        f"p99 {inp.observed_p99_ms or 0:.1f} ms above the SLO {inp.slo_p99_ms:g} ms for "
        f"{inp.now - since:.0f} s after a change; returning to {good.summary()}"
    )
    return Verdict(
        "RolledBack",
        "SLOBreachedAfterChange",
        message,
        (ApplyConfig(good),),
        _blocking(inp, memory),
        good,
    )


def _over_budget(inp: GuardInput, proposal: Proposal) -> str:
    budgets = inp.policy.budgets
    cost = proposal.hourly_cost
    per_ms = budgets.max_hourly_cost_per_model_serving
    if per_ms is not None and cost > per_ms:
        return (
            f"refused {proposal.config.summary()}: ${cost:.2f}/h exceeds the per-ModelServing "
            f"budget of ${per_ms:.2f}/h"
        )
    per_ns = budgets.max_hourly_cost_per_namespace
    if per_ns is not None and cost + inp.namespace_other_hourly > per_ns:
        total = cost + inp.namespace_other_hourly
        return (
            f"refused {proposal.config.summary()}: the namespace would cost ${total:.2f}/h, "
            f"above its budget of ${per_ns:.2f}/h"
        )
    return ""


def _slo_at_risk(inp: GuardInput) -> bool:
    p99 = inp.observed_p99_ms
    at_risk = p99 is not None and p99 > AT_RISK_FRACTION * inp.slo_p99_ms
    return at_risk and not absorbing(
        inp.autoscaler, inp.now, inp.metrics_window_s, inp.startup_seconds
    )


def absorbing(
    hpa: AutoscalerState | None, now: float, metrics_window_s: float, startup_s: float
) -> bool:
    """Whether the HPA is answering the load itself: healthy, below its maximum, and
    with pods it asked for still starting or a scale within the last metrics window plus
    a start-up (the observed p99 does not show its effect yet)."""
    if hpa is None or not hpa.healthy or hpa.desired_replicas >= hpa.max_replicas:
        return False
    if hpa.ready_replicas < hpa.desired_replicas:
        return True
    recent = now - (metrics_window_s + startup_s)
    return hpa.last_scale_at is not None and hpa.last_scale_at > recent


def _saving(inp: GuardInput, proposal: Proposal) -> float | None:
    if not inp.current_hourly:
        return None
    return 1.0 - proposal.hourly_cost / inp.current_hourly


def _saving_text(inp: GuardInput, proposal: Proposal) -> str:
    saving = _saving(inp, proposal)
    if saving is None:
        return "no current cost known"
    before, after = inp.current_hourly or 0.0, proposal.hourly_cost
    return f"projected saving {saving:.0%} (${before:.2f}/h -> ${after:.2f}/h)"


def _payback(inp: GuardInput, proposal: Proposal, target: ServingConfig) -> Payback | None:
    """The change's saving over the policy's horizon against its rollout's cost (None:
    the current cost is unknown, or the policy's horizon is 0, which turns it off)."""
    horizon = inp.policy.guardrails.payback_horizon_seconds
    if not inp.current_hourly or horizon <= 0:
        return None
    return payback(
        current_hourly=inp.current_hourly,
        new_hourly=proposal.hourly_cost,
        rolls_pods=target.rolls_pods_from(inp.current),
        horizon_s=float(horizon),
        startup_s=inp.startup_seconds,
        provisioning_s=inp.provisioning_seconds,
        model_error=inp.model_error,
    )


def _cost_change_held(
    inp: GuardInput,
    proposal: Proposal,
    target: ServingConfig,
    memory: GuardMemory,
    pay: Payback | None,
) -> Verdict | None:
    rails = inp.policy.guardrails
    saving = _saving(inp, proposal)
    if saving is not None and saving * 100 < rails.min_saving_percent:
        return Verdict(
            "Held",
            "SavingBelowThreshold",
            f"projected saving {saving:.1%} is below the policy's {rails.min_saving_percent} %",
            memory=memory,
            target=target,
        )
    if pay is not None and not pay.pays:
        return Verdict(
            "Held",
            "ChangeDoesNotPay",
            f"{target.summary()} does not pay for its rollout: {pay.text()}",
            memory=memory,
            target=target,
            payback=pay.text(),
        )
    if (
        memory.last_change_at is not None
        and inp.now - memory.last_change_at < rails.min_interval_seconds
    ):
        after = _iso(memory.last_change_at + rails.min_interval_seconds)
        return _hold(memory, "MinInterval", f"last change too recent; next change after {after}")
    if rails.maintenance_windows and not in_any_window(rails.maintenance_windows, inp.now):
        return _hold(memory, "OutsideMaintenanceWindow", "waiting for a maintenance window")
    return None


def _blocked(memory: GuardMemory, target: ServingConfig, now: float) -> Verdict | None:
    """Hold a configuration rolled back recently, whatever the SLO says now."""
    blocked = memory.blocked_until is not None and now < memory.blocked_until
    if (
        blocked
        and memory.blocked is not None
        and memory.blocked.placement() == target.placement()
        and (memory.blocked.variant == target.variant)
    ):
        return _hold(
            memory,
            "RecentlyRolledBack",
            f"{target.summary()} broke the SLO recently; not retried before "
            f"{_iso(memory.blocked_until or now)}",
        )
    return None


def _step_limited(target: ServingConfig, current: ServingConfig, step: int) -> ServingConfig:
    """Move minReplicas by at most ``step`` from the current value."""
    if target.min_replicas is None or current.min_replicas is None:
        return target
    low = current.min_replicas - step
    high = current.min_replicas + step
    min_replicas = max(low, min(high, target.min_replicas), 1)
    max_replicas = max(target.max_replicas or min_replicas, min_replicas)
    return replace(target, min_replicas=min_replicas, max_replicas=max_replicas)


def in_window(window: MaintenanceWindow, now: float) -> bool:
    """Whether ``now`` (unix seconds) falls in a weekly UTC window (may span midnight)."""
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    hours, minutes = (int(x) for x in window.start.split(":"))
    for back in (0, 1):  # a window opened yesterday may still be open
        day = moment.date() - dt.timedelta(days=back)
        if WEEKDAYS[day.weekday()] not in window.days:
            continue
        start = dt.datetime(day.year, day.month, day.day, hours, minutes, tzinfo=dt.UTC)
        if start <= moment < start + dt.timedelta(minutes=window.duration_minutes):
            return True
    return False


def in_any_window(windows: list[MaintenanceWindow], now: float) -> bool:
    return any(in_window(w, now) for w in windows)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
