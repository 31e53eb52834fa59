"""The goals ``servingopt bench`` prints: counted from the measured outcomes."""

from __future__ import annotations

from typing import Any

from servingopt.simulate.servingbench import goals


def case(trace: str, **policies: tuple[float, float, float]) -> dict[str, Any]:
    """One (sample, trace) outcome; each policy as (cost, x oracle, attainment)."""
    return {
        "sample": "toy",
        "traceCase": trace,
        "policies": [
            {"policy": name, "cost": cost, "oracleRatio": ratio, "sloAttainment": att}
            for name, (cost, ratio, att) in policies.items()
        ],
    }


def test_oracle_goal_needs_the_attainment_only_where_a_policy_reaches_it() -> None:
    met = goals(
        [
            case("steady", servingopt=(1.1, 1.10, 0.999), offline=(2.0, 2.0, 1.0)),
            case("bursty", servingopt=(1.1, 1.10, 0.96), offline=(2.0, 2.0, 0.97)),
            case("diurnal", servingopt=(1.1, 1.10, 0.990), offline=(2.0, 2.0, 0.999)),
            case("spiky", servingopt=(1.3, 1.30, 0.999), offline=(2.0, 2.0, 0.999)),
        ]
    )
    oracle = met[0]
    assert (oracle["met"], oracle["of"]) == (2, 4)  # steady, bursty (nobody reaches 99.5 %)
    assert [m.split(":")[0] for m in oracle["misses"]] == ["toy/diurnal", "toy/spiky"]


def test_cheaper_than_offline_counts_strictly_lower_attainment_as_a_miss() -> None:
    out = goals(
        [
            case("steady", servingopt=(0.5, 1.0, 0.9990), offline=(1.0, 2.0, 1.0)),
            case("diurnal", servingopt=(0.5, 1.0, 1.0), offline=(1.0, 2.0, 1.0)),
            case("weekly", servingopt=(0.95, 1.0, 1.0), offline=(1.0, 2.0, 1.0)),
        ]
    )
    strict, beside = out[1], out[2]
    assert (strict["met"], strict["of"]) == (1, 3)  # diurnal only
    assert (beside["met"], beside["of"]) == (2, 3)  # steady too: 99.9 % >= 99.5 %
    assert "weekly" in beside["misses"][0]
