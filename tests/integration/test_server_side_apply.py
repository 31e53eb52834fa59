"""Server-side apply semantics the operator relies on, checked on the real API server."""

from __future__ import annotations

import re
from typing import Any

from servingopt.devcluster import Kubectl
from servingopt.devcluster.kubectl import to_yaml

from .test_scheduling import _deployment


def _user_deployment(kubectl: Kubectl) -> None:
    """The user's Deployment as a GitOps tool applies it: no replicas, no node selector
    (the operator owns those)."""
    dep = _deployment("ranker", replicas=1)
    del dep["spec"]["replicas"]
    del dep["spec"]["template"]["spec"]["nodeSelector"]
    kubectl.apply(dep, server_side=True, field_manager="gitops")


def _patch(replicas: int, selector: dict[str, str]) -> dict[str, Any]:
    """Only the fields servingopt owns: replicas and the pod template's node selector."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ranker"},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"nodeSelector": selector}},
        },
    }


def test_field_manager_servingopt_owns_the_fields_it_applied(kubectl: Kubectl) -> None:
    _user_deployment(kubectl)
    kubectl.apply(
        _patch(2, {"servingopt.io/pool": "cpu-c6i"}), server_side=True, field_manager="servingopt"
    )
    dep = kubectl.json("get", "deployment", "ranker", "--show-managed-fields")
    managers = {m["manager"]: m for m in dep["metadata"]["managedFields"]}
    assert managers["servingopt"]["operation"] == "Apply"
    owned = managers["servingopt"]["fieldsV1"]["f:spec"]
    assert "f:replicas" in owned
    assert "f:nodeSelector" in owned["f:template"]["f:spec"]  # an atomic map: owned whole
    assert dep["spec"]["replicas"] == 2


def test_conflicting_apply_by_another_manager_gets_409(kubectl: Kubectl) -> None:
    _user_deployment(kubectl)
    kubectl.apply(
        _patch(2, {"servingopt.io/pool": "cpu-c6i"}), server_side=True, field_manager="servingopt"
    )
    proc = kubectl.run(
        "apply",
        "--server-side",
        "--field-manager=capacity-script",
        "-v=6",
        "-f",
        "-",
        input=to_yaml(_patch(5, {"servingopt.io/pool": "gpu-t4"})),
        check=False,
    )
    assert proc.returncode != 0
    assert re.search(
        r'verb="PATCH" url="https://\S+/deployments/ranker\?\S*" status="409 Conflict"', proc.stderr
    )
    assert re.search(r'conflicts? with "servingopt"', proc.stderr)
    assert kubectl.json("get", "deployment", "ranker")["spec"]["replicas"] == 2

    # --force-conflicts takes the fields over; servingopt no longer owns replicas.
    kubectl.apply(
        _patch(5, {"servingopt.io/pool": "gpu-t4"}),
        server_side=True,
        field_manager="capacity-script",
        force_conflicts=True,
    )
    dep = kubectl.json("get", "deployment", "ranker", "--show-managed-fields")
    managers = {m["manager"]: m for m in dep["metadata"]["managedFields"]}
    assert "f:replicas" in managers["capacity-script"]["fieldsV1"]["f:spec"]
    assert "servingopt" not in managers  # it lost every field it had applied
