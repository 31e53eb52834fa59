"""How long one policy takes to replay 7 days at 1-second resolution (goal: under 5 s).

    .venv/bin/python bench/simulator_speed.py [--days 7] [--policy hpa]

Prints the measured wall time per policy and its ratio to the goal, split into the time
the policy spends deciding (servingopt: its planner and guard at every re-plan) and the
replay itself; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from servingopt.simulate import traces as T
from servingopt.simulate.compare import make_policy
from servingopt.simulate.engine import History, Plan, Policy, replay
from servingopt.simulate.oracle import oracle
from servingopt.simulate.servingbench import load_samples, peak_for

GOAL_S = 5.0


@dataclass
class Timed:
    """A policy whose decisions are timed (the replay cannot tell them apart)."""

    inner: Policy
    seconds: float = 0.0
    calls: int = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def start(self, *args: Any) -> Plan:
        return self._timed(self.inner.start, *args)

    def replan(self, now: float, history: History, current: Plan) -> Plan | None:
        return self._timed(self.inner.replan, now, history, current)

    def _timed(self, call: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--policies", default="static,hpa,threshold,offline,servingopt")
    parser.add_argument("--samples", type=Path, default=Path("samples/modelservings"))
    parser.add_argument("--sample", default="resnet50-classifier", help="which sample to replay")
    args = parser.parse_args()
    scenarios = load_samples(args.samples)
    scenario = next((s for s in scenarios if s.name == args.sample), scenarios[0])
    seconds = int(args.days * 86400)
    trace = T.weekly(seconds, seed=0).scaled_to_peak(peak_for(scenario))
    arrivals = trace.arrivals(np.random.default_rng(0))
    print(f"{scenario.name}: {args.days:g} days = {seconds} one-second ticks, weekly trace")
    started = time.perf_counter()
    oracle(scenario, arrivals)
    print(f"  oracle      {time.perf_counter() - started:6.2f} s")
    for name in args.policies.split(","):
        policy = Timed(make_policy(name))
        started = time.perf_counter()
        result = replay(scenario, trace, policy, arrivals)  # type: ignore[arg-type]
        took = time.perf_counter() - started
        print(
            f"  {name:<11} {took:6.2f} s  ({took / GOAL_S:4.2f} x the {GOAL_S:g} s goal; "
            f"replay {took - policy.seconds:5.2f} s + policy decisions {policy.seconds:5.2f} s "
            f"in {policy.calls} calls; {len(result.decisions) - 1} configuration changes)"
        )


if __name__ == "__main__":
    main()
