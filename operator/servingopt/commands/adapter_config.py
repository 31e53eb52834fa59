"""``servingopt adapter-config``: prometheus-adapter rules serving the Pods metrics
servingopt's HPAs scale on (:mod:`servingopt.metrics.adapter`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .exits import EXIT_INVALID_INPUT, EXIT_OK
from .helptext import examples


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], help: str) -> None:
    p = sub.add_parser(
        "adapter-config",
        **examples(
            "servingopt adapter-config > adapter-rules.yaml",
            "servingopt adapter-config --preset triton -f samples/modelservings/support-llm.yaml",
        ),
        help=help,
        description="Print prometheus-adapter's configuration (its config.yaml `rules`) "
        "serving requests_per_second and concurrent_requests per pod, plus the metric "
        "names the ModelServings given with -f ask for.",
    )
    p.add_argument(
        "--preset",
        action="append",
        metavar="NAME",
        help="metrics preset whose counters the rules read (repeatable; default: all)",
    )
    p.add_argument(
        "-f",
        "--file",
        type=Path,
        action="append",
        default=[],
        help="ModelServing YAML whose autoscaling.metricName must be served (`-` for stdin)",
    )
    p.add_argument(
        "--window", type=int, default=60, metavar="SECONDS", help="rate window (default 60)"
    )
    p.add_argument(
        "--namespace-label", default="namespace", help="label holding the pod's namespace"
    )
    p.add_argument("--pod-label", default="pod", help="label holding the pod's name")
    p.set_defaults(func=cmd_adapter_config)


def cmd_adapter_config(args: argparse.Namespace) -> int:
    import yaml

    from servingopt.metrics import adapter

    try:
        wanted = [pair for path in args.file for pair in _metrics_of(path)]
        config = adapter.adapter_config(
            adapter.served_metrics(wanted),
            args.preset,
            window_seconds=args.window,
            namespace_label=args.namespace_label,
            pod_label=args.pod_label,
        )
    except ValueError as error:  # InputError, ConflictingMetric, bad label or preset
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    print(yaml.safe_dump(config, sort_keys=False, width=1000), end="")
    return EXIT_OK


def _metrics_of(path: Path) -> list[tuple[str, str]]:
    """(metric name, kind) of each valid ModelServing in a file; ValueError otherwise."""
    from servingopt.api import ModelServing
    from servingopt.api.validation import Result, validate_stream

    out: list[tuple[str, str]] = []
    for item in validate_stream(path):
        if not isinstance(item, Result) or item.kind != "ModelServing":
            continue
        if not item.ok or not isinstance(item.obj, ModelServing):
            raise ValueError(f"{item.source} ModelServing/{item.name}: {item.problems[0]}")
        auto = item.obj.spec.autoscaling
        out.append((auto.pods_metric_name, auto.metric))
    return out
