"""GitOps with mode Recommend, on the real control plane: an admin makes Recommend the
default (``ServingPolicy.defaultMode``), a team keeps its Deployment in Git and commits
what servingopt recommends.

A ModelServing without ``spec.mode`` takes the policy's mode: servingopt plans, writes
status (with ``recommendedPatch``) and never writes to the Deployment or creates an
autoscaler. ``servingopt recommend -o kustomize`` turns the status into a kustomize
component; the team's overlay, built by kubectl's kustomize and applied server-side as
Argo CD does, makes the workload run exactly the recommendation: servingopt then
reports it up to date, still without a write of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from e2e_support import Exporter, Operator, gitops_modelserving, load
from fault_support import DEPLOY, FM, status_of

from servingopt.devcluster import Kubectl, wait_until

GITOPS_WORKLOAD = "samples/workloads/resnet50-classifier-gitops.yaml"
ARGO_CD = "argocd-controller"
CLI = str(Path(sys.executable).parent / "servingopt")


def managers(kubectl: Kubectl, kind: str, name: str) -> set[str]:
    obj = kubectl.json("get", kind, name, "--show-managed-fields")
    return {e.get("manager", "") for e in obj["metadata"].get("managedFields") or []}


def condition(kubectl: Kubectl, kind: str) -> dict[str, Any]:
    found = {c["type"]: c for c in status_of(kubectl).get("conditions") or []}
    return dict(found.get(kind) or {})


def sync(kubectl: Kubectl, rendered: str) -> None:
    """Argo CD's sync with ServerSideApply=true: every object, forced, its own manager."""
    kubectl.run(
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager={ARGO_CD}",
        "-f",
        "-",
        input=rendered,
    )


def test_a_recommend_default_writes_nothing_and_its_patch_commits_exactly(
    admin_kubectl: Kubectl,
    kubectl: Kubectl,
    namespace: str,
    policy: str,
    exporter: Exporter,
    operator: Operator,
    tmp_path: Path,
) -> None:
    # On-demand only: a spot mix is split by servingopt only when it owns the mix (Auto).
    patch = json.dumps(
        {"spec": {"defaultMode": "Recommend", "allowedCapacityTypes": ["on-demand"]}}
    )
    admin_kubectl.run("patch", "servingpolicy", policy, "--type=merge", "-p", patch)
    git = load(GITOPS_WORKLOAD)
    sync(kubectl, yaml.safe_dump(git))
    generation = kubectl.json("get", "deployment", DEPLOY)["metadata"]["generation"]
    ms = gitops_modelserving(policy, mode=None)
    assert "mode" not in ms["spec"]
    kubectl.apply(ms)

    # 1. The policy's mode: a recommendation and its patch in status, nothing written.
    status = wait_until(
        lambda: (s := status_of(kubectl)).get("recommendedPatch") and s,
        240,
        f"status.recommendedPatch\n{operator.log_tail()}",
    )
    assert status["mode"] == "Recommend"
    assert kubectl.json("get", "modelserving", DEPLOY)["spec"].get("mode") is None
    recommendation = status["recommendation"]
    assert recommendation["pool"] != "gpu-v100", recommendation
    assert condition(kubectl, "Optimized")["reason"] == "RecommendOnly"
    assert FM not in managers(kubectl, "deployment", DEPLOY)
    assert kubectl.json("get", "deployment", DEPLOY)["metadata"]["generation"] == generation
    assert kubectl.json("get", "hpa")["items"] == []
    print("\nrecommendedPatch:\n" + status["recommendedPatch"])

    # 2. The team commits it as a kustomize component of its overlay and syncs; while
    # the recommendation still moves (the history is minutes old), it commits again.
    overlay = tmp_path / "overlay"
    (overlay / "deployment.yaml").parent.mkdir(parents=True)
    (overlay / "deployment.yaml").write_text(yaml.safe_dump(git))
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": namespace,
                "resources": ["deployment.yaml"],
                "components": ["servingopt"],
            }
        )
    )
    up_to_date: dict[str, Any] = {}
    for attempt in range(6):
        served = kubectl.run("get", "modelserving", DEPLOY, "-o", "yaml").stdout
        committed = yaml.safe_load(served)["status"]
        done = subprocess.run(
            [CLI, "recommend", "-f", "-", "-o", "kustomize", "--dir", str(overlay / "servingopt")],
            input=served,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        rendered = kubectl.run("kustomize", str(overlay)).stdout
        kinds = sorted(d["kind"] for d in yaml.safe_load_all(rendered) if d)
        assert kinds == ["Deployment", "HorizontalPodAutoscaler"], kinds
        sync(kubectl, rendered)
        recommendation = committed["recommendation"]
        try:
            up_to_date = wait_until(
                lambda: (c := condition(kubectl, "Optimized")).get("reason") == "UpToDate" and c,
                45,
                "Optimized=True (UpToDate) after the sync",
            )
            break
        except TimeoutError:
            moved = status_of(kubectl).get("recommendedPatch") != committed["recommendedPatch"]
            assert moved, f"synced, not up to date, same recommendation\n{operator.log_tail()}"
            print(f"sync {attempt + 1}: the recommendation moved; committing it again")
    assert up_to_date, f"never up to date after 6 syncs\n{operator.log_tail()}"

    # 3. The workload runs the recommendation; servingopt says so and still wrote nothing.
    pod = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["servingopt.io/pool"] == recommendation["pool"]
    hpa = kubectl.json("get", "hpa", DEPLOY)
    assert hpa["spec"]["minReplicas"] == recommendation["replicas"]["min"]
    assert hpa["spec"]["maxReplicas"] == recommendation["replicas"]["max"]
    print(f"after the sync: {up_to_date}")
    assert up_to_date["status"] == "True"
    assert status_of(kubectl)["mode"] == "Recommend"
    assert condition(kubectl, "Ready")["status"] == "True"
    assert FM not in managers(kubectl, "deployment", DEPLOY)
    assert FM not in managers(kubectl, "hpa", DEPLOY)
    columns = kubectl.run("get", "modelserving", DEPLOY).stdout.split("\n")
    print("\n".join(columns))
    assert columns[0].split()[:3] == ["NAME", "READY", "MODE"]
    assert columns[1].split()[1:3] == ["True", "Recommend"]
