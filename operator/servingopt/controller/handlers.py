"""The kopf handlers: the only module that knows kopf.

ModelServing is the only resource with handlers. create, resume and update (of the
spec) share one reconcile; one operator-wide loop re-plans each ModelServing every
``replanIntervalSeconds`` of its policy, jittered by +-10 %. Nodes, ServingPolicies,
InstanceCatalogs, Deployments and HPAs are watched through read-only indexes: kopf
puts no finalizer or annotation on them. ModelServings get no finalizer either (see
:func:`replan_forever` and :func:`release`), so deleting one, or the CRD, never waits
for the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from servingopt.api import GROUP, VERSION, ModelServing, ServingPolicySpec
from servingopt.api.names import InvalidName
from servingopt.kube import io, paths
from servingopt.kube import manifests as m
from servingopt.kube.client import ApiError, Credentials, KubeClient, read_login, scoped
from servingopt.metrics.exported import OperatorMetrics
from servingopt.metrics.pool import PrometheusPool
from servingopt.metrics.source import MetricSource

from .reconcile import Deps, governing_catalog, reconcile
from .settings import Options, configure

MS = (GROUP, VERSION, "modelservings")
TICK_SECONDS = 10.0
JITTER = 0.1
# Outcomes worth another look before the policy's interval: metrics may come back, a
# spec may be fixed elsewhere (a missing Deployment created), a failed apply retried.
RETRY_SOON = frozenset({"Invalid", "Held"})
RETRY_SOON_SECONDS = 15.0
RETRY_FAILED_SECONDS = 60.0  # after an unexpected error in a timed pass
# A re-login that finds the refused credentials unchanged waits this often, this long.
LOGIN_WAIT_TRIES = 10
LOGIN_WAIT_S = 3.0
log = logging.getLogger("servingopt.controller")


@dataclass
class Runtime:
    """Operator-wide state kept in kopf's memo."""

    options: Options
    kube: KubeClient
    metrics: OperatorMetrics
    # One reconcile at a time per namespace: a namespace budget is checked against the
    # siblings' status, which must not change between that read and this apply.
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    next_due: dict[tuple[str, str], float] = field(default_factory=dict)
    rolling: dict[tuple[str, str], bool] = field(default_factory=dict)
    prometheus: PrometheusPool = field(init=False)
    replanner: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        # One bounded HTTP session for every Prometheus URL (none kept per URL).
        self.prometheus = PrometheusPool(
            timeout=self.options.prometheus_timeout,
            deadline=self.options.prometheus_deadline,
            max_response_bytes=self.options.prometheus_max_response_bytes,
            max_age=self.options.metrics_max_age,
            auth=self.options.prometheus_auth,
        )

    def source_for(self, url: str) -> MetricSource:
        return self.prometheus.source_for(url)

    async def close(self) -> None:
        if self.replanner is not None:
            self.replanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.replanner
        await self.kube.close()
        await self.prometheus.close()


def _first(index: Any, key: Any) -> Any:
    store = index.get(key) if index is not None else None
    for value in store or ():
        return value
    return None


def _deps(runtime: Runtime, indexes: Mapping[str, Any]) -> Deps:
    policies, catalogs = indexes.get("policies_index"), indexes.get("catalogs_index")
    nodes_index = indexes.get("nodes_index")

    async def lookup(path: str) -> dict[str, Any] | None:
        name = path.rsplit("/", 1)[-1]
        if "/servingpolicies/" in path and policies is not None:
            spec = _first(policies, name)
            return {"spec": spec} if spec is not None else None
        if "/instancecatalogs/" in path and catalogs is not None:
            spec = _first(catalogs, name)
            return {"metadata": {"name": name}, "spec": spec} if spec is not None else None
        return await runtime.kube.get(path)

    nodes = {k: _first(nodes_index, k) for k in nodes_index} if nodes_index else {}
    namespaces = indexes.get("namespaces_index")

    async def list_policies() -> dict[str, Any]:
        return {name: _first(policies, name) for name in policies or {}}

    async def namespace_labels(namespace: str) -> dict[str, str]:
        labels = _first(namespaces, namespace)
        return dict(labels) if labels is not None else {}

    return Deps(
        kube=runtime.kube,
        source_for=runtime.source_for,
        metrics=runtime.metrics,
        default_prometheus_url=runtime.options.prometheus_url,
        nodes=nodes,
        lookup=lookup,
        list_policies=list_policies if policies is not None else None,
        namespace_labels=namespace_labels if namespaces is not None else None,
        recommend_only=runtime.options.recommend_only,
    )


async def _run(body: Mapping[str, Any], memo: Any, indexes: Mapping[str, Any]) -> None:
    runtime: Runtime = memo.runtime
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    lock = runtime.locks.setdefault(meta["namespace"], asyncio.Lock())
    async with lock:
        try:
            # The body kopf delivered may predate a reconcile that ran while this one
            # waited for the lock; its state annotation and status must be current.
            fresh = await runtime.kube.get(paths.modelserving(*key))
            if fresh is None:
                return
            result = await reconcile(_deps(runtime, indexes), fresh)
        except ApiError as error:
            raise kopf.TemporaryError(f"API error: {error}", delay=10) from error
    interval = result.replan_seconds or float(ServingPolicySpec().replan_interval_seconds)
    if result.outcome in RETRY_SOON:
        interval = min(interval, RETRY_SOON_SECONDS)
    runtime.next_due[key] = time.time() + interval * random.uniform(1 - JITTER, 1 + JITTER)


# Operator lifecycle.


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    options: Options = memo.options
    configure(settings, options)
    credentials = Credentials.load(options.kubeconfig, options.context)
    kube = KubeClient(credentials, timeout=options.api_timeout)
    memo.runtime = Runtime(options, kube, memo.metrics)
    # kopf hands startup handlers the indexes too (empty yet, filled in place later).
    memo.runtime.replanner = asyncio.create_task(replan_forever(memo, kwargs))


@kopf.on.login()
async def login(
    memo: kopf.Memo, retry: int, settings: kopf.OperatorSettings, **_: Any
) -> kopf.ConnectionInfo:
    """kopf's own requests (watches, its patches) use what servingopt's client uses:
    ``--kubeconfig``/``--context`` (or $KUBECONFIG), else the in-cluster service account,
    with ``tokenFile`` and exec plugins (kopf's ``login_with_kubeconfig`` reads neither,
    nor ``--context``). kopf calls this at start and again after a 401; each call reads
    every file again, so a rotated token is picked up. Credentials that have not changed
    since the server refused them are waited for a little (a file being rewritten), then
    handed back anyway: kopf then fails with its LoginError instead of a 401 loop."""
    options: Options = memo.options
    found = await asyncio.to_thread(read_login, options.kubeconfig, options.context)
    identity = await asyncio.to_thread(found.identity)
    if memo.get("login_identity") == identity and retry < LOGIN_WAIT_TRIES:
        raise kopf.TemporaryError(
            "the API server refused the credentials and they have not changed yet; "
            f"reading them again in {LOGIN_WAIT_S:g} s",
            delay=LOGIN_WAIT_S,
        )
    memo["login_identity"] = identity
    return kopf.ConnectionInfo(
        server=found.server,
        ca_path=found.ca_file,
        insecure=not found.verify,
        scheme=found.scheme,
        token=found.token,
        certificate_path=found.cert_file,
        private_key_path=found.key_file,
        trust_env=settings.networking.trust_env,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        await runtime.close()


# Read-only indexes (no finalizers, no annotations on these objects).


@kopf.index("nodes")
def nodes_index(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {
        name: {
            "metadata": {"name": name, "labels": dict(body.metadata.labels)},
            "status": {"allocatable": dict(body.get("status", {}).get("allocatable", {}))},
        }
    }


@kopf.index("namespaces")
def namespaces_index(name: str, labels: kopf.Labels, **_: Any) -> dict[str, Any]:
    return {name: dict(labels)}


@kopf.index(GROUP, VERSION, "servingpolicies")
def policies_index(name: str, spec: kopf.Spec, **_: Any) -> dict[str, Any]:
    return {name: dict(spec)}


@kopf.index(GROUP, VERSION, "instancecatalogs")
def catalogs_index(name: str, spec: kopf.Spec, **_: Any) -> dict[str, Any]:
    return {name: dict(spec)}


@kopf.index("apps", "v1", "deployments")
def deployments_index(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return {(namespace, name): m.rollout_in_flight(body)}


@kopf.index("autoscaling", "v2", "horizontalpodautoscalers")
def hpas_index(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> dict[Any, Any]:
    target = spec.get("scaleTargetRef", {}).get("name")
    return {(namespace, target): name}


@kopf.on.event(
    "autoscaling",
    "v2",
    "horizontalpodautoscalers",
    labels={m.LABEL_MANAGED_BY: m.FIELD_MANAGER, m.LABEL_MODELSERVING: kopf.PRESENT},
)
def owned_hpa_event(
    type: str, namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, **_: Any
) -> None:
    """An HPA servingopt owns was deleted: re-plan its ModelServing at the next tick (the
    reconcile recreates it). Event handlers store nothing on the HPA."""
    runtime: Runtime | None = memo.get("runtime")
    if type == "DELETED" and runtime is not None and namespace:
        runtime.next_due[(namespace, labels[m.LABEL_MODELSERVING])] = 0.0


@kopf.on.event(
    GROUP,
    VERSION,
    "capacitymixes",
    labels={m.LABEL_MANAGED_BY: m.FIELD_MANAGER, m.LABEL_MODELSERVING: kopf.PRESENT},
)
async def capacity_mix_event(
    type: str,
    body: kopf.Body,
    namespace: str | None,
    labels: kopf.Labels,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    """The autoscaler changed a CapacityMix's total: split it between the Deployment and
    its spot copy at once. Only a mix that names the Deployment its ModelServing
    targets, and that ModelServing's spot copy, is followed."""
    runtime: Runtime | None = memo.get("runtime")
    if type == "DELETED" or runtime is None or not namespace:
        return
    index = kwargs.get("modelservings_index")
    target = _first(index, (namespace, labels[m.LABEL_MODELSERVING]))
    spec = body.get("spec") or {}
    if not target or spec.get("onDemandDeployment") != target:
        return
    if spec.get("spotDeployment") != m.spot_deployment_name(target):
        return
    try:
        await io.split_mix(scoped(runtime.kube, namespace), dict(body))
    except (ApiError, InvalidName) as error:
        log.warning("splitting CapacityMix %s/%s failed: %s", namespace, body.metadata.name, error)


# ModelServing handlers.


@kopf.on.resume(*MS)
@kopf.on.create(*MS)
@kopf.on.update(*MS, field="spec")
async def reconcile_modelserving(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    # Returns nothing: kopf would store a result in the status, which servingopt owns.
    await _run(body, memo, kwargs)


@kopf.index(*MS)
def modelservings_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    """ModelServings to re-plan, with their target; none while being deleted."""
    if body.metadata.get("deletionTimestamp"):
        return {}
    return {(namespace, name): (body.get("spec", {}).get("targetRef") or {}).get("name")}


async def replan_forever(memo: kopf.Memo, indexes: Mapping[str, Any]) -> None:
    """Every tick, re-plan the ModelServings that are due.

    Not a ``kopf.timer``: kopf puts a finalizer on every object that has a timer or a
    daemon (whatever ``optional`` says on the delete handler), and a finalizer nobody
    removes makes deleting a ModelServing, its namespace or the CRD hang once the
    operator is uninstalled. One loop over an index needs no finalizer."""
    runtime: Runtime = memo.runtime
    running: dict[tuple[str, str], asyncio.Task[None]] = {}
    try:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            index = indexes.get("modelservings_index") or {}
            for key in list(index):
                if key in running and not running[key].done():
                    continue  # still busy with the previous tick's pass
                target = _first(index, key)
                due = runtime.next_due.get(key, 0.0)
                rollout_done = _rollout_finished(
                    target, indexes.get("deployments_index"), runtime, key
                )
                if time.time() >= due or rollout_done:
                    running[key] = asyncio.create_task(_replan_one(key, memo, indexes))
            running = {k: t for k, t in running.items() if not t.done()}
    finally:
        for task in running.values():
            task.cancel()


async def _replan_one(key: tuple[str, str], memo: kopf.Memo, indexes: Mapping[str, Any]) -> None:
    """One timed pass; a failure is logged and the pass comes again (as a kopf timer's
    retry would: at the next tick after an API error, a minute after anything else)."""
    body = {"metadata": {"namespace": key[0], "name": key[1]}}
    try:
        await _run(body, memo, indexes)
    except kopf.TemporaryError as error:
        log.warning("re-plan of %s/%s failed, retried at the next tick: %s", *key, error)
    except Exception:
        log.exception("re-plan of %s/%s failed; retried in a minute", *key)
        memo.runtime.next_due[key] = time.time() + RETRY_FAILED_SECONDS


def _rollout_finished(
    target: str | None, deployments: Any, runtime: Runtime, key: tuple[str, str]
) -> bool:
    """True once when the target's rollout finishes, so the next plan comes soon."""
    in_flight = _first(deployments, (key[0], target))
    was = runtime.rolling.get(key, False)
    runtime.rolling[key] = bool(in_flight)
    return was and in_flight is False


def _deleted(type: str, **_: Any) -> bool:
    return type == "DELETED"


@kopf.on.event(*MS, when=_deleted)
async def release(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """A ModelServing is gone: best effort, hand its Deployment fields over to
    ``servingopt-released`` with their values. The owned HPA goes by the garbage
    collector (ownerReference).

    An event handler, not ``kopf.on.delete``: a mandatory delete handler needs a finalizer
    (deletion then hangs once the operator is uninstalled), and an ``optional=True`` one
    runs only while another finalizer holds the object, never on a plain delete. Event
    handlers need no finalizer and write nothing on the object; kopf does not retry them,
    so the client's own retries are all the effort (a miss leaves the fields owned by
    ``servingopt``, values intact)."""
    runtime: Runtime = memo.runtime
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    runtime.next_due.pop(key, None)
    runtime.rolling.pop(key, None)
    runtime.metrics.forget(*key)
    try:
        ms = ModelServing.model_validate(
            {"metadata": {"name": key[1], "namespace": key[0]}, "spec": dict(body["spec"])}
        )
    except ValueError:
        return
    try:
        catalog = await governing_catalog(_deps(runtime, kwargs), key[0], ms.spec)
        if catalog is not None:
            await io.release_workload(scoped(runtime.kube, key[0]), body, ms.spec, catalog)
    except (ApiError, io.WorkloadError) as error:
        log.warning("releasing Deployment fields of %s/%s failed: %s", *key, error)
