"""``servingopt bench``: run the ServingBench suite and print its table and goals.

The suite is :mod:`servingopt.simulate.servingbench`; this module checks the flags
and inputs up front (a worker's error would surface as a traceback), runs it and
renders the report as JSON, a table or the README's markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from servingopt.simulate.compare import POLICY_LABELS, POLICY_NAMES
from servingopt.simulate.servingbench import (
    TraceCase,
    by_policy,
    flatten,
    goals,
    load_samples,
    run_suite,
    trace_cases,
)
from servingopt.simulate.world import Scenario

from .argtypes import check_output, minutes, nonnegative_int
from .exits import EXIT_INVALID_INPUT, EXIT_OK
from .helptext import examples
from .simulate import load_trace

DEFAULT_SAMPLES = Path("samples/modelservings")
DEFAULT_DATA = Path("../shared/data/traces")
MAX_JOBS = 256


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], help: str) -> None:
    p = sub.add_parser(
        "bench",
        **examples("servingopt bench --quick", "servingopt bench -j 2 -o markdown --out bench.md"),
        help=help,
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
    p.set_defaults(func=cmd_bench)


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


def cmd_bench(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        scenarios, cases = _suite(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    outcomes = run_suite(
        scenarios,
        cases,
        quick=args.quick,
        data_dir=args.data,
        policy_names=[n for n in args.policies.split(",") if n],
        seed=args.seed,
        replan_s=int(args.replan_minutes * 60) if args.replan_minutes else None,
        jobs=args.jobs,
        progress=_tick,
    )
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
            return EXIT_INVALID_INPUT
    if args.output == "json":
        print(text)
    elif args.output == "markdown":
        print(format_markdown(report))
    else:
        print(format_table(report))
    return EXIT_OK


def _suite(args: argparse.Namespace) -> tuple[list[Scenario], list[TraceCase]]:
    """The samples and trace cases asked for; ValueError naming the flag when they
    cannot be benchmarked."""
    problem = _inputs_problem(args)
    if problem:
        raise ValueError(problem)
    scenarios = load_samples(args.samples)
    cases = trace_cases(args.quick, args.data)
    if args.traces:
        wanted = set(args.traces.split(",")) - {""}
        known = {c.name for c in cases}
        if wanted - known:
            missing, offered = ", ".join(sorted(wanted - known)), ", ".join(sorted(known))
            raise ValueError(f"--traces: unknown {missing} (known: {offered})")
        cases = [c for c in cases if c.name in wanted]
    problem = _traces_problem(cases, args.seed)
    if problem:
        raise ValueError(problem)
    return scenarios, cases


def _tick(done: int, total: int) -> None:
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\rServingBench {done}/{total} cases", end=end, file=sys.stderr, flush=True)


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
        body.append(f"  [{g['met']}/{g['of']}, needs {g['need']}] {g['goal']}")
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
        by = by_policy(case)
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
    lines += ["", "Goals as `servingopt bench` counts them (met / cases, and what each asks):", ""]
    for g in report["goals"]:
        lines.append(f"- **{g['met']}/{g['of']}** (needs {g['need']}) — {g['goal']}")
        lines += [f"  - miss {miss}" for miss in g["misses"]]
    return "\n".join(lines)


def _num(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.2f} %"


def _saving(so: dict[str, Any], other: dict[str, Any] | None) -> str:
    if not other or not other["cost"]:
        return "-"
    return f"{100 * (1 - so['cost'] / other['cost']):+.1f} %"
