"""Pure performance models of one serving replica (numpy only, no I/O, no clock).

* :mod:`~servingopt.model.profile` — :class:`LatencyProfile`: batch size -> service time.
* :mod:`~servingopt.model.queue` — dynamic-batching queue: mean/p99 latency, mean
  batch, utilisation, stability limit (:func:`predict`, :func:`p99_at`).
* :mod:`~servingopt.model.capacity` — :func:`capacity_at_slo`: the highest
  per-replica rate meeting a p99 target and the ``(B, D)`` achieving it.
* :class:`ProfileCorrection` (from :mod:`servingopt.values.correction`): service-time factor
  learned from observed vs predicted latency.
* :mod:`~servingopt.model.des` — discrete-event simulation of the same batcher (the
  reference the queue model is validated against; reusable by the simulator).

Units everywhere: milliseconds for times, requests per second for rates.
See ``docs/performance-model.md`` for formulas, assumptions and validation figures.
"""

from servingopt.model.capacity import (
    DEFAULT_BATCH_CANDIDATES,
    DEFAULT_DELAY_CANDIDATES_MS,
    CapacityAtSlo,
    capacity_at_slo,
)
from servingopt.model.des import SimulationResult, poisson_arrivals_ms, simulate_batching
from servingopt.model.profile import (
    DEFAULT_LINEAR_FIT_TOLERANCE,
    LatencyProfile,
    estimate_profile,
)
from servingopt.model.queue import (
    QueuePrediction,
    p99_at,
    predict,
    predict_table,
    stability_limit_rps,
)
from servingopt.values import ProfileCorrection

__all__ = [
    "DEFAULT_BATCH_CANDIDATES",
    "DEFAULT_DELAY_CANDIDATES_MS",
    "DEFAULT_LINEAR_FIT_TOLERANCE",
    "CapacityAtSlo",
    "LatencyProfile",
    "ProfileCorrection",
    "QueuePrediction",
    "SimulationResult",
    "capacity_at_slo",
    "estimate_profile",
    "p99_at",
    "poisson_arrivals_ms",
    "predict",
    "predict_table",
    "simulate_batching",
    "stability_limit_rps",
]
