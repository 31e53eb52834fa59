"""Production fault: a GitOps tool re-applies the user's manifest every few seconds
while servingopt runs in Auto mode and has applied its configuration.

Two tools, as they apply by default: Argo CD with client-side ``kubectl apply`` (the
last-applied annotation and a three-way merge), Flux with server-side apply as field
manager ``kustomize-controller``, forcing conflicts (Flux takes back fields that drift).

- With the manifest written as the README tells (samples/workloads/
  resnet50-classifier-gitops.yaml: nothing servingopt owns), every apply succeeds,
  servingopt's fields survive all of them, the Deployment does not change at all and
  servingopt writes nothing.
- With the full manifest (servingopt's fields in Git), client-side: each sync puts the
  Git values back; servingopt does not fight back faster than its policy allows (no
  second Deployment apply within ``minIntervalSeconds``). The figures are printed.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from e2e_support import Exporter, Operator, gitops_modelserving, load, modelserving, workload
from fault_support import DEPLOY, FM, converged, manager_times, status_of, writes

from servingopt.devcluster import Kubectl, wait_until

PERIOD_S = 3.0
DURATION_S = 90.0
GITOPS_WORKLOAD = "samples/workloads/resnet50-classifier-gitops.yaml"
POOL = "servingopt.io/pool"
BATCH_ENV = "TRITON_MAX_BATCH_SIZE"
REPLAN_S = 30.0  # the test policy's replanIntervalSeconds
MIN_INTERVAL_S = 600.0  # and its guardrails.minIntervalSeconds

Tool = Callable[[Kubectl, dict[str, Any]], Any]


def argo_cd(kubectl: Kubectl, doc: dict[str, Any]) -> Any:
    """Argo CD's default sync: client-side apply."""
    return kubectl.apply(doc, check=False)


def flux(kubectl: Kubectl, doc: dict[str, Any]) -> Any:
    """Flux's kustomize-controller: server-side apply under its own manager, forced."""
    return kubectl.apply(
        doc,
        server_side=True,
        field_manager="kustomize-controller",
        force_conflicts=True,
        check=False,
    )


# Argo CD with ServerSideApply=true applies as Flux does (forced, its own manager
# argocd-controller): the flux case covers it.
TOOLS: dict[str, Tool] = {"argocd": argo_cd, "flux": flux}


def optimized(kubectl: Kubectl) -> dict[str, Any]:
    """The ModelServing's Optimized condition."""
    conditions = {c["type"]: c for c in status_of(kubectl).get("conditions") or []}
    return dict(conditions.get("Optimized") or {})


def servingopt_view(deployment: dict[str, Any]) -> dict[str, Any]:
    """The fields servingopt set that must survive: pool, GPU request, batching env."""
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    return {
        "pool": (pod.get("nodeSelector") or {}).get(POOL),
        "tolerations": pod.get("tolerations"),
        "gpu": (container.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu"),
        "batch": env.get(BATCH_ENV),
        "precision": env.get("MODEL_PRECISION"),
    }


@dataclass
class Syncs:
    """What a run of re-applies saw."""

    failures: list[str] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    generations: list[int] = field(default_factory=list)
    servingopt_applies: list[tuple[str, ...]] = field(default_factory=list)
    count: int = 0


def flips(values: list[Any]) -> int:
    """How often a value differs from the one before it."""
    return sum(1 for a, b in itertools.pairwise(values) if a != b)


def resync(kubectl: Kubectl, tool: Tool, doc: dict[str, Any], seconds: float) -> Syncs:
    """Applies ``doc`` with ``tool`` every PERIOD_S for ``seconds``; after each apply,
    notes the Deployment's resourceVersion, generation and servingopt's fields."""
    seen = Syncs()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tick = time.monotonic()
        done = tool(kubectl, copy.deepcopy(doc))
        seen.count += 1
        if done.returncode != 0:
            seen.failures.append(done.stderr.strip())
        live = kubectl.json("get", "deployment", DEPLOY, "--show-managed-fields")
        seen.views.append(servingopt_view(live))
        seen.versions.append(live["metadata"]["resourceVersion"])
        seen.generations.append(int(live["metadata"]["generation"]))
        seen.servingopt_applies.append(tuple(manager_times(live, FM)))
        time.sleep(max(0.0, PERIOD_S - (time.monotonic() - tick)))
    return seen


@pytest.mark.parametrize("tool_name", sorted(TOOLS))
def test_a_gitops_tool_reapplying_the_documented_manifest_changes_nothing(
    tool_name: str, kubectl: Kubectl, policy: str, exporter: Exporter, operator: Operator
) -> None:
    tool = TOOLS[tool_name]
    git = load(GITOPS_WORKLOAD)
    assert tool(kubectl, git).returncode == 0  # the tool creates the Deployment
    kubectl.apply(gitops_modelserving(policy))
    converged(kubectl, operator)
    live = kubectl.json("get", "deployment", DEPLOY, "--show-managed-fields")
    chosen = servingopt_view(live)
    assert chosen["pool"] and chosen["batch"] and chosen["precision"], chosen
    writes_before = writes(operator)

    seen = resync(kubectl, tool, git, DURATION_S)
    writes_during = writes(operator) - writes_before
    print(
        f"\n{tool_name}: {seen.count} applies in {DURATION_S:.0f} s, "
        f"{len(seen.failures)} failed; Deployment resourceVersion changed "
        f"{flips([live['metadata']['resourceVersion'], *seen.versions])} times, "
        f"generation {flips([live['metadata']['generation'], *seen.generations])} "
        f"times; servingopt wrote {writes_during:.0f} times"
    )
    assert seen.failures == []
    assert all(view == chosen for view in seen.views), seen.views
    assert set(seen.generations) == {int(live["metadata"]["generation"])}
    # No write-back: servingopt never applied to the Deployment again, and wrote no more
    # than its own status when a re-plan's recommendation moved (the history is young).
    assert set(seen.servingopt_applies) == {tuple(manager_times(live, FM))}
    assert writes_during <= math.ceil(DURATION_S / REPLAN_S), operator.log_tail(60)
    assert status_of(kubectl)["applied"]["pool"] == chosen["pool"]
    assert optimized(kubectl)["reason"] != "Overwritten"


def test_the_full_manifest_reapplied_client_side_fights_and_servingopt_does_not_amplify(
    kubectl: Kubectl, policy: str, exporter: Exporter, operator: Operator
) -> None:
    """The failure mode the README warns about, measured: servingopt's fields in Git."""
    full = workload()
    assert argo_cd(kubectl, full).returncode == 0
    kubectl.apply(modelserving(policy))
    wait_until(
        lambda: status_of(kubectl).get("applied"), 180, f"status.applied\n{operator.log_tail()}"
    )
    live = kubectl.json("get", "deployment", DEPLOY, "--show-managed-fields")
    ours = servingopt_view(live)
    ours_selector = live["spec"]["template"]["spec"]["nodeSelector"]
    assert ours["pool"] != "gpu-v100"
    writes_before, started = writes(operator), time.monotonic()

    seen = resync(kubectl, argo_cd, full, DURATION_S)
    minutes = (time.monotonic() - started) / 60
    writes_during = writes(operator) - writes_before
    pools = [v["pool"] for v in seen.views]
    servingopt_applies = flips([tuple(manager_times(live, FM)), *seen.servingopt_applies])
    generations = flips([int(live["metadata"]["generation"]), *seen.generations])
    selector = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"]["nodeSelector"]
    pods = kubectl.json("get", "pods", "-l", f"app.kubernetes.io/name={DEPLOY}")["items"]
    pending = sum(1 for pod in pods if pod["status"].get("phase") == "Pending")
    print(f"\nnodeSelector after the syncs: {selector}; {pending} of {len(pods)} pods Pending")
    print(
        f"\nfull manifest, client-side: {seen.count} applies, {len(seen.failures)} failed; "
        f"pool {ours['pool']} -> {pools[0]} after the first sync, "
        f"{flips(pools)} pool flips after it; "
        f"Deployment generation +{generations} ({generations / minutes:.1f}/min); "
        f"servingopt: {servingopt_applies} Deployment/HPA applies, "
        f"{writes_during:.0f} writes ({writes_during / minutes:.1f}/min); "
        f"Optimized: {optimized(kubectl)}"
    )
    assert seen.failures == []
    # Git wins at once and stays: servingopt does not take the fields back within its
    # minimum interval between changes (no flip-flop, no rollout per sync).
    assert pools[0] == "gpu-v100"
    assert flips(pools) == 0
    # The three-way merge keeps selector keys Git never had: Git's pool with the
    # instance type servingopt chose, a selector no node matches (new pods Pending).
    assert selector["servingopt.io/pool"] == "gpu-v100"
    assert (
        selector["node.kubernetes.io/instance-type"]
        == ours_selector["node.kubernetes.io/instance-type"]
    )
    assert servingopt_applies <= math.ceil(DURATION_S / MIN_INTERVAL_S)
    # Its own writes (status, state, Events) stay within a few per re-plan.
    assert writes_during <= 3 * math.ceil(DURATION_S / REPLAN_S) + 3
    # And the status says why it no longer runs what it applied.
    condition = optimized(kubectl)
    assert condition["status"] == "False" and condition["reason"] == "Overwritten", condition
    assert f"pool {ours['pool']} -> gpu-v100" in condition["message"], condition


def test_the_full_manifest_applied_server_side_unforced_names_the_conflict(
    kubectl: Kubectl, policy: str, exporter: Exporter, operator: Operator
) -> None:
    """servingopt's fields in Git, applied server-side without forcing (a pipeline's
    ``kubectl apply --server-side``): the API server refuses, naming servingopt as the
    manager of each contested field, and servingopt's fields stay as they were."""
    git = load(GITOPS_WORKLOAD)
    assert flux(kubectl, git).returncode == 0
    kubectl.apply(gitops_modelserving(policy))
    converged(kubectl, operator)
    before = servingopt_view(kubectl.json("get", "deployment", DEPLOY))
    full = workload()
    done = kubectl.apply(full, server_side=True, field_manager="ci-pipeline", check=False)
    print(f"\nunforced server-side apply of the full manifest: {done.stderr.strip()}")
    assert done.returncode != 0
    assert "conflict" in done.stderr.lower() and f'"{FM}"' in done.stderr, done.stderr
    assert ".spec.template.spec.nodeSelector" in done.stderr, done.stderr
    assert servingopt_view(kubectl.json("get", "deployment", DEPLOY)) == before
