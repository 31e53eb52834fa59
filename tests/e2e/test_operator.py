"""The operator end to end: real API server, scheduler, kwok nodes and Prometheus."""

from __future__ import annotations

from typing import Any

from e2e_support import Exporter, Operator, PrometheusProxy, modelserving, workload

from servingopt.devcluster import Kubectl, wait_until

DEPLOY = "resnet50-classifier"


def conditions(kubectl: Kubectl, name: str = DEPLOY) -> dict[str, dict[str, Any]]:
    status = kubectl.json("get", "modelserving", name).get("status") or {}
    return {c["type"]: c for c in status.get("conditions", [])}


def pod_template(kubectl: Kubectl) -> dict[str, Any]:
    spec: dict[str, Any] = kubectl.json("get", "deployment", DEPLOY)["spec"]["template"]["spec"]
    return spec


def running_pools(kubectl: Kubectl) -> set[str]:
    nodes = {
        n["metadata"]["name"]: n["metadata"]["labels"].get("servingopt.io/pool")
        for n in kubectl.json("get", "nodes")["items"]
    }
    pods = kubectl.json("get", "pods", "-l", f"app.kubernetes.io/name={DEPLOY}")["items"]
    return {
        nodes.get(p["spec"].get("nodeName", ""), "?")
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }


def hpas(kubectl: Kubectl) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "hpa")["items"]
    return items


def servingopt_fields(obj: dict[str, Any]) -> dict[str, Any]:
    entries = [
        e
        for e in obj["metadata"].get("managedFields", [])
        if e["manager"] == "servingopt" and e["operation"] == "Apply"
    ]
    assert len(entries) == 1, obj["metadata"].get("managedFields")
    fields: dict[str, Any] = entries[0]["fieldsV1"]
    return fields


def test_auto_mode_moves_to_the_cheaper_pool_and_survives_a_restart(
    kubectl: Kubectl, policy: str, exporter: Exporter, operator: Operator
) -> None:
    kubectl.apply(workload())
    wait_until(lambda: running_pools(kubectl) == {"gpu-v100"}, 60, "pods on the V100 pool")
    kubectl.apply(modelserving(policy))

    # Once the operator has applied (status says so), kill it mid-rollout and restart.
    status = wait_until(
        lambda: (
            (s := kubectl.json("get", "modelserving", DEPLOY).get("status", {})).get("applied")
            and s
        ),
        120,
        "status.applied",
    )
    operator.stop(kill=True)
    operator.start()
    pool = pod_template(kubectl)["nodeSelector"]["servingopt.io/pool"]
    assert status["recommendation"]["pool"] == pool
    assert status["cost"]["projectedHourly"] < status["cost"]["baselineHourly"]
    wait_until(lambda: running_pools(kubectl) == {pool}, 120, f"pods Running on {pool}")

    # One HPA, owned by the ModelServing, with the planned bounds and behavior.
    wait_until(lambda: len(hpas(kubectl)) == 1, 60, "the owned HPA")
    (hpa,) = hpas(kubectl)
    ms = kubectl.json("get", "modelserving", DEPLOY)
    assert hpa["metadata"]["ownerReferences"][0]["uid"] == ms["metadata"]["uid"]
    applied = ms["status"]["applied"]
    assert hpa["spec"]["minReplicas"] == applied["replicas"]["min"]
    assert hpa["spec"]["maxReplicas"] == applied["replicas"]["max"]
    assert hpa["spec"]["behavior"]["scaleDown"]["policies"]

    # Batching env, and servingopt owning exactly its fields (never spec.replicas).
    env = {e["name"]: e.get("value") for e in pod_template(kubectl)["containers"][0]["env"]}
    assert env["TRITON_MAX_BATCH_SIZE"] == str(applied["maxBatchSize"])
    deployment = kubectl.json("get", "deployment", DEPLOY, "--show-managed-fields")
    fields = servingopt_fields(deployment)
    assert set(fields["f:spec"]) == {"f:template"}
    assert set(fields["f:spec"]["f:template"]["f:spec"]) == {
        "f:nodeSelector",
        "f:tolerations",
        "f:containers",
    }

    cond = conditions(kubectl)
    assert cond["Ready"]["status"] == "True"
    assert cond["MetricsAvailable"]["status"] == "True"
    # True, or False only because the next change waits for the minimum interval.
    assert cond["Optimized"]["status"] == "True" or cond["Optimized"]["reason"] == "MinInterval"
    events = kubectl.json("get", "events", "--field-selector", f"involvedObject.name={DEPLOY}")
    assert any(e["reason"] == "Applied" for e in events["items"])

    # The operator's own metrics, per ModelServing.
    key = {"namespace": kubectl.namespace or "", "modelserving": DEPLOY}
    wait_until(
        lambda: operator.metric("servingopt_projected_hourly_cost_dollars", **key) > 0,
        60,
        "the operator's metrics",
    )
    assert operator.metric("servingopt_hourly_cost_dollars", **key) > 0
    assert 0 < operator.metric("servingopt_savings_ratio", **key) < 1
    assert operator.metric("servingopt_decisions_total", **key) >= 1
    assert operator.metric("servingopt_reconcile_duration_seconds_count", **key) >= 1


def test_recommend_mode_fills_status_and_leaves_the_deployment(
    kubectl: Kubectl, policy: str, exporter: Exporter, operator: Operator
) -> None:
    kubectl.apply(workload())
    before = kubectl.json("get", "deployment", DEPLOY)
    kubectl.apply(modelserving(policy, mode="Recommend"))
    status = wait_until(
        lambda: kubectl.json("get", "modelserving", DEPLOY).get("status", {}).get("recommendation"),
        90,
        f"a recommendation\n{operator.log_tail()}",
    )
    assert status["pool"] != "gpu-v100"
    after = kubectl.json("get", "deployment", DEPLOY)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["template"] == before["spec"]["template"]
    assert hpas(kubectl) == []
    assert conditions(kubectl)["Optimized"]["reason"] == "RecommendOnly"


def test_prometheus_faults_hold_and_recover(
    kubectl: Kubectl, policy: str, exporter: Exporter, proxy: PrometheusProxy, operator: Operator
) -> None:
    proxy.mode = "down"
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy))
    wait_until(
        lambda: conditions(kubectl).get("MetricsAvailable", {}).get("status") == "False",
        60,
        f"MetricsAvailable=False\n{operator.log_tail()}",
    )
    assert conditions(kubectl)["MetricsAvailable"]["reason"] == "PrometheusUnavailable"
    for mode, reason in (("empty", "NoData"), ("nan", "NotANumber")):
        proxy.mode = mode
        kubectl.run("annotate", "modelserving", DEPLOY, "--overwrite", f"test/mode={mode}")
        kubectl.run(
            "patch",
            "modelserving",
            DEPLOY,
            "--type=merge",
            "-p",
            f'{{"spec":{{"metrics":{{"windowSeconds":{31 if mode == "empty" else 32}}}}}}}',
        )
        wait_until(
            lambda r=reason: conditions(kubectl)["MetricsAvailable"]["reason"] == r,
            60,
            f"MetricsAvailable reason {reason}",
        )
    # Nothing moved while metrics were missing.
    assert pod_template(kubectl)["nodeSelector"]["servingopt.io/pool"] == "gpu-v100"
    assert hpas(kubectl) == []
    proxy.mode = "pass"
    kubectl.run(
        "patch",
        "modelserving",
        DEPLOY,
        "--type=merge",
        "-p",
        '{"spec":{"metrics":{"windowSeconds":30}}}',
    )
    wait_until(
        lambda: conditions(kubectl)["MetricsAvailable"]["status"] == "True",
        60,
        "metrics to come back",
    )


def test_invalid_target_sets_a_condition_and_changes_nothing(
    kubectl: Kubectl, policy: str, operator: Operator
) -> None:
    doc = modelserving(policy)
    doc["spec"]["targetRef"]["name"] = "does-not-exist"
    kubectl.apply(doc)
    cond = wait_until(lambda: conditions(kubectl).get("Ready"), 60, "the Ready condition")
    assert cond["status"] == "False" and cond["reason"] == "TargetNotFound"
    assert "does-not-exist" in cond["message"]
    assert hpas(kubectl) == []


def test_delete_removes_the_hpa_and_keeps_the_deployment_values(
    kubectl: Kubectl, policy: str, exporter: Exporter, operator: Operator
) -> None:
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy))
    wait_until(lambda: len(hpas(kubectl)) == 1, 120, f"the owned HPA\n{operator.log_tail()}")
    selector = pod_template(kubectl)["nodeSelector"]
    kubectl.run("delete", "modelserving", DEPLOY, "--timeout=60s")
    wait_until(lambda: hpas(kubectl) == [], 60, "the HPA to be garbage-collected")
    deployment = kubectl.json("get", "deployment", DEPLOY, "--show-managed-fields")
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == selector
    managers = {e["manager"] for e in deployment["metadata"]["managedFields"]}
    assert "servingopt-released" in managers
    assert not any(
        e["manager"] == "servingopt"
        and e["operation"] == "Apply"
        and e.get("fieldsV1", {}).get("f:spec")
        for e in deployment["metadata"]["managedFields"]
    )


def test_off_mode_removes_the_hpa_and_releases_the_fields(
    kubectl: Kubectl, policy: str, exporter: Exporter, operator: Operator
) -> None:
    kubectl.apply(workload())
    kubectl.apply(modelserving(policy))
    wait_until(lambda: len(hpas(kubectl)) == 1, 120, "the owned HPA")
    selector = pod_template(kubectl)["nodeSelector"]
    kubectl.run("patch", "modelserving", DEPLOY, "--type=merge", "-p", '{"spec":{"mode":"Off"}}')
    wait_until(lambda: hpas(kubectl) == [], 60, "the HPA to be removed")

    def released() -> bool:
        d = kubectl.json("get", "deployment", DEPLOY, "--show-managed-fields")
        managers = {e["manager"] for e in d["metadata"]["managedFields"]}
        return "servingopt-released" in managers and "servingopt" not in managers

    wait_until(released, 60, "the fields to be handed over")
    assert pod_template(kubectl)["nodeSelector"] == selector  # values kept
    assert conditions(kubectl)["Optimized"]["reason"] == "ModeOff"
