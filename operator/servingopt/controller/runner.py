"""The operator's process: kopf with servingopt's handlers, its metrics endpoint and,
with leader election, only while this replica holds the Lease.

``servingopt run`` (:mod:`servingopt.commands.run`) calls :func:`run` with the
:class:`~servingopt.controller.settings.Options` its flags give; tests call it with
their own.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from servingopt.kube.leader import LeadershipLost

from .leadership import exit_now, run_elected
from .settings import Options


def serve_metrics(bind: str, registry: Any) -> None:
    """Serve the operator's Prometheus metrics on ``HOST:PORT``."""
    from prometheus_client import start_http_server

    host, _, port = bind.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1", registry=registry)


async def run(
    options: Options, stop: asyncio.Event | None = None, *, exit_on_loss: bool = False
) -> None:
    """Run the operator until ``stop`` is set (or forever). With leader election, a lost
    Lease raises :class:`LeadershipLost`, or ends the process (``exit_on_loss``)."""
    import kopf

    from servingopt.metrics.exported import OperatorMetrics

    from . import handlers  # noqa: F401  (registers the handlers)

    if options.kubeconfig:
        os.environ["KUBECONFIG"] = options.kubeconfig
    metrics = OperatorMetrics()
    if options.metrics_bind:
        serve_metrics(options.metrics_bind, metrics.registry)

    async def operator(stop_flag: asyncio.Event | None, ready: asyncio.Event | None) -> None:
        await kopf.operator(
            clusterwide=not options.namespaces,
            namespaces=list(options.namespaces),
            standalone=True,  # one replica runs kopf at all (leader election, not peering)
            liveness_endpoint=options.liveness,
            memo=kopf.Memo(options=options, metrics=metrics),
            stop_flag=stop_flag,
            ready_flag=ready,
        )

    if options.election is None:
        await operator(stop, None)
        return
    try:
        await run_elected(options, metrics, operator, stop or asyncio.Event())
    except LeadershipLost as lost:
        if not exit_on_loss:
            raise
        # Not through asyncio.run's cleanup: it waits for every task left, and kopf's may
        # not end (seen when the Lease was lost during kopf's start-up).
        exit_now(str(lost))
