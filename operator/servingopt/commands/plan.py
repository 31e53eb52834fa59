"""``servingopt plan``: the operator's decision, offline, from files.

The same loop step the operator runs (:func:`servingopt.loop.step`: observe, plan,
settle, guard); demand from a history CSV (``--history``, whose last rows say what runs
and since when) or a rate (``--rps``). The JSON is the plan plus ``guard``: what the
operator would do now. Exit codes: 0 a plan meets the SLO,
:data:`~.exits.EXIT_INFEASIBLE` none does (the least-bad plan is still printed),
:data:`~.exits.EXIT_INVALID_INPUT` the input is invalid.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .exits import EXIT_INFEASIBLE, EXIT_INVALID_INPUT, EXIT_OK
from .helptext import examples

HISTORY_LIMIT_MIB = 256  # a year of minutes is about 30 MiB


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], help: str) -> None:
    p = sub.add_parser(
        "plan",
        **examples(
            "servingopt plan -f samples/modelservings/resnet50-classifier.yaml --rps 1200",
            "servingopt plan -f ms.yaml --policy policy.yaml --history metrics.csv -o json",
        ),
        help=help,
        description="Decide the cheapest serving configuration that meets a ModelServing's "
        "SLO: instance type, capacity type, variant, batching, autoscaling and cache. "
        f"Exit 0 when the SLO can be met, {EXIT_INFEASIBLE} when it cannot (the least-bad "
        f"plan is printed), {EXIT_INVALID_INPUT} for invalid input.",
    )
    p.add_argument("-f", "--file", type=Path, required=True, help="ModelServing YAML")
    p.add_argument("--catalog", type=Path, help="InstanceCatalog YAML (default: packaged)")
    p.add_argument("--policy", type=Path, help="ServingPolicy YAML (default: policy defaults)")
    p.add_argument(
        "--history",
        type=Path,
        help="CSV: timestamp, requests_per_second[, p99_latency_ms, replicas, instance_type, "
        "variant, max_batch_size, capacity_type, max_queue_delay_us, rolling]; the last row "
        "says what runs",
    )
    p.add_argument(
        "--now",
        help="when the operator decides (ISO-8601 or unix seconds; default: the last "
        "history row's timestamp, or the current time with --rps alone)",
    )
    p.add_argument(
        "--rps", type=float, help="demand in requests/s (instead of, or over, --history)"
    )
    p.add_argument("--cache-hit-rate", type=float, help="observed response-cache hit rate (0..1)")
    p.add_argument("-o", "--output", choices=("json", "yaml", "table"), default="table")
    p.set_defaults(func=cmd_plan)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_INVALID_INPUT


def cmd_plan(args: argparse.Namespace) -> int:
    from servingopt.loop import step
    from servingopt.loop.history import step_on_history
    from servingopt.optimize import plan

    try:
        ms, catalog, policy = _documents(args)
        inp, unsaid = _loop_input(args, ms.spec, catalog, policy)
    except ValueError as error:  # InputError and HistoryError are ValueErrors too
        return _fail(str(error))
    out = step_on_history(inp, unsaid, plan) if unsaid else step(inp, plan)
    if out.decision is None:  # the planner raised: the operator holds, this command fails
        raise out.planner_error or RuntimeError("no plan")
    doc = out.decision.to_json()
    doc["guard"] = guard_json(inp, out)
    if args.output == "json":
        print(json.dumps(doc, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(doc, sort_keys=False, width=100), end="")
    else:
        print(render_table(ms.metadata.name or args.file.stem, ms.spec.slo.latency_p99_ms, doc))
    return EXIT_OK if out.decision.slo_feasible else EXIT_INFEASIBLE


def _documents(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """ModelServing, catalog and policy spec; ValueError naming the flag when invalid."""
    from servingopt.api import InstanceCatalog, ModelServing, ServingPolicy
    from servingopt.api.catalog_gen import default_catalog

    paths = (("-f", args.file), ("--catalog", args.catalog), ("--policy", args.policy))
    if [str(path) for _, path in paths if path is not None].count("-") > 1:
        raise ValueError("`-` (standard input) can be given only once")
    ms = _load("-f", args.file, ModelServing)
    catalog = _load("--catalog", args.catalog, InstanceCatalog) if args.catalog else None
    policy = _load("--policy", args.policy, ServingPolicy) if args.policy else None
    return ms, catalog or default_catalog(), policy.spec if policy else None


def _load(flag: str, path: Path, model: type[Any]) -> Any:
    from servingopt.api.validation import load_one

    try:
        return load_one(path, model)
    except ValueError as error:
        raise ValueError(f"{flag} {error}") from None


def _loop_input(
    args: argparse.Namespace, spec: Any, catalog: Any, policy: Any
) -> tuple[Any, frozenset[str]]:
    """The loop's input from --history and/or --rps, and what the history leaves unsaid
    about the running configuration; ValueError naming the flag when invalid."""
    from servingopt.api import ServingPolicySpec, effective_mode
    from servingopt.api.yamlio import MIB, InputError, read_text
    from servingopt.loop import LoopInput
    from servingopt.loop.history import MAX_RPS, parse_history, parse_timestamp
    from servingopt.values import ServingConfig

    if args.rps is not None and not 0 <= args.rps <= MAX_RPS:  # also refuses nan
        raise ValueError(f"--rps must be a number within 0..{MAX_RPS:g}, got {args.rps:g}")
    hit = args.cache_hit_rate
    if hit is not None and not 0 <= hit <= 1:
        raise ValueError(f"--cache-hit-rate must be within 0..1, got {hit:g}")
    now: float | None = None
    if args.now is not None:
        try:
            now = parse_timestamp(args.now)
        except (ValueError, OverflowError):
            raise ValueError(f"--now {args.now!r} is neither ISO-8601 nor unix seconds") from None
        if not math.isfinite(now):
            raise ValueError(f"--now {args.now!r} is not a time")
    policy = policy or ServingPolicySpec()
    if args.history:
        try:
            text = read_text(args.history, limit=HISTORY_LIMIT_MIB * MIB)
            # a UTF-8 byte-order mark (spreadsheet exports) is not part of the header
            history = parse_history(text.removeprefix("\ufeff"))
            at = float(history.timestamps_s[-1]) if now is None else now
            inp = history.loop_input(
                now=at,
                spec=spec,
                catalog=catalog,
                policy=policy,
                plan_for_rps=args.rps,
                cache_hit_rate=hit,
            )
        except InputError as error:
            raise ValueError(f"--history {error}") from None
        except ValueError as error:
            raise ValueError(f"--history {args.history}: {error}") from None
        return inp, history.unsaid(spec)
    if args.rps is None:
        raise ValueError("no demand: give --history CSV or --rps REQUESTS_PER_SECOND")
    inp = LoopInput(
        now=time.time() if now is None else now,
        mode=effective_mode(spec, policy),
        spec=spec,
        catalog=catalog,
        policy=policy,
        running=ServingConfig(),
        demand_rps=args.rps,
        metrics_available=True,
        cache_hit_rate=hit,
    )
    return inp, frozenset()


def guard_json(inp: Any, out: Any) -> dict[str, Any]:
    """The guard's answer: what the operator would do now, and what it judged."""
    verdict = out.verdict
    changed = inp.memory.last_change_at
    doc: dict[str, Any] = {
        "outcome": verdict.outcome,
        "reason": verdict.reason,
        "message": verdict.message,
        "now": _iso(inp.now),
        "running": config_json(inp.running) if inp.running.instance_type else None,
        "runningSince": _iso(changed) if changed is not None else None,
        "rolloutInFlight": inp.rollout_in_flight,
        "currentHourlyCost": _round(inp.current_hourly),
        "target": config_json(verdict.target) if verdict.target is not None else None,
    }
    return doc


def config_json(config: Any) -> dict[str, Any]:
    """A ServingConfig in the camelCase of the status' PlanSummary (unset: left out)."""
    delay = config.max_queue_delay_us
    out = {
        "instanceType": config.instance_type,
        "pool": config.pool,
        "capacityType": config.capacity_type,
        "variant": config.variant,
        "maxBatchSize": config.max_batch_size,
        "maxQueueDelayMs": delay / 1000.0 if delay is not None else None,
        "cacheEnabled": config.cache_enabled,
        "cacheSizeMiB": config.cache_size_mib,
        "targetPerReplica": config.scaling_target,
    }
    if config.min_replicas is not None and config.max_replicas is not None:
        out["replicas"] = {"min": config.min_replicas, "max": config.max_replicas}
    return {k: v for k, v in out.items() if v is not None}


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _target(auto: dict[str, Any]) -> str:
    rps = f"{auto['targetRequestsPerSecondPerReplica']} req/s"
    if auto["metricType"] == "RequestsPerSecond":
        return f"target {rps} per replica"
    return f"target {auto['targetValue']} per replica ({rps})"


def _p99(value: float | None) -> str:
    return "unbounded (overloaded)" if value is None else f"{value} ms"


def _fmt(value: Any, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def render_table(name: str, slo_ms: float, doc: dict[str, Any]) -> str:
    """The decision and its best alternatives side by side."""
    pred = doc["predicted"]
    verdict = "meets the SLO" if doc["sloFeasible"] else "NO CONFIGURATION MEETS THE SLO"
    lines = [f"{name}: p99 <= {slo_ms:g} ms at {pred['demandRps']} req/s: {verdict}"]
    if doc["instanceType"]:
        auto, bat, cache = doc["autoscaling"], doc["batching"], doc["cache"]
        spot = doc["spot"]
        mix = (
            f" ({spot['onDemandReplicas']} on-demand + {spot['spotReplicas']} spot)"
            if doc["capacityType"] == "spot"
            else ""
        )
        lines += [
            f"  instance   {doc['instanceType']} (pool {doc['pool']}, {doc['capacityType']}), "
            f"variant {doc['variant']}",
            f"  replicas   {pred['replicas']}{mix}; HPA {doc['replicas']['min']}.."
            f"{doc['replicas']['max']} on {auto['metric']}, {_target(auto)}, "
            f"traffic {auto['traffic']}",
            f"  batching   maxBatchSize {bat['maxBatchSize']}, "
            f"maxQueueDelay {bat['maxQueueDelayMs']} ms",
            "  cache      "
            + (f"on, {cache['sizeMiB']} MiB per replica" if cache["enabled"] else "off"),
            f"  predicted  p99 {_p99(pred['p99LatencyMs'])}, capacity "
            f"{pred['capacityPerReplicaRps']} req/s per replica, ${pred['hourlyCost']}/h",
        ]
    header = ("", "INSTANCE TYPE", "VARIANT", "CAPACITY", "$/H", "P99 MS", "REPLICAS", "WHY NOT")
    table: list[tuple[str, ...]] = [header]
    if doc["instanceType"]:
        table.append(
            (
                "*",
                doc["instanceType"],
                doc["variant"],
                doc["capacityType"],
                _fmt(pred["hourlyCost"], ".3f"),
                _fmt(pred["p99LatencyMs"], ".1f"),
                str(pred["replicas"]),
                "chosen" if doc["sloFeasible"] else "least bad",
            )
        )
    for i, alt in enumerate(doc["alternatives"], start=1):
        table.append(
            (
                str(i),
                alt["instanceType"],
                alt["variant"],
                alt["capacityType"] or "-",
                _fmt(alt["hourlyCost"], ".3f"),
                _fmt(alt["p99LatencyMs"], ".1f"),
                _fmt(alt["replicas"], "d"),
                alt["rejected"],
            )
        )
    widths = [max(len(row[c]) for row in table) for c in range(len(header) - 1)]
    lines.append("")
    for row in table:
        cells = [row[c].ljust(widths[c]) for c in range(len(widths))]
        lines.append("  " + "  ".join(cells) + "  " + row[-1])
    guard = doc.get("guard")
    if guard:
        lines += ["", f"guard (what the operator would do now, {guard['now']}):"]
        lines.append(f"  {guard['outcome']} ({guard['reason']}): {guard['message']}")
    lines += ["", "reasons:"] + [f"  - {r}" for r in doc["reasons"]]
    return "\n".join(lines)
