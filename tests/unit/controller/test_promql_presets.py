"""PromQL presets: every question answered, and nothing in a spec can inject PromQL."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servingopt.metrics.promql import PRESETS, QUESTIONS, matchers, preset, quote

LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')
GO_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}


def unquote(body: str) -> str:
    """Decode a PromQL double-quoted literal's body the way Prometheus' lexer does."""
    out, i = [], 0
    while i < len(body):
        if body[i] != "\\":
            out.append(body[i])
            i += 1
        elif body[i + 1] == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        else:
            out.append(GO_ESCAPES[body[i + 1]])
            i += 2
    return "".join(out)


def literals(query: str) -> list[str]:
    return [unquote(m.group(1)) for m in LITERAL.finditer(query)]


def skeleton(query: str) -> str:
    """The query with every string literal replaced by a placeholder."""
    return LITERAL.sub('"_"', query)


label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True)


@given(values=st.dictionaries(label_names, st.text(max_size=40), min_size=1, max_size=4))
def test_label_values_cannot_change_the_query(values: dict[str, str]) -> None:
    benign = dict.fromkeys(values, "x")
    for p in PRESETS.values():
        hostile = p.queries(values, 300)
        reference = p.queries(benign, 300)
        for question, query in hostile.items():
            # Same structure as with harmless values: the values stayed inside literals…
            assert skeleton(query) == skeleton(reference[question])
            # …and each literal decodes back to exactly what the spec said.
            decoded = set(literals(query))
            assert set(values.values()) <= decoded
        peak = p.peak_rate_query(values, 10, 60)
        assert skeleton(peak) == skeleton(p.peak_rate_query(benign, 10, 60))
        assert set(values.values()) <= set(literals(peak))


@pytest.mark.parametrize(
    "value",
    ['"} or vector(1) #', '\\"}', "a\nb", "\x00", 'x",job=~".*'],
)
def test_quote_round_trips_hostile_values(value: str) -> None:
    assert literals(quote(value)) == [value]


def test_invalid_label_names_are_refused() -> None:
    with pytest.raises(ValueError, match="label name"):
        matchers({'a="b"} or up{x': "v"})


def test_every_preset_answers_demand_and_names_the_series() -> None:
    for name, p in PRESETS.items():
        queries = p.queries({"model": "m"}, 120)
        assert "request_rate" in queries, name
        assert set(queries) <= {*QUESTIONS, "replicas"}
        assert all('model="m"' in q and "[120s]" in q for q in queries.values() if "[" in q)


def test_generic_convention_series() -> None:
    queries = preset("generic").queries({"deployment": "d", "namespace": "n"}, 300)
    sel = 'deployment="d",namespace="n"'
    assert queries["request_rate"] == f"sum(rate(serving_requests_total{{{sel}}}[300s]))"
    assert "serving_request_duration_seconds_bucket" in queries["p99_latency_ms"]
    assert "serving_batch_size_sum" in queries["mean_batch_size"]
    assert "serving_queue_duration_seconds_sum" in queries["queue_ms"]


def test_the_peak_rate_is_the_demand_over_short_windows_within_each_step() -> None:
    for p in PRESETS.values():
        rate = p.demand_query({"model": "m"}, 10)
        assert p.peak_rate_query({"model": "m"}, 10, 60) == f"max_over_time(({rate})[60s:10s])"


def test_unknown_preset_and_empty_matchers_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown metrics preset"):
        preset("nope")
    with pytest.raises(ValueError, match="at least one"):
        preset("generic").queries({}, 300)
