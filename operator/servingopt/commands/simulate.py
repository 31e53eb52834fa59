"""``servingopt simulate``: replay a traffic trace against policies and compare them.

The replay is :func:`servingopt.simulate.compare.compare`; this module reads the
flags and files (:mod:`servingopt.simulate.inputs`), shapes the trace and prints
the comparison.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from servingopt.loop.history import MAX_RPS
from servingopt.simulate.compare import (
    POLICY_LABELS,
    POLICY_NAMES,
    Comparison,
    compare,
    make_policy,
)
from servingopt.simulate.engine import Policy
from servingopt.simulate.inputs import load_scenario
from servingopt.simulate.traces import MAX_SECONDS, Trace, resolve
from servingopt.simulate.world import Scenario

from .argtypes import at_most, check_output, minutes, nonnegative_int, positive
from .exits import EXIT_INVALID_INPUT, EXIT_OK
from .helptext import examples

DEFAULT_COMPARE = "static,hpa,threshold,offline"
TRACE_LIMIT_MIB = 512  # the CSV loader keeps every row in memory
MAX_TRUTH = 100.0  # reality 100x slower than declared is a typo, not a scenario


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], help: str) -> None:
    p = sub.add_parser(
        "simulate",
        **examples(
            "servingopt simulate -f samples/modelservings/resnet50-classifier.yaml --trace diurnal",
            "servingopt simulate -f ms.yaml --trace azure-llm-2023-code.csv --compare hpa,offline",
            "servingopt simulate -f ms.yaml --trace spiky --duration 1d --report report.html",
        ),
        help=help,
        description="Replay a demand trace (CSV of request timestamps or rates, or a "
        "generator: steady, diurnal, weekly, spiky, growing) against a ModelServing under "
        "several policies, with an emulated HPA, start-up delays and per-request latency, "
        "and compare their cost and SLO attainment with the oracle lower bound.",
    )
    p.add_argument("-f", "--file", type=Path, required=True, help="ModelServing YAML")
    p.add_argument("--trace", required=True, help="CSV file or generator[:key=value,...]")
    p.add_argument("--policy", default="servingopt", help="policy under test (default servingopt)")
    p.add_argument(
        "--compare", default=DEFAULT_COMPARE, help=f"baselines, comma-separated ({DEFAULT_COMPARE})"
    )
    p.add_argument("--catalog", type=Path, help="InstanceCatalog YAML (default: packaged)")
    p.add_argument("--serving-policy", type=Path, help="ServingPolicy YAML (default: API defaults)")
    p.add_argument("--workload", type=Path, help="the Deployment it starts from (initial config)")
    p.add_argument("--duration", help="replay length, e.g. 3600, 90m, 1d (generators; CSVs tile)")
    p.add_argument(
        "--peak-rps", type=at_most(MAX_RPS), help="rescale so the per-minute peak is this"
    )
    p.add_argument("--scale", type=positive, help="multiply every rate by this")
    p.add_argument("--stretch", type=positive, help="stretch time by this factor")
    p.add_argument(
        "--truth",
        default="",
        help="reality slower than declared: FACTOR or TYPE=FACTOR,... (e.g. 1.2 or g5.xlarge=1.25)",
    )
    p.add_argument("--spot-interruptions", action="store_true", help="draw spot interruptions")
    p.add_argument(
        "--replan-minutes",
        type=minutes,
        help="servingopt re-plan period (default: the ServingPolicy's replanIntervalSeconds)",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument("--report", type=Path, help="write a self-contained HTML report here")
    p.set_defaults(func=cmd_simulate)


def parse_duration(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    clean = text.strip().lower()
    number, unit = (clean[:-1], units[clean[-1]]) if clean and clean[-1] in units else (clean, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise ValueError(f"--duration {text!r}: expected seconds or 90m, 6h, 7d") from None
    if not 1 <= seconds <= MAX_SECONDS:  # also refuses nan and inf
        days = MAX_SECONDS // 86400
        raise ValueError(f"--duration {text!r}: must be between 1 s and {days} days")
    return int(seconds)


def parse_truth(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            out[key if sep else "*"] = float(value if sep else key)
        except ValueError:
            raise ValueError(f"--truth {item!r}: expected FACTOR or TYPE=FACTOR") from None
    if any(not 0 < v <= MAX_TRUTH for v in out.values()):  # also refuses nan
        raise ValueError(f"--truth: factors must be > 0 and at most {MAX_TRUTH:g}")
    return out


def check_truth(scenario: Scenario) -> None:
    """Every TYPE in --truth must be an instance type the model can run on."""
    allowed = {t.name for t in scenario.allowed_types()}
    known = {p.instance_type for v in scenario.variants() for p in v.profiles} & allowed
    unknown = sorted(set(scenario.truth_factors) - known - {"*"})
    if unknown:
        raise ValueError(
            f"--truth: {', '.join(unknown)} is not a candidate instance type of this model "
            f"(candidates: {', '.join(sorted(known))})"
        )


def shape_trace(trace: Trace, args: argparse.Namespace) -> Trace:
    """--stretch, --scale, --peak-rps applied; ValueError when the result cannot replay."""
    if args.stretch:
        try:
            trace = trace.stretched(args.stretch)
        except ValueError as error:
            raise ValueError(f"--stretch {args.stretch:g}: {error}") from None
    if args.scale:
        trace = trace.scaled(args.scale)
    if args.peak_rps:
        trace = trace.scaled_to_peak(args.peak_rps)
    if not trace.peak_rps <= MAX_RPS:  # Poisson draws and replica counts overflow beyond
        raise ValueError(
            f"--trace {args.trace}: demand peaks at {trace.peak_rps:.4g} req/s, more than "
            f"{MAX_RPS:g} (see --scale, --peak-rps)"
        )
    return trace


def progress_printer(enabled: bool) -> Any:
    last: dict[str, int] = {}

    def show(name: str, done: int, total: int) -> None:
        if not enabled:
            return
        pct = int(100 * done / total)
        if last.get(name) == pct:
            return
        last[name] = pct
        end = "\n" if done >= total else ""
        print(f"\rreplaying {name:<11} {pct:3d} %", end=end, file=sys.stderr, flush=True)

    return show


def load_trace(
    spec: str, seconds: int | None = None, seed: int = 0, flag: str = "--trace"
) -> Trace:
    """--trace: a CSV file (read through the bounded UTF-8 reader first) or a generator."""
    from servingopt.api.yamlio import MIB, InputError, read_text

    path = Path(spec)
    try:
        if path.suffix.lower() == ".csv" or path.exists():
            read_text(path, limit=TRACE_LIMIT_MIB * MIB)  # unreadable, too large, not UTF-8
        return resolve(spec, seconds=seconds, seed=seed)
    except InputError as error:
        raise ValueError(f"{flag} {error}") from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, csv.Error) as error:
        # the CSV's rows are the user's: short rows, text where numbers belong
        raise ValueError(f"{flag} {spec}: {error}") from None
    except MemoryError:
        raise ValueError(f"{flag} {spec}: too large to replay") from None


def _setup(args: argparse.Namespace) -> tuple[Scenario, Trace, list[Policy]]:
    """Everything cmd_simulate() needs from the command line; ValueError naming what is wrong."""
    check_output("--report", args.report)
    seconds = parse_duration(args.duration) if args.duration else None
    scenario = load_scenario(
        args.file,
        args.catalog,
        args.serving_policy,
        args.workload,
        truth_factors=parse_truth(args.truth),
        spot_interruptions=args.spot_interruptions,
    )
    check_truth(scenario)
    trace = shape_trace(load_trace(args.trace, seconds, args.seed), args)
    names = [args.policy, *(n for n in args.compare.split(",") if n and n != args.policy)]
    policies: list[Policy] = []
    for name in names:
        options = {}
        if name == "servingopt" and args.replan_minutes:
            options["replan_seconds"] = int(args.replan_minutes * 60)
        policies.append(make_policy(name, **options))
    return scenario, trace, policies


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        scenario, trace, policies = _setup(args)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    result = compare(
        scenario, trace, policies, seed=args.seed, progress=progress_printer(sys.stderr.isatty())
    )
    if args.report:
        from servingopt.simulate.report import render

        try:
            args.report.write_text(render(result))
        except OSError as error:
            print(f"error: --report {args.report}: {error.strerror or error}", file=sys.stderr)
            return EXIT_INVALID_INPUT
        print(f"wrote {args.report}", file=sys.stderr)
    if args.output == "json":
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_table(result, focus=args.policy))
    return EXIT_OK


def format_table(result: Comparison, focus: str | None = None) -> str:
    rows = result.summary()
    head = (
        f"{result.scenario.name} on {result.trace.name} ({result.trace.seconds / 3600:.1f} h, "
        f"mean {result.trace.mean_rps:.1f} req/s, peak {result.trace.peak_rps:.1f}), "
        f"SLO p99 {result.scenario.slo_ms:g} ms\n"
        f"oracle {result.oracle.cost:.2f} (fluid bound {result.oracle.fluid_cost:.2f}); "
        f"initial config {result.scenario.initial_config().label()}\n"
    )
    baselines = [r["policy"] for r in rows if r["policy"] != focus]
    cols = ["policy", "cost", "x oracle", "within SLO", "p99 ms", "replica-h"]
    if focus and any(r["policy"] == focus for r in rows):
        cols += [f"saves vs {b}" for b in baselines]
    lines = []
    for r in rows:
        p99 = "off-grid" if r["p99LatencyMs"] is None else f"{r['p99LatencyMs']:.1f}"
        cells = [
            POLICY_LABELS.get(r["policy"], r["policy"]),
            f"{r['cost']:.2f}",
            f"{r['oracleRatio']:.2f}",
            f"{100 * r['sloAttainment']:.3f} %",
            p99,
            f"{r['replicaHours']:.1f}",
        ]
        if len(cols) > 6:
            cells += [
                f"{100 * r['savingsVs'][b]:.1f} %" if r["policy"] == focus else ""
                for b in baselines
            ]
        lines.append(cells)
    widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    body = [fmt.format(*cols), *(fmt.format(*line) for line in lines)]
    failures = [f"{n}: failed: {m}" for n, m in result.failures.items()]
    reclaimed = [
        f"{POLICY_LABELS.get(r['policy'], r['policy'])}: {r['spotInterruptions']}"
        for r in rows
        if r.get("spotInterruptions")
    ]
    if reclaimed:
        failures.append("spot nodes reclaimed: " + ", ".join(reclaimed))
    return head + "\n".join(body + failures)


__all__ = ["POLICY_NAMES", "add_parser", "cmd_simulate", "format_table", "load_trace"]
