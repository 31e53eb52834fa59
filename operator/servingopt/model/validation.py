"""Validation of the analytical queue model against the discrete-event simulation.

Pure (seeded random numbers, no I/O): :func:`validate` returns rows, :func:`format_rows`
renders them.  To regenerate the figures in ``docs/performance-model.md``::

    python -c "from servingopt.model.validation import *; print(format_rows(validate()))"

(~1-2 minutes on one core with the defaults), and :func:`validate_random` for random
profiles and settings (~30 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from servingopt.model.des import poisson_arrivals_ms, simulate_batching
from servingopt.model.profile import LatencyProfile
from servingopt.model.queue import predict, stability_limit_rps

__all__ = [
    "REFERENCE_PROFILES",
    "RandomCase",
    "ValidationRow",
    "format_rows",
    "validate",
    "validate_random",
]

#: Profiles used for validation: GPU-like (large fixed cost), CPU-like (no batching
#: gain) and a measured-looking curved one.
REFERENCE_PROFILES: dict[str, LatencyProfile] = {
    "gpu": LatencyProfile.from_coefficients(5.0, 1.0, label="gpu t=5+1b"),
    "cpu": LatencyProfile.from_coefficients(0.2, 4.0, label="cpu t=0.2+4b"),
    "curved": LatencyProfile.from_points([1, 8, 32], [2.0, 3.0, 8.0], label="curved"),
}


@dataclass(frozen=True)
class ValidationRow:
    """One grid point: simulated vs predicted p99/mean latency and mean batch."""

    profile: str
    max_batch: int
    max_delay_ms: float
    load: float  # fraction of the stability limit
    sim_p99_ms: float
    model_p99_ms: float
    sim_mean_ms: float
    model_mean_ms: float
    sim_mean_batch: float
    model_mean_batch: float

    @property
    def p99_error(self) -> float:
        """Relative error of the model's p99 (positive: model pessimistic)."""
        return self.model_p99_ms / self.sim_p99_ms - 1.0

    @property
    def mean_error(self) -> float:
        """Relative error of the model's mean latency."""
        return self.model_mean_ms / self.sim_mean_ms - 1.0


def validate(
    profiles: dict[str, LatencyProfile] | None = None,
    batches: Iterable[int] = (1, 4, 16, 32),
    delays_ms: Iterable[float] = (0.0, 2.0, 10.0),
    loads: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.85, 0.9),
    *,
    requests: int = 300_000,
    seeds: Sequence[int] = (11, 12),
    warmup: float = 0.02,
    service_cv: float = 0.0,
) -> list[ValidationRow]:
    """Simulate and predict every grid point; simulated figures average the seeds.

    ``service_cv`` > 0 simulates lognormal service jitter and passes it to the model.
    """
    rows: list[ValidationRow] = []
    delays = list(delays_ms)
    for name, prof in (profiles or REFERENCE_PROFILES).items():
        for b in batches:
            limit = stability_limit_rps(prof, b)
            for d in delays if b > 1 else delays[:1]:
                for f in loads:
                    rate = f * limit
                    sims = [
                        simulate_batching(
                            poisson_arrivals_ms(rate, requests, np.random.default_rng(s)),
                            prof,
                            b,
                            d,
                            service_jitter_cv=service_cv,
                            rng=np.random.default_rng(10_000 + s),
                        )
                        for s in seeds
                    ]
                    pred = predict(prof, rate, b, d, service_cv=service_cv)
                    rows.append(
                        ValidationRow(
                            profile=name,
                            max_batch=b,
                            max_delay_ms=d,
                            load=f,
                            sim_p99_ms=float(
                                np.mean([s.quantile_ms(0.99, warmup=warmup) for s in sims])
                            ),
                            model_p99_ms=pred.p99_latency_ms,
                            sim_mean_ms=float(np.mean([s.mean_ms(warmup=warmup) for s in sims])),
                            model_mean_ms=pred.mean_latency_ms,
                            sim_mean_batch=float(np.mean([s.mean_batch for s in sims])),
                            model_mean_batch=pred.mean_batch,
                        )
                    )
    return rows


def format_rows(rows: Sequence[ValidationRow]) -> str:
    """Plain-text table plus the worst p99 error per load level."""
    lines = [
        f"{'profile':8} {'B':>3} {'D':>5} {'load':>5} {'p99 sim':>9} {'p99 model':>9} "
        f"{'err':>7} {'mean err':>8} {'batch sim/model':>15}"
    ]
    for r in rows:
        lines.append(
            f"{r.profile:8} {r.max_batch:3d} {r.max_delay_ms:5.1f} {r.load:5.2f} "
            f"{r.sim_p99_ms:9.2f} {r.model_p99_ms:9.2f} {r.p99_error:+7.1%} "
            f"{r.mean_error:+8.1%} {r.sim_mean_batch:7.2f}/{r.model_mean_batch:<7.2f}"
        )
    lines.append("")
    for f in sorted({r.load for r in rows}):
        errs = [abs(r.p99_error) for r in rows if r.load == f]
        lines.append(
            f"load {f:.2f}: max |p99 err| {max(errs):.1%}, mean {np.mean(errs):.1%} "
            f"({len(errs)} points)"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class RandomCase:
    """One random validation case (see :func:`validate_random`)."""

    batches: tuple[int, ...]
    times_ms: tuple[float, ...]
    max_batch: int
    max_delay_ms: float
    load: float
    service_cv: float
    sim_p99_ms: float
    model_p99_ms: float

    @property
    def p99_error(self) -> float:
        """Relative error of the model's p99 (positive: model pessimistic)."""
        return self.model_p99_ms / self.sim_p99_ms - 1.0


def validate_random(
    n_cases: int = 300,
    seed: int = 42,
    service_cvs: Sequence[float] = (0.0, 0.0, 0.15, 0.3),
) -> list[RandomCase]:
    """Model vs simulation on random measured-looking profiles and settings.

    Profiles: 1-4 measured batch sizes in 1..64 with ``t(b) = a + c b^k``,
    ``a`` in [0.1, 20] ms, ``c`` in [0.02, 5] ms, ``k`` in [0.6, 1.4] (sub- to
    super-linear); ``B`` in {1, ..., 64}; ``D`` up to ~45 ms; load 5-92 % of the
    stability limit; service CV drawn from ``service_cvs``.  150k-300k simulated
    requests per case.
    """
    rng = np.random.default_rng(seed)
    out: list[RandomCase] = []
    for i in range(n_cases):
        k = int(rng.integers(1, 5))
        bs = np.sort(rng.choice(np.arange(1, 65), size=k, replace=False))
        a = rng.uniform(0.1, 20.0)
        c = rng.uniform(0.02, 5.0)
        curv = rng.uniform(0.6, 1.4)
        ts = a + c * bs.astype(np.float64) ** curv
        prof = LatencyProfile.from_points(bs, ts)
        b = int(rng.choice([1, 2, 3, 4, 8, 12, 16, 24, 32, 48, 64]))
        d = float(rng.choice([0.0, 0.5, 2.0, 5.0, 10.0, 30.0]) * rng.uniform(0.5, 1.5))
        f = float(rng.uniform(0.05, 0.92))
        cv = float(rng.choice(np.asarray(service_cvs)))
        rate = f * stability_limit_rps(prof, b)
        sim = simulate_batching(
            poisson_arrivals_ms(rate, 150_000 if f < 0.8 else 300_000, np.random.default_rng(i)),
            prof,
            b,
            d,
            service_jitter_cv=cv,
            rng=np.random.default_rng(1000 + i),
        )
        out.append(
            RandomCase(
                batches=tuple(int(x) for x in bs),
                times_ms=tuple(float(x) for x in ts),
                max_batch=b,
                max_delay_ms=d,
                load=f,
                service_cv=cv,
                sim_p99_ms=sim.quantile_ms(0.99, warmup=0.02),
                model_p99_ms=predict(prof, rate, b, d, service_cv=cv).p99_latency_ms,
            )
        )
    return out
