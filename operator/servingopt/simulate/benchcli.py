"""``servingopt bench``: the ServingBench suite — samples x traces x policies.

Every sample ModelServing (``samples/modelservings/*.yaml``; a built-in one when there
are none) starts from its workload (``samples/workloads/<name>.yaml``) and is replayed
against every trace under every policy; each (sample, trace) also gets the oracle
bounds.  Traces are rescaled per sample so that their peak needs about
``LOAD_SHARE`` of ``maxReplicas`` replicas of the initial configuration under a tuned
HPA; the public traces of ``../shared/data/traces`` (or ``--data``) join when present.
``diurnal-optimistic`` replays diurnal traffic against a reality 10-25 % slower than
the declared profiles (a seeded factor per instance type).

Goals are printed, not asserted: the suite reports what it measures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import traces as T
from .cli import check_output, load_trace, minutes, nonnegative_int
from .compare import POLICY_LABELS, POLICY_NAMES, compare, make_policy
from .engine import Policy
from .policies import HPA_TARGET_SHARE, declared_capacity
from .world import Scenario

LOAD_SHARE = 0.6
DAY = 86400
DEFAULT_SAMPLES = Path("samples/modelservings")
DEFAULT_DATA = Path("../shared/data/traces")
MAX_JOBS = 256


@dataclass(frozen=True)
class TraceCase:
    name: str
    build: Callable[[int], T.Trace]
    optimistic: bool = False
    path: Path | None = None  # the public trace's CSV


def trace_cases(quick: bool, data_dir: Path | None) -> list[TraceCase]:
    """The suite's traces (unit peak; rescaled per sample).

    ``quick`` keeps CI short: shorter steady/spiky/optimistic replays, no weekly or
    growing traces (they need several days), the 22 h public trace cut to 12 h.
    """
    hours = 3600
    cases = [
        TraceCase(
            "steady", lambda s: T.steady((3 if quick else 24) * hours, mean=1.0, noise=0.05, seed=s)
        ),
        TraceCase("diurnal", lambda s: T.diurnal(DAY, peak=1.0, seed=s)),
        TraceCase("spiky", lambda s: T.spiky(DAY // 2 if quick else DAY, base=1.0, seed=s)),
        TraceCase(
            "diurnal-optimistic",
            lambda s: T.diurnal(DAY // 2 if quick else DAY, peak=1.0, seed=s + 1),
            optimistic=True,
        ),
    ]
    if not quick:
        cases.insert(2, TraceCase("weekly", lambda s: T.weekly(7 * DAY, peak=1.0, seed=s)))
        cases.insert(4, TraceCase("growing", lambda s: T.growing(7 * DAY, peak=1.0, seed=s)))
    if data_dir and data_dir.is_dir():
        for stem in ("azure-llm-2023-conv", "azure-llm-2023-code", "alibaba-genai-2026-qps"):
            path = data_dir / f"{stem}.csv"
            if path.exists():
                build = _loader(path, 12 * hours if quick else None)
                cases.append(TraceCase(stem, build, path=path))
    return cases


def _loader(path: Path, seconds: int | None) -> Callable[[int], T.Trace]:
    def build(seed: int) -> T.Trace:
        trace = T.load(path)
        return trace.truncated(seconds) if seconds and trace.seconds > seconds else trace

    return build


def optimistic_factors(scenario: Scenario, seed: int) -> dict[str, float]:
    """Reality 10-25 % slower than declared, a seeded factor per instance type."""
    rng = np.random.default_rng(seed)
    names = sorted(t.name for t in scenario.catalog.spec.instance_types)
    return {n: float(f) for n, f in zip(names, rng.uniform(1.10, 1.25, len(names)), strict=True)}


def fallback_sample() -> dict[str, Any]:
    """A GPU image model used when no samples directory exists."""
    points = [[1, 4.0], [4, 7.0], [16, 19.0], [32, 35.0]]

    def profile(itype: str, factor: float) -> dict[str, Any]:
        return {
            "instanceType": itype,
            "points": [{"batchSize": b, "latencyMs": t * factor} for b, t in points],
        }

    return {
        "apiVersion": "servingopt.io/v1alpha1",
        "kind": "ModelServing",
        "metadata": {"name": "builtin-classifier"},
        "spec": {
            "targetRef": {"name": "builtin-classifier"},
            "slo": {"latencyP99Ms": 50},
            "variants": [
                {
                    "name": "fp32",
                    "accuracy": 0.76,
                    "image": "example/fp32",
                    "profiles": [profile("g4dn.xlarge", 2.5), profile("g5.xlarge", 1.3)],
                },
                {
                    "name": "fp16",
                    "accuracy": 0.758,
                    "image": "example/fp16",
                    "profiles": [profile("g4dn.xlarge", 1.0), profile("g5.xlarge", 0.55)],
                },
            ],
            "candidates": {"pools": ["gpu-t4", "gpu-a10g"], "capacityTypes": ["on-demand"]},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 20, "startupSeconds": 60},
        },
    }


def load_samples(samples_dir: Path) -> list[Scenario]:
    from servingopt.api import ModelServing
    from servingopt.api.catalog_gen import default_catalog

    from .cli import load_scenario

    files = sorted(samples_dir.glob("*.yaml")) if samples_dir.is_dir() else []
    scenarios = []
    for file in files:
        workload = samples_dir.parent / "workloads" / file.name
        try:
            scenarios.append(load_scenario(file, workload=workload if workload.exists() else None))
        except (OSError, ValueError) as error:
            print(f"skipping {file}: {error}", file=sys.stderr)
    if not scenarios:
        serving = ModelServing.model_validate(fallback_sample())
        scenarios.append(Scenario(serving, default_catalog()))
    return scenarios


def peak_for(scenario: Scenario) -> float:
    """Peak demand: the initial configuration's HPA would need LOAD_SHARE x maxReplicas."""
    capacity = declared_capacity(scenario, scenario.initial_config())
    return LOAD_SHARE * scenario.spec.autoscaling.max_replicas * HPA_TARGET_SHARE * capacity


@dataclass(frozen=True)
class CaseRef:
    """A trace case by name (picklable, for worker processes)."""

    name: str
    quick: bool
    data_dir: Path | None


def run_case(
    scenario: Scenario, ref: CaseRef, policy_names: list[str], seed: int, replan_s: int | None
) -> dict[str, Any]:
    """One (sample, trace): every policy and the oracle; plain dicts (crosses processes)."""
    case = next(c for c in trace_cases(ref.quick, ref.data_dir) if c.name == ref.name)
    trace = case.build(seed).scaled_to_peak(peak_for(scenario))
    trace = replace(trace, name=case.name)
    if case.optimistic:
        scenario = replace(scenario, truth_factors=optimistic_factors(scenario, seed))
    policies: list[Policy] = []
    failures: dict[str, str] = {}
    for name in policy_names:
        try:
            opts = {"replan_seconds": replan_s} if name == "servingopt" and replan_s else {}
            policies.append(make_policy(name, **opts))
        except (ImportError, ValueError) as error:
            failures[name] = f"unavailable: {error}"
    started = time.perf_counter()
    result = compare(scenario, trace, policies, seed=seed)
    out = result.to_json()
    out["failures"].update(failures)
    out["sample"] = scenario.name
    out["traceCase"] = case.name
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="run the ServingBench suite",
        description="ServingBench: every sample ModelServing x every trace x every policy "
        "(static, hpa, threshold, offline, servingopt) plus the oracle. Prints one table "
        "and the goals (measured, not asserted).",
    )
    p.add_argument("--quick", action="store_true", help="shorter traces (about 15 s)")
    p.add_argument(
        "--samples",
        type=Path,
        default=DEFAULT_SAMPLES,
        help=f"ModelServing YAMLs (default {DEFAULT_SAMPLES}; workloads from ../workloads)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"public traces directory (default {DEFAULT_DATA}: skipped, with a note, when absent)",
    )
    p.add_argument("--policies", default=",".join(POLICY_NAMES))
    p.add_argument("--traces", help="only these trace cases (comma-separated)")
    p.add_argument("--replan-minutes", type=minutes, help="default: each policy's own interval")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("-j", "--jobs", type=jobs, default=min(2, os.cpu_count() or 1))
    p.add_argument(
        "-o",
        "--output",
        choices=("table", "json", "markdown"),
        default="table",
        help="markdown: servingopt against the oracle and each baseline, and the goals",
    )
    p.add_argument("--out", type=Path, help="also write the JSON here")
    p.set_defaults(func=run)


def jobs(text: str) -> int:
    """argparse type: worker processes, 1..MAX_JOBS."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"{text!r} must be within 1..{MAX_JOBS}")
    return value


def _inputs_problem(args: argparse.Namespace) -> str | None:
    """Why the asked-for inputs cannot be benchmarked (None: they can); notes for the
    defaults that are absent go to stderr."""
    for flag, path, default in (
        ("--samples", args.samples, DEFAULT_SAMPLES),
        ("--data", args.data, DEFAULT_DATA),
    ):
        if path.is_dir():
            continue
        if path != default:
            return f"{flag} {path}: no such directory"
        what = "a built-in model" if flag == "--samples" else "the generated traces only"
        print(f"note: {path} not found: benchmarking {what}", file=sys.stderr)
    unknown = [n for n in args.policies.split(",") if n and n not in POLICY_NAMES]
    if unknown:
        return f"--policies: unknown {', '.join(unknown)} (known: {', '.join(POLICY_NAMES)})"
    try:
        check_output("--out", args.out)
    except ValueError as error:
        return str(error)
    return None


def _traces_problem(cases: list[TraceCase], seed: int) -> str | None:
    """Why a public trace of --data cannot be replayed (None: all can); checked here, in
    this process, because a worker's error would surface as a traceback."""
    for case in cases:
        if case.path is None:
            continue
        try:
            load_trace(str(case.path), seed=seed, flag="--data")
        except ValueError as error:
            return str(error)
    return None


def _reproduce(args: argparse.Namespace) -> str:
    words = ["servingopt bench"] + (["--quick"] if args.quick else [])
    if args.samples != DEFAULT_SAMPLES:
        words += ["--samples", str(args.samples)]
    if args.data != DEFAULT_DATA:
        words += ["--data", str(args.data)]
    if args.traces:
        words += ["--traces", args.traces]
    if args.policies != ",".join(POLICY_NAMES):
        words += ["--policies", args.policies]
    if args.seed:
        words += ["--seed", str(args.seed)]
    if args.replan_minutes:
        words += ["--replan-minutes", f"{args.replan_minutes:g}"]
    return " ".join([*words, "-o", "json"])


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    problem = _inputs_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    scenarios = load_samples(args.samples)
    cases = trace_cases(args.quick, args.data)
    if args.traces:
        wanted = set(args.traces.split(",")) - {""}
        known = {c.name for c in cases}
        if wanted - known:
            missing, offered = ", ".join(sorted(wanted - known)), ", ".join(sorted(known))
            print(f"error: --traces: unknown {missing} (known: {offered})", file=sys.stderr)
            return 2
        cases = [c for c in cases if c.name in wanted]
    problem = _traces_problem(cases, args.seed)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    names = [n for n in args.policies.split(",") if n]
    replan_s = int(args.replan_minutes * 60) if args.replan_minutes else None
    jobs = [(s, CaseRef(c.name, args.quick, args.data)) for s in scenarios for c in cases]
    outcomes: list[dict[str, Any]] = []
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(run_case, s, c, names, args.seed, replan_s) for s, c in jobs]
            for i, future in enumerate(futures):
                outcomes.append(future.result())
                _tick(i + 1, len(futures))
    else:
        for i, (s, c) in enumerate(jobs):
            outcomes.append(run_case(s, c, names, args.seed, replan_s))
            _tick(i + 1, len(jobs))
    report = {
        "suite": "ServingBench",
        "quick": args.quick,
        "seed": args.seed,
        "reproduce": _reproduce(args),
        "wallSeconds": round(time.perf_counter() - started, 1),
        "results": flatten(outcomes),
        "cases": outcomes,
        "goals": goals(outcomes),
    }
    text = json.dumps(report, indent=2)
    if args.out:
        try:
            args.out.write_text(text)
        except OSError as error:
            print(f"error: --out {args.out}: {error.strerror or error}", file=sys.stderr)
            return 2
    if args.output == "json":
        print(text)
    elif args.output == "markdown":
        print(format_markdown(report))
    else:
        print(format_table(report))
    return 0


def _tick(done: int, total: int) -> None:
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\rServingBench {done}/{total} cases", end=end, file=sys.stderr, flush=True)


def flatten(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for case in outcomes:
        for p in case["policies"]:
            rows.append(
                {
                    "sample": case["sample"],
                    "trace": case["traceCase"],
                    "policy": p["policy"],
                    "cost": p["cost"],
                    "oracleRatio": p["oracleRatio"],
                    "sloAttainment": p["sloAttainment"],
                    "p99LatencyMs": p["p99LatencyMs"],
                    "replicaHours": p["replicaHours"],
                }
            )
    return rows


def _by_policy(case: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["policy"]: p for p in case["policies"]}


def goals(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ServingBench's goals, each with how many cases meet it and every miss."""
    out = []

    def add(goal: str, checks: list[tuple[str, bool, str]]) -> None:
        met = sum(1 for _, ok, _ in checks if ok)
        misses = [f"{where}: {why}" for where, ok, why in checks if not ok]
        out.append({"goal": goal, "met": met, "of": len(checks), "misses": misses})

    g1, g2, g2b, g3, g4, g5 = [], [], [], [], [], []
    for case in outcomes:
        by = _by_policy(case)
        where = f"{case['sample']}/{case['traceCase']}"
        so = by.get("servingopt")
        if not so:
            continue
        ratio, att = so["oracleRatio"] or math.inf, so["sloAttainment"]
        # "wherever the trace allows it": some policy kept 99.5 % within the SLO on it
        allows = max(p["sloAttainment"] for p in case["policies"]) >= 0.995
        note = "" if allows else " (no policy reaches 99.5 % on this trace)"
        g1.append(
            (
                where,
                ratio <= 1.15 and (att >= 0.995 or not allows),
                f"{ratio:.2f}x oracle, {100 * att:.2f} %{note}",
            )
        )
        if "offline" in by:
            d = by["offline"]
            saving = 1 - so["cost"] / d["cost"]
            if case["traceCase"].endswith("optimistic"):
                ok = so["sloAttainment"] > d["sloAttainment"]
                g5.append((where, ok, f"{100 * att:.2f} % vs (d) {100 * d['sloAttainment']:.2f} %"))
            g2.append(
                (
                    where,
                    saving >= 0.10 and att >= d["sloAttainment"] - 1e-4,
                    f"{100 * saving:.1f} % cheaper, {100 * att:.2f} % "
                    f"vs {100 * d['sloAttainment']:.2f} %",
                )
            )
            g2b.append(
                (
                    where,
                    saving >= 0.10 and att >= 0.995,
                    f"{100 * saving:.1f} % cheaper, {100 * att:.2f} %",
                )
            )
        if "hpa" in by:
            saving = 1 - so["cost"] / by["hpa"]["cost"]
            g3.append((where, saving >= 0.40, f"{100 * saving:.1f} % cheaper than (b)"))
        if "static" in by and case["traceCase"] == "diurnal":
            factor = by["static"]["cost"] / so["cost"]
            g4.append((where, factor >= 3.0, f"{factor:.2f}x cheaper than (a)"))
    add(
        "servingopt within 1.15x of the integer oracle with >= 99.5 % within SLO "
        "(where some policy reaches it)",
        g1,
    )
    add(">= 10 % cheaper than (d) with no lower attainment", g2)
    add("(beside it, not a goal) >= 10 % cheaper than (d) with >= 99.5 % within SLO", g2b)
    add("better attainment than (d) where declared profiles are optimistic", g5)
    add(">= 40 % cheaper than (b) tuned HPA", g3)
    add(">= 3x cheaper than (a) static peak on diurnal traffic", g4)
    return out


def format_table(report: dict[str, Any]) -> str:
    cols = ["sample", "trace", "policy", "cost", "x oracle", "within SLO", "p99 ms", "repl-h"]
    lines = []
    for case in report["cases"]:
        for p in case["policies"]:
            p99 = p["p99LatencyMs"]
            lines.append(
                [
                    case["sample"],
                    case["traceCase"],
                    POLICY_LABELS.get(p["policy"], p["policy"]),
                    f"{p['cost']:.2f}",
                    f"{p['oracleRatio']:.2f}",
                    f"{100 * p['sloAttainment']:.2f} %",
                    "off-grid" if p99 is None else f"{p99:.1f}",
                    f"{p['replicaHours']:.1f}",
                ]
            )
        for name, why in case["failures"].items():
            lines.append([case["sample"], case["traceCase"], name, "-", "-", "-", why[:60], "-"])
    widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    body = [fmt.format(*cols), *(fmt.format(*line) for line in lines)]
    body.append("")
    body.append("Goals (measured, not asserted):")
    for g in report["goals"]:
        body.append(f"  [{g['met']}/{g['of']}] {g['goal']}")
        for miss in g["misses"]:
            body.append(f"        miss {miss}")
    body.append(f"wall time {report['wallSeconds']} s; reproduce: {report['reproduce']}")
    return "\n".join(body)


def format_markdown(report: dict[str, Any]) -> str:
    """servingopt's row of every case beside the oracle and the baselines, then the goals."""
    head = (
        "| sample | trace | (e) servingopt cost | x oracle | within SLO | (d) cost "
        "| (d) within SLO | vs (d) | vs (b) | (a)/(e) |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for case in report["cases"]:
        by = _by_policy(case)
        so, d, b, a = (by.get(n) for n in ("servingopt", "offline", "hpa", "static"))
        if so is None:
            continue
        static_ratio = a["cost"] / so["cost"] if a and so["cost"] else None
        lines.append(
            f"| {case['sample']} | {case['traceCase']} | {so['cost']:.2f} "
            f"| {_num(so['oracleRatio'])} | {100 * so['sloAttainment']:.2f} % "
            f"| {_num(d['cost'] if d else None)} | {_pct(d['sloAttainment'] if d else None)} "
            f"| {_saving(so, d)} | {_saving(so, b)} | {_num(static_ratio, 'x', 1)} |"
        )
    lines += ["", "Goals as `servingopt bench` counts them (met / cases):", ""]
    lines += [f"- **{g['met']}/{g['of']}** — {g['goal']}" for g in report["goals"]]
    return "\n".join(lines)


def _num(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.2f} %"


def _saving(so: dict[str, Any], other: dict[str, Any] | None) -> str:
    if not other or not other["cost"]:
        return "-"
    return f"{100 * (1 - so['cost'] / other['cost']):+.1f} %"
