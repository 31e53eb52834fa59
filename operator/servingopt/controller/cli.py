"""``servingopt run``: the operator, on kopf, with servingopt's defaults."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from .settings import Options


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run the operator (kopf) against the current cluster",
        description="Watch ModelServings and keep their workloads cheap within the SLO. "
        "Uses $KUBECONFIG / ~/.kube/config, or the in-cluster service account.",
    )
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="GLOB",
        help="serve only these namespaces (globs such as 'ml-*', repeatable); default: all",
    )
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument(
        "--prometheus-url",
        default=os.environ.get("SERVINGOPT_PROMETHEUS_URL"),
        help="Prometheus used when neither the ModelServing nor its policy names one",
    )
    p.add_argument(
        "--liveness",
        default="http://127.0.0.1:8081/healthz",
        help="liveness endpoint URL to serve ('' to disable)",
    )
    p.add_argument(
        "--metrics-bind",
        default="127.0.0.1:8080",
        help="HOST:PORT serving the operator's Prometheus metrics ('' to disable)",
    )
    p.add_argument(
        "--peering",
        help="peering name for several replicas (one active); default: standalone",
    )
    p.add_argument("--api-timeout", type=float, default=10.0, help="seconds per API request")
    p.add_argument(
        "--watch-timeout", type=float, default=300.0, help="seconds before a watch is renewed"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="verbose logs")
    p.set_defaults(func=cmd_run)


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        context=args.context,
        prometheus_url=args.prometheus_url,
        liveness=args.liveness or None,
        metrics_bind=args.metrics_bind or None,
        peering=args.peering,
        api_timeout=args.api_timeout,
        watch_timeout=args.watch_timeout,
    )


def serve_metrics(bind: str, registry: Any) -> None:
    from prometheus_client import start_http_server

    host, _, port = bind.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1", registry=registry)


async def run(options: Options, stop: asyncio.Event | None = None) -> None:
    """Run the operator until ``stop`` is set (or forever)."""
    import kopf

    from servingopt.metrics.exported import OperatorMetrics

    from . import handlers  # noqa: F401  (registers the handlers)

    if options.kubeconfig:
        os.environ["KUBECONFIG"] = options.kubeconfig
    metrics = OperatorMetrics()
    if options.metrics_bind:
        serve_metrics(options.metrics_bind, metrics.registry)
    await kopf.operator(
        clusterwide=not options.namespaces,
        namespaces=list(options.namespaces),
        standalone=options.peering is None,
        peering_name=options.peering,
        liveness_endpoint=options.liveness,
        memo=kopf.Memo(options=options, metrics=metrics),
        stop_flag=stop,
    )


def cmd_run(args: argparse.Namespace) -> int:
    import kopf

    kopf.configure(verbose=args.verbose, log_prefix=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    asyncio.run(run(options_from(args)))
    return 0
