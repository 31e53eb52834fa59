"""The operator's own Prometheus metrics (served by ``servingopt run --metrics-bind``).

Every series carries ``namespace`` and ``modelserving`` labels, except
``servingopt_leader{identity}`` (leader election).
"""

from __future__ import annotations

import contextlib
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

        # Not per ModelServing: one series per process, only with --leader-elect.
        self.leader = Gauge(
            "servingopt_leader",
            "1 while this process holds the leader election Lease (runs the operator), else 0",
            ("identity",),
            registry=r,
        )

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted ModelServing's series."""
        for metric in (
            self.hourly_cost,
            self.projected_cost,
            self.savings,
            self.rollbacks,
            self.api_writes,
            self.reconcile_duration,
            self.slo_attainment,
        ):
            with contextlib.suppress(KeyError):
                metric.remove(namespace, name)
