"""Production fault: the operator is uninstalled while ModelServings exist.

Nothing servingopt leaves behind may hold a deletion: no finalizer on a ModelServing
(kopf would add one for a timer or a mandatory delete handler, and nobody removes it
once the operator is gone: the ModelServing, its namespace and the CRD then hang), none
on the HPA it owns, and nothing of kopf's on the user's Deployment. The CRD itself is
shared by the whole session, so the test checks its deletion precondition (no
ModelServing with servingopt's finalizer) instead of deleting it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_support import Exporter, Operator, modelserving, workload
from fault_support import DEPLOY, owned_hpas, rollout_done, status_of

from servingopt.devcluster import Kubectl, wait_until

FINALIZER = "servingopt.io/finalizer"  # what earlier servingopt versions put on every ModelServing
LEGACY = "legacy"
DELETE_BOUND_S = 10.0  # a ModelServing without finalizers goes at once


def finalizers(obj: dict[str, Any]) -> list[str]:
    return list(obj["metadata"].get("finalizers") or [])


def with_servingopt_finalizer(kubectl: Kubectl) -> list[str]:
    """ModelServings in every namespace that carry servingopt's finalizer."""
    items = kubectl.json("get", "modelservings", "--all-namespaces")["items"]
    return [
        f"{i['metadata']['namespace']}/{i['metadata']['name']}"
        for i in items
        if FINALIZER in finalizers(i)
    ]


def foreign_marks(obj: dict[str, Any]) -> list[str]:
    """Finalizers, owner references and servingopt/kopf annotations on an object."""
    meta = obj["metadata"]
    marks = [f"finalizer {f}" for f in finalizers(obj)]
    marks += [f"ownerReference {o['kind']}" for o in meta.get("ownerReferences") or []]
    marks += [
        f"annotation {a}"
        for a in meta.get("annotations") or {}
        if a.startswith(("servingopt.io/", "kopf.zalando.org/"))
    ]
    return marks


def resumptions(operator: Operator) -> int:
    """How often kopf has resumed a ModelServing (its log line per object and start)."""
    text = operator.log_path.read_text(errors="replace")
    return text.count("Resuming is processed")


@pytest.fixture
def legacy(kubectl: Kubectl, policy: str) -> Iterator[str]:
    """A ModelServing as an earlier servingopt left it: with its finalizer. Freed at the
    end whatever happened, so that a failed run cannot leave a namespace hanging."""
    doc = modelserving(policy)
    doc["metadata"] = {"name": LEGACY, "finalizers": [FINALIZER]}
    doc["spec"]["targetRef"]["name"] = "not-deployed"
    kubectl.apply(doc)
    yield LEGACY
    free = json.dumps({"metadata": {"finalizers": None}})
    kubectl.run("patch", "modelserving", LEGACY, "--type=merge", "-p", free, check=False)


def test_uninstalling_the_operator_leaves_nothing_that_blocks_deletion(
    kubectl: Kubectl, policy: str, exporter: Exporter, operator: Operator
) -> None:
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy))
    wait_until(
        lambda: status_of(kubectl).get("applied"), 180, f"status.applied\n{operator.log_tail()}"
    )
    wait_until(lambda: len(owned_hpas(kubectl)) == 1, 60, "the owned HPA")
    wait_until(lambda: rollout_done(kubectl), 180, "the rollout to finish")

    # While it runs: no finalizer anywhere, nothing of servingopt's or kopf's on the
    # user's Deployment (kopf keeps its own annotations on the ModelServing only).
    ms = kubectl.json("get", "modelserving", DEPLOY)
    assert finalizers(ms) == [], ms["metadata"]
    assert "servingopt.io/last-handled-configuration" in ms["metadata"]["annotations"]
    (hpa,) = owned_hpas(kubectl)
    assert finalizers(hpa) == []
    assert [o["uid"] for o in hpa["metadata"]["ownerReferences"]] == [ms["metadata"]["uid"]]
    before = kubectl.json("get", "deployment", DEPLOY)
    assert foreign_marks(before) == []
    assert before["spec"]["template"]["spec"]["nodeSelector"]["servingopt.io/pool"] != "gpu-v100"

    # Uninstall: the operator stops for good.
    operator.stop()
    started = time.monotonic()
    kubectl.run("delete", "modelserving", DEPLOY, f"--timeout={DELETE_BOUND_S:.0f}s")
    took = time.monotonic() - started
    print(f"\nModelServing deleted {took:.2f} s after the request, no operator running")
    assert took < DELETE_BOUND_S
    assert kubectl.run("get", "modelserving", DEPLOY, check=False).returncode != 0

    # The owned HPA goes by garbage collection; the Deployment stays as it was, valid.
    wait_until(lambda: owned_hpas(kubectl) == [], 60, "the HPA to be garbage-collected")
    after = kubectl.json("get", "deployment", DEPLOY)
    assert after["spec"]["template"] == before["spec"]["template"]
    assert foreign_marks(after) == []
    wait_until(lambda: rollout_done(kubectl), 60, "the Deployment to stay available")
    assert after["status"].get("availableReplicas", 0) >= 1


def test_no_finalizer_is_added_and_an_old_one_is_removed(
    kubectl: Kubectl, admin_kubectl: Kubectl, policy: str, legacy: str, operator: Operator
) -> None:
    """The CRD's deletion precondition holds across an upgrade and a restart: the
    finalizer an earlier version left is removed, none is added again."""
    wait_until(
        lambda: finalizers(kubectl.json("get", "modelserving", legacy)) == [],
        60,
        f"the old finalizer to be removed\n{operator.log_tail()}",
    )
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy))
    reconciled = f"both reconciled\n{operator.log_tail()}"
    wait_until(lambda: status_of(kubectl).get("observedGeneration") == 1, 120, reconciled)

    operator.stop()
    resumed = resumptions(operator)
    operator.start()  # a restart: resume handlers and the re-plan loop run again
    wait_until(lambda: resumptions(operator) >= resumed + 2, 60, "both resumed after a restart")
    time.sleep(25)  # two re-plan ticks (10 s)
    for name in (DEPLOY, legacy):
        assert finalizers(kubectl.json("get", "modelserving", name)) == [], name
    assert with_servingopt_finalizer(admin_kubectl) == []
    assert all(finalizers(h) == [] for h in owned_hpas(kubectl))
