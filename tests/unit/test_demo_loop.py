"""The demo's pure parts: what counts as a closed loop, and the manifests it applies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from servingopt.demo import (
    POLICY,
    START_POOL,
    demo_modelserving,
    demo_policy,
    loop_state,
)

ROOT = Path(__file__).resolve().parents[2]
NODES = {"t4-0": "gpu-t4", "t4-1": "gpu-t4", "v100-0": START_POOL}


def items(
    *,
    applied_pool: str | None = "gpu-t4",
    template_pool: str = "gpu-t4",
    pods: tuple[tuple[str, str], ...] = (("a", "t4-0"), ("b", "t4-1")),
    replicas: int = 2,
    hpa_bounds: tuple[int, int] | None = (1, 2),
    hpa_active: str = "True",
    projected: float = 0.53,
    current: float | None = 1.05,
    deleting: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    ms = {
        "kind": "ModelServing",
        "metadata": {"name": "m", "uid": "u1"},
        "status": {
            "applied": {"pool": applied_pool} if applied_pool else None,
            "cost": {
                "projectedHourly": projected,
                "currentHourly": current,
                "baselineHourly": 9.18,
                "savingsPercent": 94,
            },
        },
    }
    dep = {
        "kind": "Deployment",
        "metadata": {"name": "m", "generation": 2},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"nodeSelector": {"servingopt.io/pool": template_pool}}},
        },
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
        },
    }
    out: list[dict[str, Any]] = [ms, dep]
    for name, node in pods:
        meta: dict[str, Any] = {"name": name}
        if name in deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        out.append(
            {
                "kind": "Pod",
                "metadata": meta,
                "spec": {"nodeName": node},
                "status": {"phase": "Running"},
            }
        )
    if hpa_bounds:
        out.append(
            {
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "m", "ownerReferences": [{"uid": "u1"}]},
                "spec": {"minReplicas": hpa_bounds[0], "maxReplicas": hpa_bounds[1]},
                "status": {"conditions": [{"type": "ScalingActive", "status": hpa_active}]},
            }
        )
    return out


def test_a_closed_loop_has_nothing_missing() -> None:
    state = loop_state(items(), NODES)
    assert state.missing() == []
    assert state.new_pods == ("a", "b")
    assert state.pods_by_pool == {"gpu-t4": 2}


def test_each_missing_piece_is_named() -> None:
    cases = {
        "a pool other than": items(applied_pool=START_POOL, template_pool=START_POOL),
        "no decision": items(applied_pool=None, template_pool=START_POOL),
        "template targets": items(template_pool=START_POOL),
        "Running on that pool": items(pods=(("a", "t4-0"), ("b", "v100-0"))),
        "owned by the ModelServing": items(hpa_bounds=None),
        "within the HPA's bounds": items(hpa_bounds=(1, 1)),
        "custom metrics API": items(hpa_active="False"),
        "below the baseline": items(projected=9.5),
        "re-plan reporting the current": items(current=9.18),
        "no re-plan yet": items(current=None),
    }
    for what, docs in cases.items():
        missing = loop_state(docs, NODES).missing()
        assert missing, what
    # Before the operator's re-plan, everything but its re-read may already be there.
    early = loop_state(items(current=None), NODES)
    assert early.missing(observed=False) == [] and len(early.missing()) == 1
    assert "terminating" not in "".join(loop_state(items(), NODES).missing())
    # An old pod still terminating means the rollout has not finished.
    busy = items(pods=(("a", "t4-0"), ("b", "t4-1"), ("old", "v100-0")), deleting=("old",))
    assert loop_state(busy, NODES).terminating == 1
    assert loop_state(busy, NODES).missing()


def test_an_hpa_owned_by_someone_else_does_not_count() -> None:
    docs = items()
    docs[-1]["metadata"]["ownerReferences"] = [{"uid": "other"}]
    assert loop_state(docs, NODES).hpa is None


def test_demo_manifests_keep_the_sample_and_policy_but_speed_up_the_loop() -> None:
    sample = yaml.safe_load((ROOT / "samples/modelservings/resnet50-classifier.yaml").read_text())
    policy = yaml.safe_load((ROOT / "deploy/policy/default-servingpolicy.yaml").read_text())
    ms = demo_modelserving(sample)
    assert ms["spec"]["mode"] == "Auto" and ms["spec"]["policyRef"] == {"name": POLICY}
    assert ms["spec"]["metrics"]["preset"] == "generic"
    assert ms["spec"]["variants"] == sample["spec"]["variants"]
    fast = demo_policy(policy, 30)
    assert fast["metadata"]["name"] == POLICY and fast["spec"]["replanIntervalSeconds"] == 30
    assert fast["spec"]["guardrails"] == policy["spec"]["guardrails"]
    assert policy["spec"]["replanIntervalSeconds"] == 300  # the original is untouched
