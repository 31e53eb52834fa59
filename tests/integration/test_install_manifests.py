"""Everything an admin installs, accepted by the real API server: the kustomize base
(deploy/operator) and each overlay (deploy/overlays/*), rendered by the project's own
kubectl (its built-in kustomize); the Helm chart (deploy/helm/servingopt) linted and
rendered by helm built from its Go module, with its main value sets; the default
catalog and policy. Each object is applied server-side with --dry-run=server after the
CRDs it needs (servingopt's, and the Prometheus Operator's taken from its Go module by
hack/prometheus-operator-crds.sh).
"""

from __future__ import annotations

import json
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
        "--force-conflicts",  # other tests' real objects of the same name may exist
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


# Helm: the chart, rendered with the value sets an admin is most likely to use.
CHART = ROOT / "deploy/helm/servingopt"
HELM_VALUES: dict[str, list[str]] = {
    "defaults": [],
    "recommend-only": ["--set", "recommendOnly=true"],
    "namespaced": ["--set", "rbac.scope=namespaced", "--set", "watchNamespaces={ml-a,ml-b}"],
    "monitoring": [
        "--set",
        "serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboard.enabled=true",
    ],
    "prometheus-auth": [
        "--set",
        "prometheus.url=https://prometheus.example:9090",
        "--set",
        "prometheus.auth.bearerTokenSecret.name=prometheus-token",
        "--set",
        "prometheus.auth.caSecret.name=prometheus-ca",
        "--set-string",
        "prometheus.auth.headers.X-Scope-OrgID=team-a",
    ],
    "one-replica": ["--set", "replicaCount=1,leaderElection.enabled=false"],
}
RELEASE, RELEASE_NS = "servingopt", "servingopt-helm"


def helm(kubectl: Kubectl, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """helm from the control-plane bin dir (hack/build-controlplane.sh builds it)."""
    binary = Path(kubectl.binary).parent / "helm"
    assert binary.exists(), f"{binary}: run `make controlplane`"
    return subprocess.run(
        [str(binary), f"--kubeconfig={kubectl.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=check,
    )


def helm_template(kubectl: Kubectl, values: list[str]) -> list[Doc]:
    done = helm(kubectl, "template", RELEASE, str(CHART), "-n", RELEASE_NS, *values)
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.mark.parametrize("name", sorted(HELM_VALUES))
def test_helm_lints_and_every_rendered_object_is_accepted(crds: Kubectl, name: str) -> None:
    lint = helm(crds, "lint", "--strict", str(CHART), *HELM_VALUES[name], check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    docs = helm_template(crds, HELM_VALUES[name])
    for ns in ("ml-a", "ml-b"):
        if crds.run("get", "namespace", ns, check=False).returncode != 0:
            crds.run("create", "namespace", ns)
    dry_run(crds, docs)
    kinds = sorted({d["kind"] for d in docs})
    print(f"helm {name}: {len(docs)} objects accepted ({', '.join(kinds)})")


def test_the_chart_grants_what_the_kustomize_install_grants(crds: Kubectl) -> None:
    def role(docs: list[Doc], kind: str, name: str) -> list[Doc]:
        found = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
        return list(found["rules"])

    for values, path, in_chart, in_kustomize in (
        ("defaults", "base", ("ClusterRole", RELEASE), ("ClusterRole", "servingopt")),
        (
            "recommend-only",
            "recommend-only",
            ("ClusterRole", RELEASE),
            ("ClusterRole", "servingopt"),
        ),
        ("namespaced", "namespaced", ("Role", RELEASE), ("Role", "servingopt")),
        (
            "namespaced",
            "namespaced",
            ("ClusterRole", f"{RELEASE}-cluster-read"),
            ("ClusterRole", "servingopt-cluster-read"),
        ),
    ):
        chart = role(helm_template(crds, HELM_VALUES[values]), *in_chart)
        kustomized = role(rendered(crds, KUSTOMIZATIONS[path]), *in_kustomize)
        assert chart == kustomized, values
    crds_in_chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert crds_in_chart == sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))


def test_the_chart_refuses_values_that_cannot_work(crds: Kubectl) -> None:
    for values, problem in (
        (["--set", "leaderElection.enabled=false"], "needs leaderElection.enabled"),
        (["--set", "rbac.scope=namespaced"], "needs watchNamespaces"),
        (["--set", "rbac.scope=namespaced", "--set", "watchNamespaces={ml-*}"], "is a glob"),
        (["--set", "rbac.scope=everything"], "must be cluster or namespaced"),
    ):
        done = helm(crds, "template", RELEASE, str(CHART), *values, check=False)
        assert done.returncode != 0 and problem in done.stderr, (values, done.stderr)


def test_every_value_is_documented(crds: Kubectl) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    docs = (ROOT / "docs/install.md").read_text()

    free_form = {"resources", "labels", "headers"}  # maps documented as one value

    def paths(node: Any, prefix: str = "") -> list[str]:
        key = prefix.rstrip(".").rsplit(".", 1)[-1]
        leaf = not isinstance(node, dict) or not node or set(node) == {"name", "key"}
        if leaf or key in free_form:
            return [prefix.rstrip(".")]
        return [p for k, v in node.items() for p in paths(v, f"{prefix}{k}.")]

    missing = [p for p in paths(values) if f"`{p}`" not in docs]
    assert missing == [], f"values not in docs/install.md: {missing}"
    # A release of its own, without the cluster-wide objects other tests made for real.
    alone = ["--set", "defaultCatalog=false,defaultPolicy=false,rbac.tenantRoles=false"]
    notes = helm(
        crds, "install", "notes", str(CHART), "--dry-run", "-n", RELEASE_NS, *alone, check=False
    )
    assert "helm show crds" in notes.stdout, notes.stdout + notes.stderr


def test_the_chart_ships_the_same_alerts_and_dashboard(crds: Kubectl) -> None:
    docs = helm_template(crds, HELM_VALUES["monitoring"])
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    shipped = yaml.safe_load((ROOT / "deploy/monitoring/prometheusrule.yaml").read_text())
    assert rule["spec"] == shipped["spec"]  # alert templates ({{ $labels }}) left intact
    dashboard = next(d for d in docs if d["kind"] == "ConfigMap")
    assert json.loads(dashboard["data"]["servingopt.json"]) == json.loads(
        (ROOT / "deploy/monitoring/dashboard.json").read_text()
    )
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
