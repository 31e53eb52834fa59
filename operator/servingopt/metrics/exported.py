"""The operator's own Prometheus metrics (served by ``servingopt run --metrics-bind``).

Every series carries ``namespace`` and ``modelserving`` labels, except
``servingopt_leader{identity}`` (leader election).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LABELS = ("namespace", "modelserving")


@dataclass
class OperatorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.hourly_cost = Gauge(
            "servingopt_hourly_cost_dollars",
            "Current cost of the running pods ($/h, share of their nodes' price)",
            LABELS,
            registry=r,
        )
        self.projected_cost = Gauge(
            "servingopt_projected_hourly_cost_dollars",
            "Projected cost of the recommended configuration ($/h)",
            LABELS,
            registry=r,
        )
        self.savings = Gauge(
            "servingopt_savings_ratio", "1 - projected / baseline cost", LABELS, registry=r
        )
        self.decisions = Counter(
            "servingopt_decisions",
            "Decisions by outcome (Applied, Recommended, Held, Refused, RolledBack, Unchanged…)",
            (*LABELS, "outcome"),
            registry=r,
        )
        self.rollbacks = Counter(
            "servingopt_rollbacks", "Rollbacks after an SLO breach", LABELS, registry=r
        )
        self.reconcile_duration = Histogram(
            "servingopt_reconcile_duration_seconds",
            "Time of one observe-plan-guard-apply-report pass",
            LABELS,
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.api_writes = Counter(
            "servingopt_api_writes",
            "Writes sent to the Kubernetes API by reconciles (applies, patches, deletes)",
            LABELS,
            registry=r,
        )
        self.slo_attainment = Gauge(
            "servingopt_slo_attainment_ratio",
            "Observed p99 within the SLO (1) or not (0); SLO / p99 when breached",
            LABELS,
            registry=r,
        )

        self.p99_latency = Gauge(
            "servingopt_p99_latency_seconds",
            "Observed p99 latency of the serving pods (the preset's query)",
            LABELS,
            registry=r,
        )
        self.slo_latency = Gauge(
            "servingopt_slo_p99_latency_seconds", "The p99 latency SLO", LABELS, registry=r
        )
        self.replicas = Gauge(
            "servingopt_replicas",
            "Ready replicas of the workload (both parts of a spot mix)",
            LABELS,
            registry=r,
        )
        self.predicted_replicas = Gauge(
            "servingopt_predicted_replicas",
            "Replicas the recommended configuration needs for the current demand",
            LABELS,
            registry=r,
        )
        self.metrics_available = Gauge(
            "servingopt_metrics_available",
            "1 when the last re-plan had the live metrics it needs, else 0 (it held)",
            LABELS,
            registry=r,
        )
        self.reconcile_errors = Counter(
            "servingopt_reconcile_errors",
            "Re-plans that failed: an API error, the planner raising, an apply refused",
            LABELS,
            registry=r,
        )

        # Not per ModelServing: one series per process, only with --leader-elect.
        self.leader = Gauge(
            "servingopt_leader",
            "1 while this process holds the leader election Lease (runs the operator), else 0",
            ("identity",),
            registry=r,
        )

    def per_modelserving(self) -> tuple[Gauge | Counter | Histogram, ...]:
        """Every metric with a series per ModelServing."""
        return (
            self.hourly_cost,
            self.projected_cost,
            self.savings,
            self.decisions,
            self.rollbacks,
            self.reconcile_duration,
            self.api_writes,
            self.slo_attainment,
            self.p99_latency,
            self.slo_latency,
            self.replicas,
            self.predicted_replicas,
            self.metrics_available,
            self.reconcile_errors,
        )

    def forget(self, namespace: str, name: str) -> None:
        """Drop every series of a deleted ModelServing (all outcomes of ``decisions``
        too), so that dashboards and alerts do not keep a ghost of it."""
        for metric in self.per_modelserving():
            metric.remove_by_labels({"namespace": namespace, "modelserving": name})
