"""A planner failure as status shows it: one bounded line, Degraded with its reason."""

from __future__ import annotations

from servingopt.controller.status import Findings, build_status
from servingopt.guard import Verdict
from servingopt.loop import PLANNER_FAILED, exception_summary
from servingopt.loop.core import EXCEPTION_TEXT_LIMIT
from servingopt.values import MetricsSample


def test_an_exception_becomes_one_bounded_line() -> None:
    assert exception_summary(ValueError("bad\n\tshape  (3,)")) == "ValueError: bad shape (3,)"
    assert exception_summary(KeyError()) == "KeyError"
    long = exception_summary(RuntimeError("y" * 5000))
    assert len(long) == EXCEPTION_TEXT_LIMIT and long.endswith("…")
    assert long.startswith("RuntimeError: yyy")


def test_a_planner_failure_is_degraded_and_not_optimized() -> None:
    message = "the planner failed (ValueError: bad shape); holding the current configuration"
    findings = Findings(
        generation=2,
        now="2026-11-30T12:00:00Z",
        mode="Auto",
        slo_p99_ms=40.0,
        sample=MetricsSample(request_rate=300.0, p99_latency_ms=20.0, replicas=3),
        verdict=Verdict("Held", PLANNER_FAILED, message),
    )
    status, entry = build_status({}, findings)
    cond = {c["type"]: c for c in status["conditions"]}
    for kind, value in (("Optimized", "False"), ("Degraded", "True")):
        assert (cond[kind]["status"], cond[kind]["reason"]) == (value, PLANNER_FAILED)
        assert cond[kind]["message"] == message
    assert cond["MetricsAvailable"]["status"] == "True"
    assert entry is not None and entry["reason"] == f"{PLANNER_FAILED}: {message}"
