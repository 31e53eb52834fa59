"""Status: conditions, history and numbers stable for an unchanged situation."""

from __future__ import annotations

from servingopt.controller.cost import CostReport
from servingopt.controller.status import Findings, build_status, sig, status_differs
from servingopt.guard import Verdict
from servingopt.values import MetricsSample, Proposal, ServingConfig

T4 = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 2, 8, 16, 4000, 85.0)
SAMPLE = MetricsSample(request_rate=300.0, p99_latency_ms=22.1234, replicas=3)


def findings(now: str = "2026-11-28T12:00:00Z", **changes: object) -> Findings:
    base: dict[str, object] = {
        "generation": 3,
        "now": now,
        "mode": "Auto",
        "slo_p99_ms": 40.0,
        "sample": SAMPLE,
        "verdict": Verdict("Applied", "Saving", "applying", target=T4),
        "proposal": Proposal(T4, 1.05234567, p99_latency_ms=30.1, replicas=3),
        "current": T4,
        "cost": CostReport(9.18, 1.0523, 9.18, 0.97, 0.885),
        "applied_by_us": True,
        "applied_at": "2026-11-28T12:00:00Z",
        "applied_generation": 3,
    }
    base.update(changes)
    return Findings(**base)  # type: ignore[arg-type]


def conditions(status: dict[str, object]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}  # type: ignore[attr-defined,index]


def test_a_healthy_apply_fills_every_section() -> None:
    status, entry = build_status({}, findings())
    assert conditions(status) == {
        "Ready": "True",
        "Optimized": "True",
        "SLOMet": "True",
        "MetricsAvailable": "True",
        "Degraded": "False",
    }
    assert status["observedGeneration"] == 3
    assert status["recommendation"]["instanceType"] == "g4dn.xlarge"  # type: ignore[index]
    assert status["recommendation"]["hourlyCost"] == 1.05  # type: ignore[index]
    assert status["cost"]["savingsPercent"] == 88  # type: ignore[index]
    assert entry is not None and entry["action"] == "Applied"


def test_same_situation_later_changes_nothing() -> None:
    first, _ = build_status({}, findings())
    again, entry = build_status(
        first, findings(now="2026-11-28T12:05:00Z", verdict=Verdict("Unchanged", "UpToDate", "ok"))
    )
    # Optimized stays True with a new reason; its transition time is kept.
    assert entry is None
    times = {c["type"]: c["lastTransitionTime"] for c in again["conditions"]}
    assert set(times.values()) == {"2026-11-28T12:00:00Z"}
    repeat, _ = build_status(
        again, findings(now="2026-11-28T12:10:00Z", verdict=Verdict("Unchanged", "UpToDate", "ok"))
    )
    assert not status_differs(again, repeat)


def test_missing_metrics_say_why() -> None:
    sample = MetricsSample(reason="PrometheusUnavailable", message="connection refused")
    status, _ = build_status(
        {}, findings(sample=sample, verdict=Verdict("Held", "MetricsUnavailable", "holding"))
    )
    c = {x["type"]: x for x in status["conditions"]}
    assert c["MetricsAvailable"]["status"] == "False"
    assert c["MetricsAvailable"]["reason"] == "PrometheusUnavailable"
    assert c["SLOMet"]["status"] == "Unknown"
    assert c["Degraded"]["status"] == "True"
    assert status["sloState"] == "Unknown"


def test_invalid_spec_keeps_previous_results() -> None:
    first, _ = build_status({}, findings())
    status, entry = build_status(
        first, findings(problems=["spec.candidates.pools[0]: unknown pool 'x'"])
    )
    c = {x["type"]: x for x in status["conditions"]}
    assert c["Ready"]["status"] == "False" and "unknown pool 'x'" in c["Ready"]["message"]
    assert status["recommendation"] == first["recommendation"]
    assert entry is not None and entry["action"] == "Invalid"


def test_significant_digits() -> None:
    assert sig(1234.5678) == 1230
    assert sig(0.000123456, 4) == 0.0001235
    assert sig(float("nan")) is None
