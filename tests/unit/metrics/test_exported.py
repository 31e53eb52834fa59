"""The operator's exported metrics: a deleted ModelServing leaves no series behind."""

from __future__ import annotations

from servingopt.metrics.exported import OperatorMetrics


def series_of(metrics: OperatorMetrics, name: str) -> set[str]:
    """Names of the samples that belong to ModelServing ``name``."""
    return {
        sample.name
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.labels.get("modelserving") == name
    }


def test_forget_drops_every_series_of_the_deleted_modelserving_only() -> None:
    metrics = OperatorMetrics()
    for name in ("gone", "kept"):
        key = ("ml", name)
        metrics.hourly_cost.labels(*key).set(1.0)
        metrics.projected_cost.labels(*key).set(0.5)
        metrics.savings.labels(*key).set(0.5)
        for outcome in ("Applied", "Held", "Recommended"):
            metrics.decisions.labels(*key, outcome).inc()
        metrics.rollbacks.labels(*key).inc()
        metrics.reconcile_duration.labels(*key).observe(0.2)
        metrics.api_writes.labels(*key).inc(3)
        metrics.slo_attainment.labels(*key).set(1.0)
    before = series_of(metrics, "gone")
    assert len(before) >= len(metrics.per_modelserving())

    metrics.forget("ml", "gone")

    assert series_of(metrics, "gone") == set()
    assert series_of(metrics, "kept") == before
    metrics.forget("ml", "never-seen")  # nothing to drop is not an error
