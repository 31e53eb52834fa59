"""prometheus-adapter rules that serve the Pods metrics servingopt's HPAs name.

Pure: builds the adapter's ``rules`` configuration (its ``config.yaml``), no I/O.

An HPA servingopt owns scales on ``spec.autoscaling.metricName`` as a ``Pods`` metric with
an ``AverageValue`` target, so the custom metrics API must serve, per pod:

- ``RequestsPerSecond``: the pod's request rate, the summed ``rate()`` of the preset's
  request counters (:attr:`Preset.pod_requests`);
- ``Concurrency``: the pod's mean requests in flight, the ``rate()`` of its request-time
  counter in seconds (:attr:`Preset.pod_busy`; Little's law: rate x mean latency).

One rule per metric name covers every chosen preset: its series query finds any of
their counters, and its metrics query sums whichever the pod exports, so one name works
whatever server a workload runs. Rates are over ``window`` (1 m by default, the window
the planner assumes the HPA sees). Series map to pods through the ``namespace`` and
``pod`` labels, which the scrape configuration must set from Kubernetes service
discovery (never from the target's own labels: a tenant's server could otherwise claim
another namespace's pods).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from servingopt.metrics.promql import LABEL_NAME, PRESETS, Preset, duration

#: The metric names servingopt's HPAs use when a ModelServing names none.
DEFAULT_METRIC_NAMES: dict[str, str] = {
    "RequestsPerSecond": "requests_per_second",
    "Concurrency": "concurrent_requests",
}
ADAPTER_METRICS = tuple(DEFAULT_METRIC_NAMES)


@dataclass(frozen=True)
class ServedMetric:
    """One Pods metric the adapter must serve: its name and what it measures."""

    name: str
    kind: str  # "RequestsPerSecond" or "Concurrency"


class ConflictingMetric(ValueError):
    pass


def served_metrics(wanted: Iterable[tuple[str, str]]) -> list[ServedMetric]:
    """The distinct (name, kind) pairs, sorted by name, plus the default names.

    A name asked for as two kinds cannot be served (the HPA would read the wrong
    quantity for one of them): ConflictingMetric names both."""
    kinds: dict[str, str] = {name: kind for kind, name in DEFAULT_METRIC_NAMES.items()}
    explicit: dict[str, str] = {}
    for name, kind in wanted:
        if kind not in ADAPTER_METRICS:
            continue  # CPUUtilization: the resource metrics API, no adapter rule
        seen = explicit.get(name)
        if seen is not None and seen != kind:
            raise ConflictingMetric(f"metric name {name!r} is asked for as both {seen} and {kind}")
        explicit[name] = kind
    kinds.update(explicit)
    return [ServedMetric(name, kinds[name]) for name in sorted(kinds)]


def _alternation(names: Iterable[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(set(names)))


def _scale(unit_seconds: float) -> str:
    return "" if unit_seconds == 1.0 else f" * {unit_seconds:g}"


def _sum_rate(names: Iterable[str], window: str, suffix: str = "") -> str:
    return (
        f'sum by (<<.GroupBy>>) (rate({{__name__=~"{_alternation(names)}",'
        f"<<.LabelMatchers>>}}[{window}])){suffix}"
    )


def _counters(kind: str, presets: Sequence[Preset]) -> dict[float, list[str]]:
    """The counters a metric reads, grouped by the unit that turns their rate into it."""
    groups: dict[float, list[str]] = {}
    for p in presets:
        if kind == "RequestsPerSecond":
            groups.setdefault(1.0, []).extend(p.pod_requests)
        elif p.pod_busy is not None:
            counter, unit = p.pod_busy
            groups.setdefault(unit, []).append(counter)
    return {unit: names for unit, names in groups.items() if names}


def rule(
    metric: ServedMetric,
    presets: Sequence[Preset],
    *,
    window_seconds: int = 60,
    namespace_label: str = "namespace",
    pod_label: str = "pod",
) -> dict[str, Any]:
    """The adapter rule serving ``metric`` from the presets' counters."""
    for label in (namespace_label, pod_label):
        if not LABEL_NAME.match(label):
            raise ValueError(f"invalid Prometheus label name {label!r}")
    groups = _counters(metric.kind, presets)
    if not groups:
        names = ", ".join(p.name for p in presets)
        raise ValueError(f"no counter for {metric.kind} in the presets {names}")
    window = duration(window_seconds)
    every = [name for names in groups.values() for name in names]
    query = " or ".join(
        _sum_rate(names, window, _scale(unit)) for unit, names in sorted(groups.items())
    )
    return {
        "seriesQuery": (
            f'{{__name__=~"{_alternation(every)}",{namespace_label}!="",{pod_label}!=""}}'
        ),
        "resources": {
            "overrides": {
                namespace_label: {"resource": "namespace"},
                pod_label: {"resource": "pod"},
            }
        },
        "name": {"matches": "^.*$", "as": metric.name},
        "metricsQuery": query,
    }


def adapter_config(
    metrics: Sequence[ServedMetric],
    preset_names: Sequence[str] | None = None,
    *,
    window_seconds: int = 60,
    namespace_label: str = "namespace",
    pod_label: str = "pod",
) -> dict[str, Any]:
    """prometheus-adapter's configuration: one rule per served metric."""
    names = list(preset_names) if preset_names else sorted(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ValueError(f"unknown metrics preset {unknown[0]!r}; known: {sorted(PRESETS)}")
    presets = [PRESETS[n] for n in names]
    return {
        "rules": [
            rule(
                m,
                presets,
                window_seconds=window_seconds,
                namespace_label=namespace_label,
                pod_label=pod_label,
            )
            for m in metrics
        ]
    }
