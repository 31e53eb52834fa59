"""Several policies against the same trace (same arrivals), plus the oracle bounds."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine import Policy, ReplayResult, replay
from .oracle import OracleResult, oracle
from .policies import BASELINES
from .traces import Trace
from .world import Scenario

#: Every policy name ``make_policy`` knows, in report order.
POLICY_NAMES = ("static", "hpa", "threshold", "offline", "servingopt")
#: Labels used in tables and reports.
POLICY_LABELS = {
    "static": "(a) static for peak",
    "hpa": "(b) tuned HPA",
    "threshold": "(c) thresholds",
    "offline": "(d) offline search + HPA",
    "servingopt": "(e) servingopt",
    "oracle": "(f) oracle",
}


def make_policy(name: str, **options: Any) -> Policy:
    """A policy by name (``static``, ``hpa``, ``threshold``, ``offline``, ``servingopt``)."""
    if name in BASELINES:
        policy: Policy = BASELINES[name]()  # type: ignore[assignment]
        return policy
    if name == "servingopt":
        from .adaptive import ServingoptPolicy  # needs servingopt.optimize

        adaptive: Policy = ServingoptPolicy(**options)
        return adaptive
    raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")


@dataclass
class Comparison:
    scenario: Scenario
    trace: Trace
    oracle: OracleResult
    results: dict[str, ReplayResult]
    failures: dict[str, str]

    def summary(self) -> list[dict[str, Any]]:
        """One row per policy (camelCase keys, stable: other tools parse them)."""
        rows = []
        for name, r in self.results.items():
            savings = {
                other: _saving(r.cost, o.cost) for other, o in self.results.items() if other != name
            }
            rows.append(
                {
                    "policy": name,
                    "label": POLICY_LABELS.get(name, name),
                    "cost": round(r.cost, 4),
                    "oracleRatio": _ratio(r.cost, self.oracle.cost),
                    "fluidRatio": _ratio(r.cost, self.oracle.fluid_cost),
                    "savingsVs": savings,
                    "sloAttainment": round(r.slo_attainment, 6),
                    "p99LatencyMs": None if math.isinf(r.p99_ms) else round(r.p99_ms, 2),
                    "requests": r.requests,
                    "droppedRequests": round(r.dropped, 1),
                    "replicaHours": round(r.replica_hours, 3),
                    "nodeHours": {k: round(v, 3) for k, v in r.node_hours.items()},
                    "costByType": {k: round(v, 4) for k, v in r.cost_by_type.items()},
                    "configurations": sorted({d[1] for d in r.decisions}),
                    "changes": len(r.decisions) - 1,
                    "spotInterruptions": r.spot_interruptions,
                }
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "modelServing": self.scenario.name,
            "sloP99Ms": self.scenario.slo_ms,
            "trace": {
                "name": self.trace.name,
                "seconds": self.trace.seconds,
                "meanRps": round(self.trace.mean_rps, 3),
                "peakRps": round(self.trace.peak_rps, 3),
            },
            "initialConfig": self.scenario.initial_config().label(),
            "oracle": {
                "cost": round(self.oracle.cost, 4),
                "fluidCost": round(self.oracle.fluid_cost, 4),
                "bestConfig": self.oracle.best_config.label(),
            },
            "policies": self.summary(),
            "failures": self.failures,
        }


def _ratio(cost: float, reference: float) -> float | None:
    return round(cost / reference, 4) if reference > 0 else None


def _saving(cost: float, other: float) -> float | None:
    """1 - cost / other: 0.4 means 40 % cheaper than ``other``."""
    return round(1.0 - cost / other, 4) if other > 0 else None


def compare(
    scenario: Scenario,
    trace: Trace,
    policies: Sequence[Policy],
    *,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> Comparison:
    """Replay every policy against the same arrivals; compute the oracle bounds."""
    arrivals = trace.arrivals(np.random.default_rng(seed))
    bounds = oracle(scenario, arrivals)
    results: dict[str, ReplayResult] = {}
    failures: dict[str, str] = {}
    for policy in policies:

        def report(done: int, total: int, name: str = policy.name) -> None:
            if progress:
                progress(name, done, total)

        try:
            results[policy.name] = replay(
                scenario, trace, policy, arrivals, seed=seed, progress=report
            )
        except ValueError as error:  # e.g. a policy that finds no feasible configuration
            failures[policy.name] = str(error)
    return Comparison(scenario, trace, bounds, results, failures)
