"""One reconcile of a ModelServing: read -> loop step -> apply -> report.

Framework-free (kopf calls it from :mod:`.handlers`; tests call it directly). It reads
the cluster and Prometheus into a :class:`~servingopt.loop.LoopInput`, lets
:func:`servingopt.loop.step` observe, plan, settle and guard (the same step the replay
and ``servingopt plan`` call), executes the verdict's commands and reports. The
dependencies — API client, metric sources, planner, clock, event poster — come in a
:class:`Deps`, so every step can be replaced in tests.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml
from pydantic import ValidationError

from servingopt import loop
from servingopt.api import InstanceCatalog, ModelServing, ServingPolicySpec, effective_mode
from servingopt.api.modelserving import ModelServingSpec, variants_without_selector
from servingopt.api.validation import catalog_problems
from servingopt.guard import (
    ApplyConfig,
    GuardMemory,
    ReleaseWorkload,
    RemoveOwnedHpa,
    Verdict,
    tenancy,
)
from servingopt.kube import autoscaler_health, io, paths
from servingopt.kube import manifests as m
from servingopt.kube.client import ApiClient, ApiError, scoped
from servingopt.loop import (
    PLANNER_FAILED,
    LoopInput,
    LoopOutput,
    Planner,
    corrections_from_dict,
    corrections_to_dict,
)
from servingopt.metrics import promql
from servingopt.metrics.exported import OperatorMetrics
from servingopt.metrics.source import MetricSource, SampleRequest
from servingopt.optimize.ranking import spot_terms
from servingopt.values import MetricsSample, Proposal, ServingConfig, SpotShare

from . import cost as costs
from .status import Findings, build_status, status_differs

log = logging.getLogger("servingopt.controller")

EventPoster = Callable[[Mapping[str, Any], str, str, str], None]
NO_PROMETHEUS = "NoPrometheus"
#: The rate window of a KEDA trigger (what the planner assumes an autoscaler sees).
KEDA_WINDOW_S = 60


def _default_planner() -> Planner:
    from servingopt.optimize.planner import plan

    return plan


@dataclass
class Deps:
    kube: ApiClient
    source_for: Callable[[str], MetricSource]
    planner: Planner = field(default_factory=_default_planner)
    clock: Callable[[], float] = time.time
    post_event: EventPoster | None = None  # None: create Events through ``kube``
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    default_prometheus_url: str | None = None
    # Caches filled by kopf indexes; empty means "read from the API".
    nodes: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    lookup: Callable[[str], Awaitable[dict[str, Any] | None]] | None = None
    # ServingPolicy name -> spec, and a namespace's labels (kopf indexes; None: the API).
    list_policies: Callable[[], Awaitable[dict[str, Any]]] | None = None
    namespace_labels: Callable[[str], Awaitable[dict[str, str]]] | None = None
    # Called with each loop step's input and output (tests compare them with a replay's).
    on_step: Callable[[LoopInput, LoopOutput], None] | None = None
    recommend_only: bool = False  # ``run --recommend-only``: Auto acts as Recommend


def mode_of(deps: Deps, spec: ModelServingSpec | None, policy: ServingPolicySpec) -> str:
    """The mode in force: the spec's, else the policy's default; Auto is capped to
    Recommend by an operator installed recommend-only."""
    mode = effective_mode(spec, policy)
    return "Recommend" if mode == "Auto" and deps.recommend_only else mode


@dataclass(frozen=True)
class Result:
    outcome: str
    writes: int
    status_written: bool
    replan_seconds: float | None = None  # the governing policy's interval, when one governs
    reason: str = ""  # the verdict's reason


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _get(deps: Deps, path: str) -> dict[str, Any] | None:
    if deps.lookup is not None:
        return await deps.lookup(path)
    return await deps.kube.get(path)


@dataclass
class Context:
    """What the first steps found, for the later ones."""

    body: Mapping[str, Any]
    ms: ModelServing | None = None
    policy: ServingPolicySpec = field(default_factory=ServingPolicySpec)
    catalog: InstanceCatalog | None = None
    policy_name: str = ""
    problems: list[str] = field(default_factory=list)
    reason: str = "InvalidSpec"
    state: io.ClusterState | None = None
    prometheus_url: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def refuse(self, reason: str, problems: list[str]) -> Context:
        """Record problems; the first kind of problem found names the reason."""
        if problems and not self.problems:
            self.reason = reason
        self.problems += problems
        return self


async def _load(deps: Deps, body: Mapping[str, Any]) -> Context:
    ctx = Context(body)
    meta = body.get("metadata", {})
    try:
        ctx.ms = ModelServing.model_validate(
            {
                "apiVersion": body.get("apiVersion"),
                "kind": "ModelServing",
                "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
                "spec": body.get("spec") or {},
            }
        )
    except ValidationError as error:
        ctx.problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        return ctx
    spec, namespace = ctx.ms.spec, meta["namespace"]
    governance = await _governance(deps, namespace, spec)
    if governance.policy is None or governance.name is None:
        return ctx.refuse(governance.reason, [governance.message])
    ctx.policy, ctx.policy_name = governance.policy, governance.name
    catalog_name = ctx.policy.catalog_ref.name
    raw_catalog = await _get(deps, paths.instancecatalog(catalog_name))
    if raw_catalog is None:
        return ctx.refuse(
            "CatalogNotFound", [f"InstanceCatalog {catalog_name!r} (from the policy) not found"]
        )
    ctx.catalog = InstanceCatalog.model_validate(
        {"metadata": raw_catalog.get("metadata", {}), "spec": raw_catalog.get("spec")}
    )
    invalid = ctx.ms.namespace_rules()
    invalid += [
        f"spec.variants: variant {name!r} gives no image, env or args, so it cannot be selected"
        for name in variants_without_selector(spec)
    ]
    invalid += [str(p) for p in catalog_problems(ctx.ms, ctx.catalog)]
    ctx.labels, label_problem = tenancy.metric_labels(spec, namespace, ctx.policy)
    invalid += [label_problem] if label_problem else []
    ctx.refuse("InvalidSpec", invalid)
    ctx.refuse(
        "NotAllowedByPolicy", tenancy.workload_problems(spec, ctx.policy.workload, ctx.policy_name)
    )
    ctx.prometheus_url, url_problem = tenancy.prometheus_url(
        spec, ctx.policy, deps.default_prometheus_url
    )
    ctx.refuse("PrometheusNotAllowed", [url_problem] if url_problem else [])
    if ctx.problems:
        return ctx
    state = await io.read_state(
        deps.kube,
        namespace,
        spec.target_ref.name,
        meta.get("uid", ""),
        deps.nodes,
        mix_name=m.mix_name(body),
        committed_for=meta["name"] if mode_of(deps, spec, ctx.policy) == "Recommend" else None,
    )
    if state is None:
        return ctx.refuse(
            "TargetNotFound",
            [f"spec.targetRef: Deployment {namespace}/{spec.target_ref.name} not found"],
        )
    foreign = [f"HPA {name}" for name in state.foreign_hpas] + state.foreign_scalers
    if foreign:
        return ctx.refuse(
            "ForeignAutoscaler",
            [
                f"{', '.join(foreign)} already scales Deployment "
                f"{spec.target_ref.name}; servingopt will not add a second autoscaler"
            ],
        )
    try:
        m.serving_container(state.deployment, _container(body))
    except ValueError as error:
        return ctx.refuse("ContainerNotFound", [str(error)])
    ctx.state = state
    return ctx


async def _governance(deps: Deps, namespace: str, spec: ModelServingSpec) -> tenancy.Governance:
    """The policy an admin made govern this namespace (see guard.tenancy)."""
    raw = await deps.list_policies() if deps.list_policies else await _policies_from(deps.kube)
    policies = {}
    for name, policy_spec in raw.items():
        try:
            policies[name] = ServingPolicySpec.model_validate(policy_spec or {})
        except ValidationError:
            log.warning("ServingPolicy %s is invalid; ignored", name)
    if deps.namespace_labels is not None:
        labels = await deps.namespace_labels(namespace)
    else:
        found = await deps.kube.get(paths.namespace(namespace))
        labels = ((found or {}).get("metadata") or {}).get("labels") or {}
    requested = spec.policy_ref.name if spec.policy_ref else None
    return tenancy.select_policy(policies, namespace, labels, requested)


async def _namespace_spend(deps: Deps, meta: Mapping[str, Any], policy: ServingPolicySpec) -> float:
    """$/h of the namespace's other ModelServings, read from their status in the cluster
    (what their pods cost now, or what was last applied when that is more), so a budget
    holds across restarts and replicas. Read only when a namespace budget is set."""
    if policy.budgets.max_hourly_cost_per_namespace is None:
        return 0.0
    siblings = await deps.kube.list(paths.modelservings(meta["namespace"]))
    return sum(
        costs.status_spend(item.get("status") or {})
        for item in siblings
        if item.get("metadata", {}).get("name") != meta["name"]
    )


async def governing_catalog(
    deps: Deps, namespace: str, spec: ModelServingSpec
) -> InstanceCatalog | None:
    """The catalog of the policy governing a ModelServing (None: no policy or catalog)."""
    governance = await _governance(deps, namespace, spec)
    if governance.policy is None:
        return None
    raw = await _get(deps, paths.instancecatalog(governance.policy.catalog_ref.name))
    if raw is None:
        return None
    return InstanceCatalog.model_validate({"spec": raw.get("spec")})


async def _policies_from(kube: ApiClient) -> dict[str, Any]:
    return {
        p["metadata"]["name"]: p.get("spec") or {} for p in await kube.list(paths.servingpolicies())
    }


def _planning_spec(
    spec: ModelServingSpec, state: io.ClusterState, container: str | None
) -> ModelServingSpec:
    """The spec the planner sees: a replica's size is the Deployment's own when the spec
    leaves sizing to it (servingopt then never writes CPU or memory)."""
    if spec.resources is not None:
        return spec
    live = m.observed_resources(m.serving_container(state.deployment, container))
    return spec.model_copy(update={"resources": live})


def _container(body: Mapping[str, Any]) -> str | None:
    annotations = body.get("metadata", {}).get("annotations") or {}
    value = annotations.get(m.CONTAINER_ANNOTATION)
    return str(value) if value else None


async def _sample(deps: Deps, ctx: Context) -> MetricsSample:
    assert ctx.ms is not None
    spec = ctx.ms.spec
    url = ctx.prometheus_url
    if not url:
        return MetricsSample(
            reason=NO_PROMETHEUS,
            message="no Prometheus URL in the ServingPolicy or the operator's --prometheus-url",
        )
    request = SampleRequest(
        spec.metrics.preset,
        ctx.labels,
        spec.metrics.window_seconds,
        burst_window_seconds=spec.metrics.burst_window_seconds,
    )
    return await deps.source_for(url).sample(request)


async def reconcile(deps: Deps, body: Mapping[str, Any]) -> Result:
    """Run the loop once for a ModelServing body (as kopf delivers it)."""
    started = deps.clock()
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    # Every request of this reconcile stays in the ModelServing's own namespace.
    deps = replace(deps, kube=scoped(deps.kube, meta["namespace"]))
    writes_before = deps.kube.write_count
    try:
        with deps.metrics.reconcile_duration.labels(*key).time():
            result = await _reconcile(deps, body, started)
    except Exception:
        deps.metrics.reconcile_errors.labels(*key).inc()
        raise
    finally:
        deps.metrics.api_writes.labels(*key).inc(deps.kube.write_count - writes_before)
    deps.metrics.decisions.labels(*key, result.outcome).inc()
    if result.reason in WARNING_REASONS:
        deps.metrics.reconcile_errors.labels(*key).inc()
    return result


async def _reconcile(deps: Deps, body: Mapping[str, Any], now: float) -> Result:
    meta = body["metadata"]
    generation = int(meta.get("generation", 0))
    saved = io.read_state_annotation(body)
    ctx = await _load(deps, body)
    previous = body.get("status") or {}
    slo = ctx.ms.spec.slo.latency_p99_ms if ctx.ms is not None else 0.0
    mode = mode_of(deps, ctx.ms.spec if ctx.ms else None, ctx.policy)
    if ctx.problems or ctx.state is None or ctx.ms is None or ctx.catalog is None:
        findings = Findings(
            generation=generation,
            now=iso(now),
            mode=mode,
            slo_p99_ms=slo,
            problems=ctx.problems or ["unknown problem"],
            problem_reason=ctx.reason,
        )
        written = await _report(deps, body, previous, findings)
        interval = ctx.policy.replan_interval_seconds if ctx.policy_name else None
        return Result("Invalid", 0, written, interval)

    spec, catalog, state = ctx.ms.spec, ctx.catalog, ctx.state
    memory = GuardMemory.from_dict(saved.get("guard") or {})
    applied_meta = saved.get("applied") or {}
    container = _container(body)
    engine = spec.autoscaling.engine
    trigger = _trigger(ctx)
    if state.owned_autoscaler(engine) is None and mode == "Auto" and applied_meta.get("config"):
        state = await _recreate_autoscaler(deps, body, spec, state, applied_meta, now, trigger)
    owned = state.owned_autoscaler(engine)
    current = m.observed_config(
        state.deployment,
        owned,
        spec,
        catalog,
        container_name=container,
        behavior_hint=str((applied_meta.get("config") or {}).get("behavior", "")),
        mix=state.owned_mix,
    )
    overwritten = overwritten_fields(applied_meta, current) if mode == "Auto" else ""
    running_cost = costs.current_cost(state.pods, state.nodes, catalog)
    sample = await _sample(deps, ctx)
    others = await _namespace_spend(deps, meta, ctx.policy)
    inp = LoopInput(
        now=now,
        mode=mode,
        spec=_planning_spec(spec, state, container),
        catalog=catalog,
        policy=ctx.policy,
        running=current,
        replicas=state.replicas,
        history=sample.history(),
        demand_rps=sample.request_rate,
        observed_p99_ms=sample.p99_latency_ms,
        metrics_available=sample.available,
        metrics_message=f"{sample.reason}: {sample.message}" if sample.reason else "",
        memory=memory,
        corrections=corrections_from_dict(saved.get("corrections") or {}),
        current_hourly=running_cost.hourly,
        rollout_in_flight=m.rollout_in_flight(state.workload),
        rollout_stalled=m.rollout_stalled(
            state.workload,
            state.pods,
            now,
            ctx.policy.guardrails.rollback.rollout_timeout_seconds,
            memory.rolled_at,
        ),
        namespace_other_hourly=others,
        autoscaler=(
            autoscaler_health.state_of(owned, state.workload) if owned is not None else None
        ),
    )
    out = loop.step(inp, deps.planner)
    if out.planner_error is not None:
        log.error(
            "planner failed for %s/%s",
            meta["namespace"],
            meta["name"],
            exc_info=out.planner_error,
        )
    if deps.on_step is not None:
        deps.on_step(inp, out)
    decision, proposal, verdict = out.decision, out.proposal, out.verdict
    writes, verdict = await _execute(deps, body, spec, catalog, verdict, container, memory, trigger)
    if verdict.outcome not in ("Applied", "RolledBack", "Off") and mode == "Auto":
        share = SpotShare(*spot_terms(spec, ctx.policy))
        writes += await _keep_spot_mix(deps, body, spec, catalog, current, share, container)
    if verdict.outcome in ("Applied", "RolledBack") and verdict.target is not None:
        applied_meta = {
            "config": verdict.target.to_dict(),
            "at": iso(now),
            "generation": generation,
        }
        current = verdict.target
        overwritten = ""
    elif verdict.outcome == "Off":
        applied_meta = {}

    baseline = costs.Baseline.from_dict(saved.get("baseline") or {})
    if baseline is None and memory.last_change_at is None:
        baseline = costs.first_baseline(running_cost, sample.request_rate)
    projected = proposal.hourly_cost if proposal is not None else None
    report = costs.report(running_cost, projected, baseline, sample.request_rate)

    findings = Findings(
        generation=generation,
        now=iso(now),
        mode=mode,
        slo_p99_ms=slo,
        sample=sample,
        verdict=verdict,
        proposal=proposal,
        current=current,
        demand_rps=decision.demand_rps if decision is not None else sample.request_rate,
        utilization=decision.utilisation if decision is not None else None,
        capacity_per_replica_rps=decision.capacity_per_replica_rps if decision else None,
        alternatives=[a.to_json() for a in decision.alternatives] if decision is not None else [],
        cost=report,
        applied_by_us=bool(applied_meta) and mode == "Auto",
        applied_at=applied_meta.get("at"),
        applied_generation=applied_meta.get("generation"),
        extra_conditions={
            **_overwritten_condition(overwritten, applied_meta.get("at")),
            **_autoscaler_condition(owned),
        },
        recommended_patch=(
            _recommended_patch(body, state.deployment, spec, catalog, proposal, container, trigger)
            if mode == "Recommend" and proposal is not None
            else None
        ),
    )
    new_state: dict[str, Any] = {
        "guard": verdict.memory.to_dict(),
        "corrections": corrections_to_dict(out.corrections),
    }
    if baseline is not None:
        new_state["baseline"] = baseline.to_dict()
    if applied_meta:
        new_state["applied"] = applied_meta
    # Memory first: a crash after an apply must not forget that the change happened.
    await io.save_state_annotation(deps.kube, body, new_state)
    written = await _report(deps, body, previous, findings)
    _export(deps, meta, report, sample, slo, verdict, state.replicas, proposal)
    return Result(
        verdict.outcome, writes, written, ctx.policy.replan_interval_seconds, verdict.reason
    )


# What servingopt writes on the Deployment, by ServingConfig field.
DEPLOYMENT_FIELDS = (
    "instance_type",
    "pool",
    "capacity_type",
    "variant",
    "max_batch_size",
    "max_queue_delay_us",
    "cache_enabled",
    "cache_size_mib",
)


def overwritten_fields(applied_meta: Mapping[str, Any], current: ServingConfig) -> str:
    """What another client has changed on the Deployment since servingopt's last apply
    ('' when nothing): right after an apply the template holds it, so any difference
    is someone else's write (a GitOps sync of servingopt's fields, an edit)."""
    raw = applied_meta.get("config")
    if not raw:
        return ""
    applied = ServingConfig.from_dict(dict(raw))
    return "; ".join(
        f"{name} {getattr(applied, name)} -> {getattr(current, name)}"
        for name in DEPLOYMENT_FIELDS
        if getattr(applied, name) is not None and getattr(applied, name) != getattr(current, name)
    )


def _autoscaler_condition(hpa: Mapping[str, Any] | None) -> dict[str, tuple[str, str, str]]:
    if hpa is None:
        return {}
    return {autoscaler_health.CONDITION: autoscaler_health.health(hpa).as_condition()}


def _overwritten_condition(changes: str, applied_at: str | None) -> dict[str, tuple[str, str, str]]:
    if not changes:
        return {}
    message = (
        f"another client changed what servingopt applied at {applied_at}: {changes}. "
        "servingopt applies again no sooner than the policy's minIntervalSeconds after its "
        "last change; keep these fields out of Git (README, GitOps) or use mode Recommend"
    )
    return {"Optimized": ("False", "Overwritten", message[:1024])}


def _trigger(ctx: Context) -> m.TriggerSource | None:
    """What a KEDA ScaledObject's Prometheus trigger reads (engine KEDA only): the
    operator's Prometheus for this ModelServing and the preset's demand over its labels."""
    assert ctx.ms is not None
    spec = ctx.ms.spec
    if spec.autoscaling.engine != "KEDA" or not ctx.prometheus_url:
        return None
    preset = promql.preset(spec.metrics.preset)
    if spec.autoscaling.metric == "Concurrency":
        query = preset.concurrency_query(ctx.labels, KEDA_WINDOW_S) or ""
    else:
        query = preset.demand_query(ctx.labels, KEDA_WINDOW_S)
    return m.TriggerSource(ctx.prometheus_url, query)


async def _recreate_autoscaler(
    deps: Deps,
    body: Mapping[str, Any],
    spec: ModelServingSpec,
    state: io.ClusterState,
    applied_meta: Mapping[str, Any],
    now: float,
    trigger: m.TriggerSource | None,
) -> io.ClusterState:
    """The autoscaler servingopt applied is gone (deleted by hand, or the spec switched
    engine): put it back as it was applied, with the spec's engine, before deciding
    anything, so replicas stay bounded as planned."""
    config = ServingConfig.from_dict(dict(applied_meta["config"]))
    keda = spec.autoscaling.engine == "KEDA"
    try:
        await io.apply_autoscaler(deps.kube, body, spec, config, trigger)
    except (ApiError, io.WorkloadError, ValueError) as error:
        log.warning("recreating the autoscaler failed: %s", error)
        return state
    namespace, name = body["metadata"]["namespace"], m.hpa_name(body)
    what = "ScaledObject" if keda else "HPA"
    switched = (state.owned_hpa if keda else state.owned_scaler) is not None
    if switched:  # the spec changed engine: expected, not a fault
        kind, reason = "Normal", "AutoscalerSwitched"
        message = f"autoscaling.engine is {spec.autoscaling.engine}: the {what} replaces the other"
    else:
        kind, reason = "Warning", f"{'ScaledObject' if keda else 'Hpa'}Recreated"
        message = f"the {what} servingopt owns was deleted; recreated as applied"
    message = f"{message} ({config.summary()})"
    log.info("%s/%s: %s", namespace, body["metadata"]["name"], message)
    await _event(deps, body, kind, reason, message, iso(now))
    if keda:
        return replace(state, owned_scaler=await deps.kube.get(paths.scaledobject(namespace, name)))
    return replace(state, owned_hpa=await deps.kube.get(paths.hpa(namespace, name)))


async def _keep_spot_mix(
    deps: Deps,
    body: Mapping[str, Any],
    spec: ModelServingSpec,
    catalog: InstanceCatalog,
    current: ServingConfig,
    share: SpotShare,
    container: str | None,
) -> int:
    """A running spot mix between plans: the spot copy follows the user's pod template
    (a new image, a new env var), and the split follows the policy's spot terms at once
    (a lower ``maxPercent`` is a limit, not a saving to weigh). Nothing is sent when
    both already hold. A policy that no longer allows on-demand is left to the plan."""
    if current.spot_share() is None or current.instance_type is None or not share.mixed:
        return 0
    config = replace(
        current, max_spot_percent=share.max_spot_percent, on_demand_base=share.on_demand_base
    )
    try:
        return await io.apply_mix(deps.kube, body, spec, config, catalog, share, container)
    except (ApiError, io.WorkloadError, ValueError) as error:
        log.warning("updating the spot mix failed: %s", error)
        return 0


async def _event(
    deps: Deps, body: Mapping[str, Any], kind: str, reason: str, message: str, now: str
) -> None:
    if deps.post_event is not None:
        deps.post_event(body, kind, reason, message)
        return
    try:
        await io.post_event(deps.kube, body, kind, reason, message, now)
    except ApiError as error:
        log.warning("posting an event failed: %s", error)


def _recommended_patch(
    body: Mapping[str, Any],
    deployment: Mapping[str, Any],
    spec: ModelServingSpec,
    catalog: InstanceCatalog,
    proposal: Proposal,
    container: str | None,
    trigger: m.TriggerSource | None,
) -> str | None:
    """What Auto mode would apply for the proposal, as YAML documents to commit."""
    try:
        docs = m.recommended_objects(
            deployment, body, spec, proposal.config, catalog, container, trigger
        )
    except ValueError as error:  # nothing to build (e.g. no instance type fits)
        log.info("no patch to recommend for %s: %s", body["metadata"]["name"], error)
        return None
    return yaml.safe_dump_all(docs, sort_keys=False)


async def _execute(
    deps: Deps,
    body: Mapping[str, Any],
    spec: Any,
    catalog: InstanceCatalog,
    verdict: Verdict,
    container: str | None,
    before: GuardMemory,
    trigger: m.TriggerSource | None = None,
) -> tuple[int, Verdict]:
    """Run the guard's commands. A failure turns the verdict into a held one (and,
    when nothing was written, the change is not remembered as made)."""
    writes = 0
    try:
        for command in verdict.commands:
            if isinstance(command, ApplyConfig):
                writes += await io.apply_config(
                    deps.kube, body, spec, command.config, catalog, container, trigger=trigger
                )
            elif isinstance(command, RemoveOwnedHpa):
                writes += await io.remove_autoscaling(deps.kube, body, spec)
            elif isinstance(command, ReleaseWorkload):
                writes += await io.release_workload(deps.kube, body, spec, catalog, container)
    except (ApiError, io.WorkloadError, ValueError) as error:
        log.warning("applying failed: %s", error)
        return writes, Verdict(
            "Held",
            "ApplyFailed",
            f"could not apply: {error}",
            memory=verdict.memory
            if writes
            else verdict.memory.evolve(
                last_change_at=before.last_change_at, rolled_at=before.rolled_at
            ),
        )
    return writes, verdict


EVENT_TYPES = {
    "Applied": "Normal",
    "Recommended": "Normal",
    "RolledBack": "Warning",
    "Refused": "Warning",
    "Invalid": "Warning",
    "Held": "Normal",
    "Off": "Normal",
}
# Holds that need someone to look (a bug in the planner, an apply that failed).
WARNING_REASONS = frozenset({PLANNER_FAILED, "ApplyFailed"})


async def _report(
    deps: Deps, body: Mapping[str, Any], previous: Mapping[str, Any], findings: Findings
) -> bool:
    status, entry = build_status(previous, findings)
    # The Event goes first: a crash between the two then repeats it on the next pass
    # (the history entry is not written yet), where the other order would lose it.
    if entry is not None:
        action = str(entry["action"])
        reason, _, message = str(entry.get("reason", "")).partition(": ")
        _log_decision(body, findings, action, reason, message)
        kind = "Warning" if reason in WARNING_REASONS else EVENT_TYPES.get(action, "Normal")
        await _event(deps, body, kind, action, message or reason, findings.now)
    await _autoscaler_event(deps, body, previous, status, findings.now)
    if not status_differs(previous, status):
        return False
    await io.patch_status(deps.kube, body, status)
    return True


def _log_decision(
    body: Mapping[str, Any], f: Findings, action: str, reason: str, message: str
) -> None:
    """One INFO line per decision episode (a new history entry), not per re-plan: what
    was decided or why it holds, and what the recommendation would change."""
    meta = body["metadata"]
    verdict, current = f.verdict, f.current
    target = verdict.target if verdict is not None else None
    target = target or (f.proposal.config if f.proposal is not None else None)
    changes = "; ".join(target.changes_from(current)) if target and current else ""
    log.info(
        "%s/%s %s (%s): %s%s",
        meta["namespace"],
        meta["name"],
        action,
        reason,
        message,
        f" [{changes}]" if changes else "",
    )


async def _autoscaler_event(
    deps: Deps,
    body: Mapping[str, Any],
    previous: Mapping[str, Any],
    status: Mapping[str, Any],
    now: str,
) -> None:
    """An Event when the owned HPA starts failing (Warning) or recovers (Normal)."""

    def health(conditions: Any) -> Mapping[str, Any]:
        kind = autoscaler_health.CONDITION
        return next((c for c in conditions or [] if c.get("type") == kind), {})

    before, after = health(previous.get("conditions")), health(status.get("conditions"))
    if after.get("status") == "False" and before.get("status") != "False":
        message = f"{after.get('reason')}: {after.get('message')}"
        await _event(deps, body, "Warning", "AutoscalerFailing", message, now)
    elif after.get("status") == "True" and before.get("status") == "False":
        message = f"the HPA computes replicas again ({after.get('reason')})"
        await _event(deps, body, "Normal", "AutoscalerRecovered", message, now)


def _export(
    deps: Deps,
    meta: Mapping[str, Any],
    report: costs.CostReport,
    sample: MetricsSample,
    slo: float,
    verdict: Verdict,
    replicas: int | None,
    proposal: Proposal | None,
) -> None:
    key = (meta["namespace"], meta["name"])
    x = deps.metrics
    x.metrics_available.labels(*key).set(1.0 if sample.available else 0.0)
    x.slo_latency.labels(*key).set(slo / 1000.0)
    if replicas is not None:
        x.replicas.labels(*key).set(replicas)
    if proposal is not None and proposal.replicas is not None:
        x.predicted_replicas.labels(*key).set(proposal.replicas)
    if report.current_hourly is not None:
        x.hourly_cost.labels(*key).set(report.current_hourly)
    if report.projected_hourly is not None:
        x.projected_cost.labels(*key).set(report.projected_hourly)
    if report.savings_ratio is not None:
        x.savings.labels(*key).set(report.savings_ratio)
    if verdict.outcome == "RolledBack":
        x.rollbacks.labels(*key).inc()
    p99 = sample.p99_latency_ms
    if sample.available and p99 is not None and p99 > 0:
        x.slo_attainment.labels(*key).set(min(1.0, slo / p99))
        x.p99_latency.labels(*key).set(p99 / 1000.0)
