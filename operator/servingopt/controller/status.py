"""The ModelServing status (pure): conditions, recommendation, applied, predicted, cost.

Built from one reconcile's findings and the previous status; a condition keeps its
``lastTransitionTime`` while its status stays the same, and numbers are rounded to
three significant digits, so an unchanged situation gives an identical status and the
controller sends no write.

Conditions:

- ``Ready``            — the spec is usable and the loop ran (False: invalid spec,
  missing target, no catalog…).
- ``Optimized``        — the workload runs the recommended configuration (or one
  within the policy's minimum saving of it).
- ``SLOMet``           — observed p99 is within the SLO (Unknown without metrics).
- ``MetricsAvailable`` — demand and latency could be read.
- ``AutoscalerHealthy`` — the HPA servingopt owns computes replicas (False with the
  HPA's reason, e.g. ``FailedGetPodsMetric`` when the custom metrics API does not serve
  its metric; absent without an owned HPA).
- ``Degraded``         — something needs attention: rolled back, budget refused, no
  configuration meets the SLO, metrics missing, the planner failed, the HPA failing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from servingopt.guard import Verdict
from servingopt.kube.autoscaler_health import CONDITION as AUTOSCALER_CONDITION
from servingopt.loop import PLANNER_FAILED
from servingopt.values import MetricsSample, Proposal, ServingConfig

from .cost import CostReport

CONDITION_TYPES = ("Ready", "Optimized", "SLOMet", "MetricsAvailable", "Degraded")
HISTORY_LIMIT = 20
AT_RISK_FRACTION = 0.9


def sig(value: float | None, digits: int = 3) -> float | None:
    """``value`` rounded to ``digits`` significant digits (None/NaN stay None)."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


@dataclass(frozen=True)
class Findings:
    """What one reconcile found and decided."""

    generation: int
    now: str  # RFC 3339
    mode: str
    slo_p99_ms: float
    problems: Sequence[str] = ()
    problem_reason: str = "InvalidSpec"
    sample: MetricsSample | None = None
    verdict: Verdict | None = None
    proposal: Proposal | None = None
    current: ServingConfig | None = None
    demand_rps: float | None = None
    utilization: float | None = None
    capacity_per_replica_rps: float | None = None
    alternatives: Sequence[Mapping[str, Any]] = ()
    cost: CostReport | None = None
    applied_by_us: bool = False
    applied_at: str | None = None
    applied_generation: int | None = None
    extra_conditions: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    recommended_patch: str | None = None  # mode Recommend: YAML documents to commit


def _condition(kind: str, status: bool | None, reason: str, message: str) -> dict[str, str]:
    value = "Unknown" if status is None else ("True" if status else "False")
    return {"type": kind, "status": value, "reason": reason, "message": message[:32768]}


def slo_state(p99: float | None, slo: float) -> str:
    if p99 is None:
        return "Unknown"
    if p99 > slo:
        return "Breached"
    if p99 > AT_RISK_FRACTION * slo:
        return "AtRisk"
    return "Met"


def summary(config: ServingConfig, hourly: float | None = None) -> dict[str, Any]:
    """A ServingConfig as the status' PlanSummary (camelCase)."""
    out: dict[str, Any] = {
        "instanceType": config.instance_type,
        "pool": config.pool,
        "capacityType": config.capacity_type,
        "variant": config.variant,
        "maxBatchSize": config.max_batch_size,
        "maxQueueDelayMs": sig(config.max_queue_delay_us / 1000.0)
        if config.max_queue_delay_us is not None
        else None,
        "cacheEnabled": config.cache_enabled,
        "cacheSizeMiB": config.cache_size_mib,
        "targetPerReplica": sig(config.scaling_target),
        "hourlyCost": sig(hourly),
    }
    if config.min_replicas is not None and config.max_replicas is not None:
        out["replicas"] = {"min": config.min_replicas, "max": config.max_replicas}
    return {k: v for k, v in out.items() if v is not None}


def conditions_for(f: Findings) -> list[dict[str, str]]:
    if f.problems:
        message = "; ".join(f.problems)
        return [
            _condition("Ready", False, f.problem_reason, message),
            _condition(
                "Optimized", False, f.problem_reason, "nothing is changed while the spec is invalid"
            ),
            _condition("SLOMet", None, "NotEvaluated", "the spec is invalid"),
            _condition("MetricsAvailable", None, "NotEvaluated", "the spec is invalid"),
            _condition("Degraded", True, f.problem_reason, message),
        ]
    sample, verdict = f.sample, f.verdict
    metrics_ok = sample is not None and sample.available
    p99 = sample.p99_latency_ms if metrics_ok and sample is not None else None
    state = slo_state(p99, f.slo_p99_ms)
    out = [_condition("Ready", True, "Reconciled", f"mode {f.mode}")]
    if verdict is None:
        out.append(_condition("Optimized", None, "NotEvaluated", ""))
    elif verdict.outcome in ("Unchanged",) or verdict.reason in (
        "SavingBelowThreshold",
        "ChangeDoesNotPay",
    ):
        out.append(_condition("Optimized", True, verdict.reason, verdict.message))
    elif verdict.outcome == "Applied":
        out.append(_condition("Optimized", True, "Applied", verdict.message))
    else:
        out.append(_condition("Optimized", False, verdict.reason, verdict.message))
    if p99 is None:
        why = "no p99 latency series" if metrics_ok else "metrics unavailable"
        out.append(_condition("SLOMet", None, "NoLatencyData", why))
    else:
        out.append(
            _condition(
                "SLOMet",
                p99 <= f.slo_p99_ms,
                state,
                f"observed p99 {sig(p99, 3)} ms, SLO {f.slo_p99_ms:g} ms",
            )
        )
    if metrics_ok:
        assert sample is not None
        missing = f" (not exposed: {', '.join(sample.missing)})" if sample.missing else ""
        out.append(
            _condition("MetricsAvailable", True, "Sampled", f"demand and latency read{missing}")
        )
    else:
        reason = sample.reason if sample is not None and sample.reason else "NoData"
        message = sample.message if sample is not None else "no metric source"
        out.append(_condition("MetricsAvailable", False, reason, message))
    degraded = _degraded(f, metrics_ok)
    out.append(_condition("Degraded", degraded is not None, *(degraded or ("AsExpected", ""))))
    for kind, (status, reason, message) in f.extra_conditions.items():
        out = [c for c in out if c["type"] != kind]
        out.append({"type": kind, "status": status, "reason": reason, "message": message})
    return out


def _degraded(f: Findings, metrics_ok: bool) -> tuple[str, str] | None:
    verdict = f.verdict
    if verdict is not None and (
        verdict.outcome in ("RolledBack", "Refused")
        or verdict.reason in ("RolloutStalled", PLANNER_FAILED)
    ):
        return verdict.reason, verdict.message
    if not metrics_ok:
        return "MetricsUnavailable", "holding the current configuration until metrics return"
    if f.proposal is not None and not f.proposal.slo_feasible:
        return "NoFeasibleConfiguration", "no configuration meets the SLO; the least bad is shown"
    status, reason, message = f.extra_conditions.get(AUTOSCALER_CONDITION, ("", "", ""))
    if status == "False":
        return "AutoscalerFailing", f"{reason}: {message}"
    return None


def _merge_conditions(
    new: list[dict[str, str]], previous: Sequence[Mapping[str, Any]], now: str, generation: int
) -> list[dict[str, Any]]:
    before = {c.get("type"): c for c in previous}
    merged = []
    for cond in new:
        old = before.get(cond["type"])
        same = old is not None and old.get("status") == cond["status"]
        stamp = old.get("lastTransitionTime", now) if same and old is not None else now
        merged.append({**cond, "lastTransitionTime": stamp, "observedGeneration": generation})
    return merged


def _history(
    previous: Sequence[Mapping[str, Any]], f: Findings
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    history = [dict(h) for h in previous]
    verdict = f.verdict
    if f.problems:
        entry = {
            "action": "Invalid",
            "summary": "",
            "reason": f"{f.problem_reason}: {'; '.join(f.problems)}",
        }
    elif verdict is None or verdict.outcome in ("Unchanged",):
        return history, None
    else:
        target = verdict.target or (f.proposal.config if f.proposal else None)
        entry = {
            "action": verdict.outcome,
            "summary": target.summary() if target else "",
            "reason": f"{verdict.reason}: {verdict.message}"[:1024],
        }
    newest = history[0] if history else None
    if newest is not None and _same_entry(newest, entry):
        return history, None
    entry = {"time": f.now, **entry}
    return [entry, *history][:HISTORY_LIMIT], entry


def _same_entry(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def code(e: Mapping[str, Any]) -> str:
        return str(e.get("reason", "")).split(":", 1)[0]

    # A hold for the same reason is one episode, whatever it held back.
    same_summary = a.get("summary") == b.get("summary") or a.get("action") == "Held"
    return a.get("action") == b.get("action") and same_summary and code(a) == code(b)


# What an invalid spec leaves as it was: the last valid decision stays visible.
KEPT_WHEN_INVALID = (
    "recommendation",
    "applied",
    "cost",
    "predicted",
    "sloState",
    "alternatives",
    "recommendedPatch",
)


def build_status(
    previous: Mapping[str, Any], f: Findings
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The new status and the history entry it added (None when none was added)."""
    status: dict[str, Any] = {"observedGeneration": f.generation, "mode": f.mode}
    status["conditions"] = _merge_conditions(
        conditions_for(f), previous.get("conditions") or [], f.now, f.generation
    )
    history, entry = _history(previous.get("history") or [], f)
    if f.problems:
        status["history"] = history
        for key in KEPT_WHEN_INVALID:
            if key in previous:
                status[key] = previous[key]
        return _clean(status), entry
    sample = f.sample
    p99 = sample.p99_latency_ms if sample is not None and sample.available else None
    status["sloState"] = slo_state(p99, f.slo_p99_ms)
    if f.proposal is not None:
        status["recommendation"] = summary(f.proposal.config, f.proposal.hourly_cost)
        status["predicted"] = {
            "p99LatencyMs": sig(f.proposal.p99_latency_ms),
            "utilization": sig(f.utilization),
            "capacityPerReplicaRps": sig(f.capacity_per_replica_rps),
            "replicas": f.proposal.replicas,
            "demandRps": sig(f.demand_rps),
        }
    elif "recommendation" in previous:
        status["recommendation"] = previous["recommendation"]
    if f.applied_by_us and f.current is not None:
        status["applied"] = {
            **summary(f.current),
            "appliedAt": f.applied_at,
            "generation": f.applied_generation,
        }
    if f.cost is not None:
        c = f.cost
        savings = sig(c.savings_ratio)
        status["cost"] = {
            "currentHourly": sig(c.current_hourly),
            "projectedHourly": sig(c.projected_hourly),
            "perMillionRequests": sig(c.per_million_requests),
            "baselineHourly": sig(c.baseline_hourly),
            "savingsRatio": savings,
            "savingsPercent": max(-10000, min(100, round(savings * 100)))
            if savings is not None
            else None,
        }
    status["history"] = history
    status["alternatives"] = [
        {k: sig(v) if isinstance(v, float) else v for k, v in a.items()} for a in f.alternatives
    ][:10]
    if f.mode == "Recommend" and f.recommended_patch:
        status["recommendedPatch"] = f.recommended_patch
    return _clean(status), entry


def _clean(value: Any) -> Any:
    """Drop None values and empty maps (the API server prunes them anyway)."""
    if isinstance(value, Mapping):
        out = {k: _clean(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


# Parts of the status that alone are not worth a write: the ranked alternatives follow
# every move of the forecast (a new minute of history reorders near-ties), so they are
# refreshed with the next change that matters.
REFRESHED_WITH_OTHERS = frozenset({"alternatives"})


def status_differs(live: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether writing ``wanted`` would change the live status in a way worth a write."""

    def worth(status: Mapping[str, Any]) -> Any:
        return _clean({k: v for k, v in status.items() if k not in REFRESHED_WITH_OTHERS})

    return bool(worth(live) != worth(wanted))
