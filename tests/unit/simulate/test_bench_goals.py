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
    oracle = met[2]
    # steady, and bursty (where nobody reaches 99.5 %)
    assert (oracle["met"], oracle["of"], oracle["need"]) == (2, 4, 4)
    assert [m.split(":")[0] for m in oracle["misses"]] == ["toy/diurnal", "toy/spiky"]


def test_cheaper_than_offline_counts_strictly_lower_attainment_as_a_miss() -> None:
    out = goals(
        [
            case("steady", servingopt=(0.5, 1.0, 0.9990), offline=(1.0, 2.0, 1.0)),
            case("diurnal", servingopt=(0.5, 1.0, 1.0), offline=(1.0, 2.0, 1.0)),
            case("weekly", servingopt=(0.95, 1.0, 1.0), offline=(1.0, 2.0, 1.0)),
        ]
    )
    strict, beside = out[1], out[4]
    assert (strict["met"], strict["of"]) == (1, 3)  # diurnal only
    assert (beside["met"], beside["of"]) == (2, 3)  # steady too: 99.9 % >= 99.5 %
    assert "weekly" in beside["misses"][0]


def test_every_trace_asks_for_the_cost_of_d_at_its_attainment_capped_at_the_bar() -> None:
    out = goals(
        [
            case("steady", servingopt=(1.0, 1.0, 0.996), offline=(1.0, 2.0, 1.0)),
            case("bursty", servingopt=(0.9, 1.0, 0.60), offline=(1.0, 2.0, 0.58)),
            case("spiky", servingopt=(0.9, 1.0, 0.99), offline=(1.0, 2.0, 0.999)),
            case("growing", servingopt=(1.1, 1.0, 1.0), offline=(1.0, 2.0, 1.0)),
        ]
    )
    every = out[0]
    assert (every["met"], every["of"], every["need"]) == (2, 4, 4)
    assert [m.split(":")[0] for m in every["misses"]] == ["toy/spiky", "toy/growing"]
    assert "1.10x (d)'s cost" in every["misses"][1]


def test_optimistic_profiles_ask_for_the_bar_itself() -> None:
    out = goals(
        [
            case("diurnal-optimistic", servingopt=(1.0, 1.0, 0.996), offline=(1.0, 2.0, 0.99)),
            case("steady-optimistic", servingopt=(1.0, 1.0, 0.994), offline=(1.0, 2.0, 0.9)),
        ]
    )
    optimistic = out[3]
    assert (optimistic["met"], optimistic["of"]) == (1, 2)
