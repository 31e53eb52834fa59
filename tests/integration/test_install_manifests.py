"""Everything an admin installs, accepted by the real API server: the kustomize base
(deploy/operator) and each overlay (deploy/overlays/*), rendered by the project's own
kubectl (its built-in kustomize), plus the default catalog and policy, each object
applied server-side with --dry-run=server after the CRDs it needs (servingopt's, and
the Prometheus Operator's taken from its Go module by hack/prometheus-operator-crds.sh).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from servingopt.devcluster import Kubectl

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATIONS = {
    "base": "deploy/operator",
    "recommend-only": "deploy/overlays/recommend-only",
    "namespaced": "deploy/overlays/namespaced",
    "prometheus-operator": "deploy/overlays/prometheus-operator",
}
Doc = dict[str, Any]


@pytest.fixture(scope="module")
def crds(admin_kubectl: Kubectl) -> Kubectl:
    monitoring = subprocess.run(
        [str(ROOT / "hack/prometheus-operator-crds.sh")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for path in (ROOT / "crds", Path(monitoring)):
        admin_kubectl.run("apply", "--server-side", "-f", str(path))
    admin_kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    return admin_kubectl


def rendered(kubectl: Kubectl, path: str) -> list[Doc]:
    text = kubectl.run("kustomize", str(ROOT / path)).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def dry_run(kubectl: Kubectl, docs: list[Doc]) -> None:
    """Applies ``docs`` server-side with --dry-run=server; the namespaces they live in
    are created for real first (a dry-run Namespace does not hold a dry-run object)."""
    for ns in sorted({d["metadata"].get("namespace") for d in docs} - {None}):
        if kubectl.run("get", "namespace", ns, check=False).returncode != 0:
            kubectl.run("create", "namespace", ns)
    done = kubectl.run(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=installer",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    accepted = [line for line in done.stdout.splitlines() if "(server dry run)" in line]
    assert len(accepted) == len(docs), done.stdout


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_every_object_of_the_kustomization_is_accepted(crds: Kubectl, name: str) -> None:
    docs = rendered(crds, KUSTOMIZATIONS[name])
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ServiceAccount"} <= kinds
    dry_run(crds, docs)
    print(f"{name}: {len(docs)} objects accepted ({', '.join(sorted(kinds))})")


def test_the_overlays_change_what_they_say(crds: Kubectl) -> None:
    def args(docs: list[Doc]) -> list[str]:
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])

    def verbs(docs: list[Doc], kind: str, name: str) -> set[str]:
        role = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
        return {v for rule in role["rules"] for v in rule["verbs"]}

    base = rendered(crds, KUSTOMIZATIONS["base"])
    readonly = rendered(crds, KUSTOMIZATIONS["recommend-only"])
    assert "--recommend-only" in args(readonly) and "--recommend-only" not in args(base)
    written = {"create", "update", "delete"}
    assert verbs(base, "ClusterRole", "servingopt") & written
    role = next(
        d for d in readonly if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "servingopt"
    )
    for rule in role["rules"]:  # writes: its own status and annotations, and Events
        if not set(rule["verbs"]) <= {"get", "list", "watch"}:
            assert set(rule["resources"]) <= {"modelservings", "modelservings/status", "events"}
            assert "delete" not in rule["verbs"], rule

    namespaced = rendered(crds, KUSTOMIZATIONS["namespaced"])
    assert "--namespace=$(POD_NAMESPACE)" in args(namespaced)
    assert not any(d["kind"] == "Namespace" for d in namespaced)
    cluster_roles = [d for d in namespaced if d["kind"] == "ClusterRole"]
    operator_roles = [r for r in cluster_roles if r["metadata"]["name"].startswith("servingopt-")]
    reads = {"get", "list", "watch"}
    for role in operator_roles:
        if role["metadata"]["name"] in ("servingopt-edit", "servingopt-view"):
            continue  # the tenants' aggregated roles, as in the base
        assert {v for r in role["rules"] for v in r["verbs"]} <= reads, role
    assert verbs(namespaced, "Role", "servingopt") & written

    monitored = rendered(crds, KUSTOMIZATIONS["prometheus-operator"])
    kinds = {d["kind"] for d in monitored}
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    monitor = next(d for d in monitored if d["kind"] == "ServiceMonitor")
    service = next(d for d in monitored if d["kind"] == "Service")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    assert wanted.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_default_catalog_and_policy_are_accepted(crds: Kubectl) -> None:
    docs = [
        d
        for path in ("deploy/catalog", "deploy/policy")
        for f in sorted((ROOT / path).glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d
    ]
    assert {d["kind"] for d in docs} == {"InstanceCatalog", "ServingPolicy"}
    dry_run(crds, docs)
