"""Speed of ``servingopt.optimize.plan`` (not a test: prints measured figures).

Goals: one plan over 100 instance types x 4 variants x every batching
candidate in at most 10 ms, and 1,000 ModelServings in under 30 s on one core.  The
catalog and the profiles are synthesised (deterministic seed): half CPU types whose
service time scales with vCPUs, half GPU types with affine batch profiles.

    .venv/bin/python bench/bench_plan.py [--servings 1000] [--history]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: no BLAS threads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import math
import statistics
import time
from typing import Any

import numpy as np

from servingopt.api import InstanceCatalog, ModelServingSpec
from servingopt.optimize import Observation, plan
from servingopt.optimize.planner import batch_candidates, delay_candidates

GOAL_MS = 10.0
VARIANTS = (("fp32", 0.80, 1.0), ("fp16", 0.795, 0.55), ("int8", 0.79, 0.35), ("pruned", 0.77, 0.3))


def synth_catalog(n: int, rng: np.random.Generator) -> tuple[InstanceCatalog, dict[str, Any]]:
    """``n`` instance types and, per type, a base affine profile (a, c) in ms."""
    types, base = [], {}
    for i in range(n):
        name = f"x{i:03d}.{'gpu' if i % 2 else 'cpu'}"
        if i % 2:  # GPU: 4-8 vCPUs, one or more GPUs, batching pays
            gpus = int(rng.choice([1, 1, 1, 4]))
            t = {"vcpu": 4 * gpus, "memoryGiB": 16 * gpus,
                 "gpu": {"model": f"G{i % 7}", "count": gpus, "memoryGiB": 16}}  # fmt: skip
            price = float(rng.uniform(0.5, 4.0)) * gpus
            base[name] = (float(rng.uniform(2, 8)), float(rng.uniform(0.2, 1.5)))
        else:  # CPU: no batching gain, faster with more vCPUs per node
            vcpu = int(rng.choice([4, 8, 16, 32]))
            t = {"vcpu": vcpu, "memoryGiB": 2 * vcpu}
            price = 0.0425 * vcpu * float(rng.uniform(0.9, 1.2))
            base[name] = (0.0, float(rng.uniform(8, 25)))
        types.append({"name": name, "pool": f"pool-{i:03d}", "onDemandHourly": round(price, 4),
                      "spotHourly": round(price * 0.4, 4), **t})  # fmt: skip
    return InstanceCatalog.model_validate({"spec": {"instanceTypes": types}}), base


def synth_spec(base: dict[str, Any], rng: np.random.Generator) -> ModelServingSpec:
    """A ModelServing with 4 variants profiled on every type of the catalog."""
    speed = float(rng.uniform(0.5, 2.0))
    variants = []
    for name, acc, scale in VARIANTS:
        profiles = [
            {"instanceType": t, "points": [{"batchSize": b, "latencyMs": round(
                speed * scale * (a + c * b), 4)} for b in (1, 2, 4, 8, 16, 32)]}
            for t, (a, c) in base.items()
        ]  # fmt: skip
        variants.append({"name": name, "accuracy": acc, "memoryMiB": 2000,
                         "env": [{"name": "V", "value": name}], "profiles": profiles})  # fmt: skip
    return ModelServingSpec.model_validate(
        {
            "targetRef": {"name": "m"},
            "slo": {"latencyP99Ms": float(rng.choice([25, 50, 100, 200])), "minAccuracy": 0.775},
            "variants": variants,
            "candidates": {"capacityTypes": ["on-demand", "spot"]},
            "resources": {"cpuMillicores": 2000, "memoryMiB": 4096},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 500},
        }
    )


def synth_history(rng: np.random.Generator) -> Observation:
    minutes = np.arange(2 * 1440 + 600)
    level = float(rng.uniform(50, 2000))
    rps = (
        level * (1 + 0.6 * np.sin(2 * np.pi * minutes / 1440)) * rng.lognormal(0, 0.1, minutes.size)
    )
    return Observation(timestamps_s=minutes * 60.0, requests_per_second=rps)


def time_plans(cases: list[tuple[ModelServingSpec, InstanceCatalog, Observation]]) -> list[float]:
    out = []
    for spec, cat, obs in cases:
        t0 = time.process_time()
        plan(spec, cat, None, obs)
        out.append(time.process_time() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servings", type=int, default=1000)
    parser.add_argument("--history", action="store_true", help="2.4 days of history per plan")
    args = parser.parse_args()
    rng = np.random.default_rng(4)
    cat, base = synth_catalog(100, rng)
    spec = synth_spec(base, rng)
    nb, nd = len(batch_candidates(spec)), len(delay_candidates(spec))
    obs = synth_history(rng) if args.history else Observation.from_rps(800.0)
    print(f"grid: 100 types x {len(VARIANTS)} variants x {nb} batch sizes x {nd} delays "
          f"x 2 capacity types = {100 * len(VARIANTS) * nb * nd * 2} combinations")  # fmt: skip
    plan(spec, cat, None, obs)  # warm the table and imports

    print("\none plan, by catalog size (median of 15, CPU time of this process)")
    print(f"{'types':>6} {'ms':>8} {'ms/type':>8}")
    ms = math.inf
    for n in (10, 25, 50, 100):
        sub = InstanceCatalog.model_validate(
            {"spec": {"instanceTypes": [t.to_wire() for t in cat.spec.instance_types[:n]]}}
        )
        times = time_plans([(spec, sub, obs)] * 15)
        ms = 1000 * statistics.median(times)
        print(f"{n:>6} {ms:>8.1f} {ms / n:>8.3f}")

    print(
        f"\n{args.servings} ModelServings on the 100-type catalog (distinct profiles and demands)"
    )
    cases = []
    for _ in range(args.servings):
        s = synth_spec(base, rng)
        o = (
            synth_history(rng)
            if args.history
            else Observation.from_rps(float(rng.uniform(5, 5000)))
        )
        cases.append((s, cat, o))
    times = time_plans(cases)
    total = sum(times)
    print(f"total {total:.1f} s CPU, median {1000 * statistics.median(times):.1f} ms, "
          f"p99 {1000 * float(np.quantile(times, 0.99)):.1f} ms per plan")  # fmt: skip
    one_plan = max(ms, 1000 * statistics.median(times))
    per_1000 = total * 1000 / max(args.servings, 1)
    verdict = "meets" if one_plan <= GOAL_MS and per_1000 < 30 else "MISSES"
    print(
        f"goal (<= {GOAL_MS:g} ms per plan: {one_plan:.1f} ms, {one_plan / GOAL_MS:.2f}x; "
        f"< 30 s per 1,000: {per_1000:.1f} s): {verdict}"
    )


if __name__ == "__main__":
    main()
