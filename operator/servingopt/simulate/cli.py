"""``servingopt simulate``: replay a traffic trace against policies and compare them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from servingopt.api import InstanceCatalog, ModelServing, ServingPolicy

from .compare import POLICY_LABELS, POLICY_NAMES, Comparison, compare, make_policy
from .engine import Policy
from .traces import Trace, resolve
from .world import Scenario, initial_config_from_workload

EXIT_OK = 0
EXIT_INVALID_INPUT = 2
DEFAULT_COMPARE = "static,hpa,threshold,offline"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="replay a traffic trace against policies",
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
    p.add_argument("--peak-rps", type=positive, help="rescale so the per-minute peak is this")
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
        type=float,
        help="servingopt re-plan period (default: the ServingPolicy's replanIntervalSeconds)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument("--report", type=Path, help="write a self-contained HTML report here")
    p.set_defaults(func=run)


def positive(text: str) -> float:
    """argparse type: a number > 0 (0 would silently mean "not given")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def parse_duration(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    clean = text.strip().lower()
    number, unit = (clean[:-1], units[clean[-1]]) if clean and clean[-1] in units else (clean, 1)
    try:
        seconds = int(float(number) * unit)
    except ValueError:
        raise ValueError(f"--duration {text!r}: expected seconds or 90m, 6h, 7d") from None
    if seconds <= 0:
        raise ValueError(f"--duration {text!r}: must be longer than 0 s")
    return seconds


def parse_truth(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            out[key if sep else "*"] = float(value if sep else key)
        except ValueError:
            raise ValueError(f"--truth {item!r}: expected FACTOR or TYPE=FACTOR") from None
    if any(not v > 0 for v in out.values()):
        raise ValueError("--truth: factors must be > 0")
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


def load_scenario(
    file: Path,
    catalog: Path | None = None,
    serving_policy: Path | None = None,
    workload: Path | None = None,
    **options: Any,
) -> Scenario:
    from servingopt.api.catalog_gen import default_catalog
    from servingopt.api.validation import load_one

    serving = load_one(file, ModelServing)
    cat = load_one(catalog, InstanceCatalog) if catalog else default_catalog()
    pol = load_one(serving_policy, ServingPolicy) if serving_policy else ServingPolicy()
    scenario = Scenario(serving, cat, pol, **options)
    if workload:
        with workload.open() as handle:
            docs = [d for d in yaml.safe_load_all(handle) if d and d.get("kind") == "Deployment"]
        if docs:
            name, wanted = docs[0].get("metadata", {}).get("name"), serving.spec.target_ref.name
            if name != wanted:
                raise ValueError(
                    f"--workload {workload}: Deployment {name!r} is not the ModelServing's "
                    f"targetRef {wanted!r}"
                )
            initial = initial_config_from_workload(scenario, docs[0])
            scenario = Scenario(serving, cat, pol, initial=initial, **options)
    return scenario


def shape_trace(trace: Trace, args: argparse.Namespace) -> Trace:
    if args.stretch:
        trace = trace.stretched(args.stretch)
    if args.scale:
        trace = trace.scaled(args.scale)
    if args.peak_rps:
        trace = trace.scaled_to_peak(args.peak_rps)
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


def run(args: argparse.Namespace) -> int:
    try:
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
        trace = shape_trace(resolve(args.trace, seconds=seconds, seed=args.seed), args)
        names = [args.policy, *(n for n in args.compare.split(",") if n and n != args.policy)]
        policies: list[Policy] = []
        for name in names:
            options = {}
            if name == "servingopt" and args.replan_minutes:
                options["replan_seconds"] = int(args.replan_minutes * 60)
            policies.append(make_policy(name, **options))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    result = compare(
        scenario, trace, policies, seed=args.seed, progress=progress_printer(sys.stderr.isatty())
    )
    if args.report:
        from .report import render

        args.report.write_text(render(result))
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


__all__ = ["POLICY_NAMES", "add_parser", "format_table", "load_scenario", "run"]
