"""The shipped manifests run two replicas safely: leader election on, the identity and
namespace from the downward API, a disruption budget, and a Role that grants the Lease
and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from servingopt.commands.run import election_from
from servingopt.kube.leader import DEFAULT_NAME

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy" / "operator"


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def test_two_replicas_with_leader_election_and_the_downward_api() -> None:
    (deployment,) = docs("deployment.yaml")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--leader-elect" in container["args"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_a_disruption_budget_keeps_one_replica() -> None:
    (pdb,) = docs("pdb.yaml")
    assert pdb["kind"] == "PodDisruptionBudget" and pdb["spec"]["minAvailable"] == 1
    (deployment,) = docs("deployment.yaml")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert "pdb.yaml" in yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]


def test_the_role_grants_the_lease_and_nothing_else() -> None:
    rbac = docs("rbac.yaml")
    (role,) = [d for d in rbac if d["kind"] == "Role"]
    rules = sorted(role["rules"], key=lambda r: r["verbs"])
    assert rules == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [DEFAULT_NAME],
            "verbs": ["get", "update"],
        },
    ]
    (binding,) = [d for d in rbac if d["kind"] == "RoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == "servingopt"
    # Nothing cluster-wide on leases, and nothing for kopf's peering objects.
    (cluster_role,) = [d for d in rbac if d["kind"] == "ClusterRole"]
    groups = {g for rule in cluster_role["rules"] for g in rule["apiGroups"]}
    assert "coordination.k8s.io" not in groups
    assert "kopf.dev" not in groups and "zalando.org" not in groups


def test_the_lease_named_by_the_role_is_the_default_one() -> None:
    import argparse

    args = argparse.Namespace(
        leader_elect=True,
        leader_election_namespace="servingopt-system",
        leader_election_id=DEFAULT_NAME,
        leader_election_identity="pod-a",
        leader_elect_lease_duration=15.0,
        leader_elect_renew_deadline=10.0,
        leader_elect_retry_period=2.0,
    )
    config = election_from(args)
    assert config is not None and config.name == DEFAULT_NAME and config.problems() == []
