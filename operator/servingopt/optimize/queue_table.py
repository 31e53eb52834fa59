"""A precomputed, normalised table of the batching queue model, for fast planning.

:func:`servingopt.model.queue.predict` is exact enough but costs tens of
milliseconds per call; a plan sweeps hundreds of (instance type, variant, B, D)
combinations, so it cannot call it per combination.  The queue model is scale
invariant for an affine profile ``t(b) = a + c b``: multiplying every time by ``k``
and dividing the rate by ``k`` multiplies every latency by ``k``.  So the p99 depends
only on four dimensionless numbers:

* ``s = a / (a + c)``: the profile's shape (0: CPU-like, batching gains nothing;
  near 1: GPU-like, a batch costs little more than one request);
* ``B``: the maximum batch size;
* ``d = D / t(B)``: the maximum queue delay relative to a full batch's service time;
* ``rho = rate / (1000 B / t(B))``: the load relative to the stability limit.

This module stores ``p99 / t(B)`` on a grid of those four (computed once with the
exact model by ``python -m servingopt.optimize.queue_table``, shipped as
``data/queue_table.json``) and interpolates it, vectorised over any number of
candidates.  The curves are made non-decreasing in ``rho`` (running maximum) because
an HPA-scaled replica sees every load from zero to its target, so the SLO must hold
on the whole range (the same rule as :func:`servingopt.model.capacity_at_slo`).

Measured profiles that are not affine are mapped through their least-squares
``(a, c)`` for the shape, and their real ``t(B)`` for the scale; the tests bound the
error against the exact model.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

TABLE_FILE = "queue_table.json"
SHAPES: tuple[float, ...] = (0.0, 0.3, 0.5, 0.65, 0.8, 0.9, 0.95, 0.98)
BATCHES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
DELAY_RATIOS: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
LOADS: tuple[float, ...] = (
    0.0,
    0.05,
    0.15,
    0.3,
    0.45,
    0.6,
    0.7,
    0.8,
    0.86,
    0.9,
    0.93,
    0.95,
    0.97,
    0.98,
)
#: Largest batch size the table covers; larger bounds are planned at this size.
MAX_TABLE_BATCH = BATCHES[-1]
_UNSTABLE = 1e6  # stored for predictions the model calls unstable


@dataclass(frozen=True)
class QueueTable:
    """``p99 / t(B)`` over ``(B index, shape, delay ratio, load)``, non-decreasing in load."""

    shapes: FloatArray
    log_batches: FloatArray
    delay_ratios: FloatArray
    loads: FloatArray
    p99: FloatArray  # (len(BATCHES), len(SHAPES), len(DELAY_RATIOS), len(LOADS))


def _curve(args: tuple[float, int, float]) -> list[float]:
    """Exact p99 / t(B) at every grid load for one (shape, B, delay ratio)."""
    from servingopt.model import LatencyProfile, predict

    shape, batch, ratio = args
    profile = LatencyProfile.from_coefficients(shape, 1.0 - shape)
    full = float(profile.service_time_ms(batch))
    limit = 1000.0 * batch / full
    out = []
    for load in LOADS:
        p99 = predict(profile, load * limit, batch, ratio * full).p99_latency_ms
        out.append(min(p99 / full, _UNSTABLE) if np.isfinite(p99) else _UNSTABLE)
    return out


def generate(workers: int = 2) -> dict[str, Any]:
    """Run the exact model over the whole grid (minutes of CPU)."""
    jobs = [(s, b, d) for b in BATCHES for s in SHAPES for d in DELAY_RATIOS]
    # B = 1 never waits and its shape is irrelevant: compute one curve, reuse it.
    unique = [j for j in jobs if j[1] > 1] + [(0.0, 1, 0.0)]
    with ProcessPoolExecutor(workers) as pool:
        results = dict(zip(unique, pool.map(_curve, unique, chunksize=4), strict=True))
    grid = [
        [[results[(s, b, d) if b > 1 else (0.0, 1, 0.0)] for d in DELAY_RATIOS] for s in SHAPES]
        for b in BATCHES
    ]
    return {
        "about": "p99 / t(B) of servingopt.model.queue.predict; see queue_table.py",
        "shapes": list(SHAPES),
        "batches": list(BATCHES),
        "delayRatios": list(DELAY_RATIOS),
        "loads": list(LOADS),
        "p99OverFullBatch": grid,
    }


def parse(doc: dict[str, Any]) -> QueueTable:
    """A :class:`QueueTable` from the JSON document :func:`generate` writes."""
    p99 = np.asarray(doc["p99OverFullBatch"], dtype=np.float64)
    return QueueTable(
        shapes=np.asarray(doc["shapes"], dtype=np.float64),
        log_batches=np.log2(np.asarray(doc["batches"], dtype=np.float64)),
        delay_ratios=np.asarray(doc["delayRatios"], dtype=np.float64),
        loads=np.asarray(doc["loads"], dtype=np.float64),
        p99=np.maximum.accumulate(p99, axis=-1),
    )


@cache
def packaged_table() -> QueueTable:
    """The table shipped with servingopt (read once)."""
    text = (resources.files("servingopt.optimize") / "data" / TABLE_FILE).read_text()
    return parse(json.loads(text))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m servingopt.optimize.queue_table",
        description="Regenerate the normalised queue table from servingopt.model.",
    )
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.add_argument("-j", "--workers", type=int, default=2)
    args = parser.parse_args(argv)
    text = json.dumps(generate(args.workers), separators=(",", ":")) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
