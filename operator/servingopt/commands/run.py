"""``servingopt run``: the operator, on kopf, with servingopt's defaults.

The flags become :class:`~servingopt.controller.settings.Options`; the operator
itself is :func:`servingopt.controller.runner.run`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from servingopt.controller.settings import Options
from servingopt.kube.leader import (
    DEFAULT_NAME,
    DEFAULT_NAMESPACE,
    LEASE_DURATION_S,
    RENEW_DEADLINE_S,
    RETRY_PERIOD_S,
    ElectionConfig,
    default_identity,
)
from servingopt.metrics.auth import PrometheusAuth
from servingopt.metrics.limits import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
)

from .exits import EXIT_INVALID_INPUT, EXIT_NO_CREDENTIALS, EXIT_OK
from .helptext import examples

EXAMPLES = (
    "servingopt run --prometheus-url http://prometheus.monitoring.svc:9090",
    "servingopt run --kubeconfig ~/.kube/dev --namespace 'ml-*' --metrics-bind 0.0.0.0:8080",
    "servingopt run --leader-elect            # in a Deployment with several replicas",
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], help: str) -> None:
    p = sub.add_parser(
        "run",
        help=help,
        description="Watch ModelServings and keep their workloads cheap within the SLO. "
        "Uses $KUBECONFIG / ~/.kube/config, or the in-cluster service account.",
        **examples(*EXAMPLES),
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
        help=argparse.SUPPRESS,  # removed: kopf peering freezes replicas of equal priority
    )
    add_election_arguments(p)
    add_prometheus_arguments(p)
    p.add_argument("--api-timeout", type=float, default=10.0, help="seconds per API request")
    p.add_argument(
        "--watch-timeout", type=float, default=300.0, help="seconds before a watch is renewed"
    )
    p.add_argument(
        "--recommend-only",
        action="store_true",
        help="act as mode Recommend wherever a ModelServing or its policy says Auto: "
        "status only, nothing written to workloads (for a read-only RBAC install)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="verbose logs")
    p.set_defaults(func=cmd_run)


def add_election_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "leader election", "several replicas: only the holder of a coordination.k8s.io Lease acts"
    )
    g.add_argument(
        "--leader-elect",
        action="store_true",
        help="stand by until this process holds the Lease; off: act at once (one process)",
    )
    g.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE") or DEFAULT_NAMESPACE,
        help=f"namespace of the Lease (default: $POD_NAMESPACE, else {DEFAULT_NAMESPACE})",
    )
    g.add_argument(
        "--leader-election-id",
        default=DEFAULT_NAME,
        help=f"name of the Lease (default: {DEFAULT_NAME})",
    )
    g.add_argument(
        "--leader-election-identity",
        help="this replica's holderIdentity (default: $POD_NAME, else host_pid_random)",
    )
    for flag, default, meaning in (
        ("lease-duration", LEASE_DURATION_S, "how long a standby waits on an unrenewed Lease"),
        ("renew-deadline", RENEW_DEADLINE_S, "how long the leader tries to renew before it stops"),
        ("retry-period", RETRY_PERIOD_S, "time between tries to acquire or renew"),
    ):
        g.add_argument(
            f"--leader-elect-{flag}",
            type=float,
            default=default,
            metavar="SECONDS",
            help=f"{meaning} (default: {default:g})",
        )


def _positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def add_prometheus_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "Prometheus", "bounds on what a (possibly tenant-chosen) Prometheus may cost"
    )
    g.add_argument(
        "--prometheus-timeout",
        type=_positive(float),
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"per Prometheus request (default: {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    g.add_argument(
        "--prometheus-deadline",
        type=_positive(float),
        default=DEFAULT_DEADLINE_SECONDS,
        metavar="SECONDS",
        help=f"all queries of one sample, retries included (default: {DEFAULT_DEADLINE_SECONDS:g})",
    )
    g.add_argument(
        "--prometheus-max-response-bytes",
        type=_positive(int),
        default=DEFAULT_MAX_RESPONSE_BYTES,
        metavar="BYTES",
        help=f"larger answers are abandoned (default: {DEFAULT_MAX_RESPONSE_BYTES})",
    )
    g.add_argument(
        "--metrics-max-age",
        type=_positive(float),
        default=DEFAULT_MAX_AGE_SECONDS,
        metavar="SECONDS",
        help="older samples are not acted on (MetricsStale) "
        f"(default: {DEFAULT_MAX_AGE_SECONDS:g})",
    )
    a = p.add_argument_group(
        "Prometheus credentials",
        "sent only to the origin of --prometheus-url, never to a Prometheus a ModelServing "
        "or policy names elsewhere; files are read again on every request",
    )
    a.add_argument("--prometheus-bearer-token-file", metavar="FILE", help="bearer token")
    a.add_argument("--prometheus-username", help="basic auth user (with a password file)")
    a.add_argument("--prometheus-password-file", metavar="FILE", help="basic auth password")
    a.add_argument(
        "--prometheus-header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra request header, e.g. X-Scope-OrgID=team-a (repeatable)",
    )
    a.add_argument("--prometheus-ca-file", metavar="FILE", help="CA bundle to verify TLS with")
    a.add_argument(
        "--prometheus-insecure-skip-verify",
        action="store_true",
        help="do not verify the server's TLS certificate (testing only)",
    )


def prometheus_auth_from(args: argparse.Namespace) -> PrometheusAuth | None:
    headers = {}
    for pair in args.prometheus_header:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--prometheus-header {pair!r}: expected NAME=VALUE")
        headers[name.strip()] = value.strip()
    auth = PrometheusAuth(
        url=args.prometheus_url or "",
        bearer_token_file=args.prometheus_bearer_token_file,
        username=args.prometheus_username,
        password_file=args.prometheus_password_file,
        headers=headers,
        ca_file=args.prometheus_ca_file,
        insecure_skip_verify=args.prometheus_insecure_skip_verify,
    )
    if not auth.configured:
        return None
    if not args.prometheus_url:
        raise ValueError("Prometheus credentials need --prometheus-url (they go to it only)")
    problems = auth.problems()
    if problems:
        raise ValueError("; ".join(problems))
    return auth


def election_from(args: argparse.Namespace) -> ElectionConfig | None:
    if not args.leader_elect:
        return None
    return ElectionConfig(
        namespace=args.leader_election_namespace,
        name=args.leader_election_id,
        identity=args.leader_election_identity or default_identity(),
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
    )


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        context=args.context,
        prometheus_url=args.prometheus_url,
        liveness=args.liveness or None,
        metrics_bind=args.metrics_bind or None,
        election=election_from(args),
        api_timeout=args.api_timeout,
        watch_timeout=args.watch_timeout,
        prometheus_timeout=args.prometheus_timeout,
        prometheus_deadline=args.prometheus_deadline,
        prometheus_max_response_bytes=args.prometheus_max_response_bytes,
        metrics_max_age=args.metrics_max_age,
        recommend_only=args.recommend_only,
        prometheus_auth=prometheus_auth_from(args),
    )


def cmd_run(args: argparse.Namespace) -> int:
    import kopf

    from servingopt.controller.runner import run

    if args.peering:
        print(
            "servingopt run: --peering was removed; run several replicas with --leader-elect",
            file=sys.stderr,
        )
        return EXIT_INVALID_INPUT
    try:
        options = options_from(args)
    except ValueError as error:
        print(f"servingopt run: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    problems = options.election.problems() if options.election else []
    for problem in problems:
        print(f"servingopt run: leader election: {problem}", file=sys.stderr)
    if problems:
        return EXIT_INVALID_INPUT
    missing = credentials_problem(options.kubeconfig, options.context)
    if missing:
        print(f"servingopt run: {missing}", file=sys.stderr)
        return EXIT_NO_CREDENTIALS
    kopf.configure(verbose=args.verbose, log_prefix=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    asyncio.run(run(options, exit_on_loss=True))
    return EXIT_OK


def credentials_problem(kubeconfig: str | None, context: str | None) -> str | None:
    """Why no Kubernetes credentials can be loaded (None: they can), in one line."""
    from kubernetes import client, config

    from servingopt.kube.client import read_login

    try:
        read_login(kubeconfig, context)
        return None
    except Exception as error:  # kubernetes' ConfigException, an unreadable file, …
        in_cluster = _one_line(error)
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=client.Configuration()
        )
        from_file = "unusable"
    except Exception as error:
        from_file = _one_line(error)
    where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    tried = f"kubeconfig {where}: {from_file}"
    if in_cluster != from_file:  # a broken kubeconfig stops before the in-cluster try
        tried += f"; in-cluster service account: {in_cluster}"
    return f"no usable Kubernetes credentials: {tried} (give --kubeconfig, or run in a pod)"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
