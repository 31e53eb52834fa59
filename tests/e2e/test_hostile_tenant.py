"""A tenant with only `servingopt-edit` in namespace A tries to make the operator act
outside what the admins allow. Real API server, real Prometheus, the operator running,
the tenant's own (non-admin) kubeconfig."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from e2e_support import ROOT, Exporter, Operator, modelserving, workload

from servingopt.api import InstanceCatalog, ModelServing
from servingopt.api.modelserving import TargetRef
from servingopt.api.validation import load_one
from servingopt.devcluster import DevCluster, Kubectl, Prometheus, wait_until
from servingopt.devcluster.cluster import DEV_USER
from servingopt.kube import io, paths
from servingopt.kube.client import Credentials, KubeClient, scoped
from servingopt.values import ServingConfig

DEPLOY = "resnet50-classifier"


@pytest.fixture
def victim(admin_kubectl: Kubectl, installed: Kubectl) -> Iterator[str]:
    """Namespace B: a Deployment, a lax policy that selects only B, and B's series."""
    name = f"victim-{uuid.uuid4().hex[:5]}"
    admin_kubectl.run("create", "namespace", name)
    admin_kubectl.in_namespace(name).apply(workload())
    admin_kubectl.apply(
        {
            "apiVersion": "servingopt.io/v1alpha1",
            "kind": "ServingPolicy",
            "metadata": {"name": name},
            "spec": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}},
                "workload": {"allowedImages": ["*"], "allowedEnvNames": ["*"], "allowArgs": True},
            },
        }
    )
    yield name
    admin_kubectl.run("delete", "servingpolicy", name, "--wait=false", check=False)
    admin_kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def victim_series(prometheus: Prometheus, victim: str) -> Iterator[Exporter]:
    e = Exporter({"namespace": victim, "deployment": DEPLOY}, rps=50_000.0)
    prometheus.add_static_targets(f"serving-{victim}", [e.start()])
    yield e
    prometheus.remove_static_targets(f"serving-{victim}")
    e.stop()


@pytest.fixture
def tenant(dev_cluster: DevCluster, admin_kubectl: Kubectl, namespace: str) -> Kubectl:
    """The developer user with nothing but `servingopt-edit`, bound in namespace A."""
    admin_kubectl.run("apply", "-f", str(ROOT / "deploy/operator/tenant-rbac.yaml"))
    admin_kubectl.in_namespace(namespace).apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "tenant-servingopt-edit"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "servingopt-edit",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEV_USER}
            ],
        }
    )
    return dev_cluster.developer_kubectl(namespace)


def fingerprint(kubectl: Kubectl, kind: str, name: str) -> tuple[int, str, list[str]]:
    """What a write to the object's spec would change: its generation, its spec and the
    managers of its fields (status updates by controllers do not count)."""
    obj = kubectl.json("get", kind, name)
    managers = sorted(
        {e["manager"] for e in obj["metadata"].get("managedFields", []) if not e.get("subresource")}
    )
    return obj["metadata"]["generation"], json.dumps(obj["spec"], sort_keys=True), managers


def ready(kubectl: Kubectl, name: str) -> dict[str, Any]:
    status = kubectl.json("get", "modelserving", name).get("status") or {}
    conds = {c["type"]: c for c in status.get("conditions", [])}
    return conds.get("Ready", {})


def hostile(policy: str, name: str, change: Any) -> dict[str, Any]:
    doc = modelserving(policy)
    doc["metadata"] = {"name": name}
    change(doc["spec"])
    return doc


def test_a_tenant_cannot_make_the_operator_act_outside_what_admins_allow(
    tenant: Kubectl,
    kubectl: Kubectl,
    admin_kubectl: Kubectl,
    namespace: str,
    policy: str,
    victim: str,
    victim_series: Exporter,
    exporter: Exporter,
    operator: Operator,
) -> None:
    kubectl.apply(workload())  # the admin's Deployment in A
    in_b = admin_kubectl.in_namespace(victim)
    before_b = fingerprint(in_b, "deployment", DEPLOY)
    before_a = fingerprint(kubectl, "deployment", DEPLOY)

    # The tenant's RBAC: ModelServings in A only.
    assert tenant.run("auth", "can-i", "create", "modelservings").stdout.strip() == "yes"
    for verb, what, where in [
        ("patch", "deployments", namespace),
        ("create", "modelservings", victim),
        ("create", "servingpolicies", ""),
    ]:
        args = ["auth", "can-i", verb, what] + ([f"--namespace={where}"] if where else [])
        assert tenant.run(*args, check=False).stdout.strip() == "no"

    # 1. Names that climb out of the namespace never get past the API server.
    for name in ("../../../namespaces/kube-system/deployments/coredns", "..%2F..%2Fcoredns"):
        doc = hostile(policy, "climb", lambda s, n=name: s["targetRef"].update(name=n))
        refused = tenant.apply(doc, check=False)
        assert refused.returncode != 0 and "spec.targetRef.name" in refused.stderr
    for change, reason in [
        # 2. another namespace as the target: schema-valid, refused by servingopt
        (lambda s: s["targetRef"].update(namespace=victim), "InvalidSpec"),
        # 3. the lax policy that selects only B
        (lambda s: s.update(policyRef={"name": victim}), "PolicyNotAllowed"),
        # 4. an image A's policy does not allow
        (
            lambda s: s["variants"][0].update(image="evil.example.com/miner:1"),
            "NotAllowedByPolicy",
        ),
        # 5. B's series through the label matchers
        (
            lambda s: s["metrics"].update(labelMatchers={"namespace": victim}),
            "InvalidSpec",
        ),
        # 6. a Prometheus the policy does not name
        (
            lambda s: s["metrics"].update(prometheusUrl="http://169.254.169.254/latest"),
            "PrometheusNotAllowed",
        ),
    ]:
        name = f"attack-{reason.lower()}-{uuid.uuid4().hex[:4]}"
        tenant.apply(hostile(policy, name, change))
        wait_until(lambda n=name, r=reason: ready(kubectl, n).get("reason") == r, 60, reason)
        assert ready(kubectl, name)["status"] == "False"
        tenant.run("delete", "modelserving", name)

    # 7. Matchers without a namespace read A's series only (1,500 req/s), never B's
    #    (50,000 req/s under the same deployment label).
    doc = hostile(policy, "reads-a", lambda s: s.update(mode="Recommend"))
    doc["spec"]["metrics"]["labelMatchers"] = {"deployment": DEPLOY}
    tenant.apply(doc)
    wait_until(
        lambda: (kubectl.json("get", "ms", "reads-a").get("status") or {}).get("predicted"),
        90,
        "a plan from A's series",
    )
    demand = kubectl.json("get", "ms", "reads-a")["status"]["predicted"]["demandRps"]
    assert 0 < demand < 3 * exporter.rps < victim_series.rps, demand

    # Nothing in B was written; A's Deployment was not touched by any of the attacks.
    assert fingerprint(in_b, "deployment", DEPLOY) == before_b
    assert "servingopt" not in fingerprint(kubectl, "deployment", DEPLOY)[2]
    assert fingerprint(kubectl, "deployment", DEPLOY) == before_a
    assert not in_b.json("get", "hpa")["items"]


async def test_with_validation_bypassed_the_client_refuses_on_the_real_api_server(
    kubectl: Kubectl, admin_kubectl: Kubectl, victim: str, dev_cluster: DevCluster, namespace: str
) -> None:
    """The models and the CRD are skipped (model_construct): the scoped client still
    refuses, and the victim Deployment in B keeps its resourceVersion."""
    in_b = admin_kubectl.in_namespace(victim)
    before = fingerprint(in_b, "deployment", DEPLOY)
    catalog = load_one(ROOT / "deploy/catalog/default-instancecatalog.yaml", InstanceCatalog)
    spec = load_one(ROOT / "samples/modelservings/resnet50-classifier.yaml", ModelServing).spec
    ms = {"metadata": {"name": "x", "namespace": namespace, "uid": "u"}}
    config = ServingConfig("g4dn.xlarge", "gpu-t4", "on-demand", "int8", 1, 2, 8, 1000, 50.0)
    async with KubeClient(Credentials.load(str(dev_cluster.kubeconfig))) as kube:
        for name in (f"../../{victim}/deployments/{DEPLOY}", f"..%2F..%2F{victim}"):
            target = TargetRef.model_construct(name=name, api_version="apps/v1", kind="Deployment")
            bypassed = spec.model_copy(update={"target_ref": target})
            with pytest.raises(paths.InvalidName):
                await io.apply_config(scoped(kube, namespace), ms, bypassed, config, catalog)
        ms_b = copy.deepcopy(ms)
        ms_b["metadata"]["namespace"] = victim
        with pytest.raises(Exception, match="outside namespace"):
            await io.apply_config(scoped(kube, namespace), ms_b, spec, config, catalog)
    assert fingerprint(in_b, "deployment", DEPLOY) == before


def test_the_shipped_tenant_roles_aggregate_into_edit_and_view(admin_kubectl: Kubectl) -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/operator/tenant-rbac.yaml").read_text()))
    admin_kubectl.run("apply", "-f", str(ROOT / "deploy/operator/tenant-rbac.yaml"))

    def rules_of(role: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = admin_kubectl.json("get", "clusterrole", role)["rules"]
        return found

    for role, resource in (("edit", "modelservings"), ("view", "modelservings")):
        wait_until(
            lambda r=role, res=resource: any(
                res in rule.get("resources", []) for rule in rules_of(r)
            ),
            30,
            f"servingopt rules aggregated into {role}",
        )
    assert {d["metadata"]["name"] for d in docs} == {"servingopt-edit", "servingopt-view"}
    view = next(r for r in rules_of("view") if "modelservings" in r.get("resources", []))
    assert set(view["verbs"]) == {"get", "list", "watch"}
