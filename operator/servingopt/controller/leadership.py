"""``servingopt run --leader-elect``: of several replicas only the Lease holder runs kopf.

A standby holds no watches and writes nothing but its tries at the Lease; it answers
liveness itself (kopf's endpoint exists only while kopf runs). The leader runs kopf
and renews in the background. If it cannot renew within the renew deadline it stops
kopf at once and the process exits with :data:`EXIT_LEADERSHIP_LOST` (as
controller-runtime does): the restarted process campaigns again as a standby, so two
actors never overlap. On a graceful stop (SIGTERM) the leader stops kopf first, then
releases the Lease so a standby takes over at its next try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, NoReturn

from aiohttp import web

from servingopt.kube.client import Credentials, KubeClient
from servingopt.kube.leader import ElectionConfig, LeaderElector, LeadershipLost
from servingopt.metrics.exported import OperatorMetrics

from .settings import Options

EXIT_LEADERSHIP_LOST = 5
log = logging.getLogger("servingopt.leader")

# Runs kopf until the stop flag (first argument) is set; sets the ready flag (second)
# once kopf has started.
RunOperator = Callable[[asyncio.Event, asyncio.Event], Coroutine[Any, Any, None]]


async def run_elected(
    options: Options, metrics: OperatorMetrics, run_operator: RunOperator, stop: asyncio.Event
) -> None:
    """Stand by until this process holds the Lease, then run the operator while it does.

    Returns when stopped (SIGTERM, ``stop``); raises :class:`LeadershipLost` when the
    Lease was lost while leading (the operator has been stopped by then)."""
    config = options.election
    assert config is not None
    gauge = metrics.leader.labels(identity=config.identity)
    gauge.set(0)
    # No retries inside a request: the elector retries every retry period itself, and a
    # request must never outlast the renew deadline.
    kube = KubeClient(
        Credentials.load(options.kubeconfig, options.context),
        timeout=min(options.api_timeout, config.renew_deadline / 2),
        backoffs=(),
    )
    elector = LeaderElector(kube, config, on_change=lambda leading: gauge.set(int(leading)))
    try:
        _stop_on_signals(stop)
        async with standby_health(options.liveness, config.identity):
            if not await elector.acquire(stop):
                return
        await lead(elector, run_operator, stop, config)
    finally:
        await kube.close()


async def lead(
    elector: LeaderElector, run_operator: RunOperator, stop: asyncio.Event, config: ElectionConfig
) -> None:
    # These tasks exist before kopf starts: on its way out kopf cancels every task created
    # after it started, and the Lease must outlive kopf.
    renewer = asyncio.create_task(elector.keep(), name="lease renewer")
    ready = asyncio.Event()
    signals = asyncio.create_task(_take_signals_back(ready, stop), name="signals")
    operator = asyncio.create_task(run_operator(stop, ready), name="operator")
    try:
        await asyncio.wait({renewer, operator}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        signals.cancel()
    if renewer.done():
        await _stop_now(operator, stop, grace=stop_grace(config))
        error = renewer.exception() if not renewer.cancelled() else None
        if isinstance(error, LeadershipLost):
            raise error
        raise LeadershipLost(f"the lease renewer ended: {error!r}") from error
    # kopf ended (a signal, the stop flag, or a crash): it acts no more, so give the
    # Lease back for a standby to take over at once.
    renewer.cancel()
    with contextlib.suppress(asyncio.CancelledError, LeadershipLost):
        await renewer
    await elector.release()
    operator.result()


def stop_grace(config: ElectionConfig) -> float:
    """How long kopf may take to stop, twice (flag, then cancellation): together half the
    margin between the renew deadline and the lease duration, so it has stopped well
    before a standby may take over."""
    return max(0.1, (config.lease_duration - config.renew_deadline) / 4)


async def _stop_now(operator: asyncio.Task[None], stop: asyncio.Event, grace: float) -> None:
    log.error("leader: lost the lease; stopping the operator")
    stop.set()
    done, _ = await asyncio.wait({operator}, timeout=grace)
    if not done:
        operator.cancel()
        done, _ = await asyncio.wait({operator}, timeout=grace)
    if not done:
        # Never act beside the next leader: end the process here.
        exit_now("the operator did not stop in time")
    if not operator.cancelled() and operator.exception() is not None:
        log.warning("leader: the operator stopped with %r", operator.exception())


async def _take_signals_back(ready: asyncio.Event, stop: asyncio.Event) -> None:
    """Once kopf runs, SIGTERM sets the stop flag instead of kopf's own signal future:
    kopf then stops at once (stopped by a signal, it waits 5 s for its idle task that
    waits on the stop flag), and the Lease is released that much sooner."""
    await ready.wait()
    _stop_on_signals(stop)


def exit_now(reason: str) -> NoReturn:
    """End the process with :data:`EXIT_LEADERSHIP_LOST` at once (no cleanup that could
    wait on a task that does not end); restarted, it stands by."""
    log.error("leader: exiting: %s", reason)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_LEADERSHIP_LOST)


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM / SIGINT while standing by end the process (kopf installs its own
    handlers once it runs)."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


@contextlib.asynccontextmanager
async def standby_health(endpoint: str | None, identity: str) -> AsyncIterator[None]:
    """Answer the liveness URL while standing by: a standby is healthy, and kopf's own
    endpoint (served once kopf runs) does not exist yet."""
    if not endpoint:
        yield
        return
    parts = urllib.parse.urlsplit(endpoint)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"leader": False, "identity": identity})

    app = web.Application()
    app.add_routes([web.get(parts.path or "/", healthz)])
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, parts.hostname or "localhost", parts.port or 80)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()  # frees the port for kopf's endpoint
