"""kopf settings, chosen deliberately (see docs/operator.md, "kopf settings")."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import kopf

from servingopt.api.base import GROUP
from servingopt.kube.leader import ElectionConfig
from servingopt.metrics.auth import PrometheusAuth
from servingopt.metrics.limits import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
)

API_ERROR_BACKOFFS = (1.0, 1.0, 2.0, 3.0, *([5.0] * 10))  # seconds: 57 s in all


@dataclass(frozen=True)
class Options:
    """What ``servingopt run`` was asked for."""

    namespaces: tuple[str, ...] = ()  # globs; empty: all namespaces
    kubeconfig: str | None = None
    context: str | None = None
    prometheus_url: str | None = None
    liveness: str | None = "http://127.0.0.1:8081/healthz"
    metrics_bind: str | None = "127.0.0.1:8080"
    # Several replicas: only the holder of this Lease runs kopf. None: one process, no
    # election (a local run).
    election: ElectionConfig | None = None
    api_timeout: float = 10.0
    prometheus_timeout: float = DEFAULT_TIMEOUT_SECONDS  # per request
    prometheus_deadline: float = DEFAULT_DEADLINE_SECONDS  # per sample, retries included
    prometheus_max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    metrics_max_age: float = DEFAULT_MAX_AGE_SECONDS  # older samples: MetricsStale
    watch_timeout: float = 300.0
    prometheus_auth: PrometheusAuth | None = None  # for prometheus_url's origin only
    recommend_only: bool = False  # mode Auto acts as Recommend: nothing written to workloads
    extra: dict[str, str] = field(default_factory=dict)


def configure(settings: kopf.OperatorSettings, options: Options) -> None:
    # State kopf keeps on ModelServings lives under servingopt.io/, in annotations only:
    # the status schema is structural (unknown fields are pruned), so kopf's default
    # status.kopf storage would be lost.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Watches: ask the server to end each watch after watch_timeout and the client to
    # give up a little later, so a silently dead connection is replaced within minutes
    # (kopf re-lists on 410 Gone by itself).
    settings.watching.server_timeout = int(options.watch_timeout)  # the API wants an integer
    settings.watching.client_timeout = int(options.watch_timeout) + 30
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    # Other API calls made by kopf (patches of its annotations, events).
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    # API errors (connection refused while the API server restarts, 5xx, 429) are retried
    # at most 5 s apart for about a minute (kopf's default spaces them up to 21 s), so
    # the watches resume within 5 s of the API server's return. Past that a watch starts
    # over and a failed patch is throttled and retried: kopf never gives up for good.
    settings.networking.error_backoffs = API_ERROR_BACKOFFS
    # Events: only the ones servingopt posts on purpose (decisions, rollbacks, invalid
    # specs); handler log lines are not turned into Events.
    settings.posting.enabled = True
    settings.posting.loggers = False
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "servingopt"
    settings.posting.event_name_prefix = "servingopt-"
    # kopf's peering stays off: one replica runs kopf at all, chosen by leader election
    # on a Lease (servingopt.controller.leadership); peering would freeze replicas of
    # equal priority and needs its own CRDs and RBAC.
    settings.peering.standalone = True
    # Handler errors other than kopf.TemporaryError retry after a minute.
    settings.execution.max_workers = 4
    settings.execution.default_backoff = 60
