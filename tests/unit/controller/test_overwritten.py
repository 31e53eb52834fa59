"""Another client changing what servingopt applied to the Deployment is noticed."""

from __future__ import annotations

from dataclasses import replace

from servingopt.controller.reconcile import overwritten_fields
from servingopt.values import ServingConfig

APPLIED = ServingConfig(
    instance_type="g4dn.xlarge",
    pool="gpu-t4",
    capacity_type="on-demand",
    variant="int8",
    min_replicas=1,
    max_replicas=2,
    max_batch_size=32,
    max_queue_delay_us=0,
    scaling_target=1474.78,
)
META = {"config": APPLIED.to_dict(), "at": "2026-11-30T12:00:00Z"}


def test_the_template_as_applied_is_not_overwritten() -> None:
    assert overwritten_fields(META, APPLIED) == ""
    assert overwritten_fields({}, APPLIED) == ""  # never applied: nothing to compare


def test_git_values_put_back_are_named() -> None:
    git = ServingConfig(
        instance_type="p3.2xlarge",
        pool="gpu-v100",
        capacity_type=None,
        variant="fp32",
        min_replicas=3,
        max_replicas=3,
        max_batch_size=1,
        max_queue_delay_us=0,
    )
    found = overwritten_fields(META, git)
    assert found.startswith("instance_type g4dn.xlarge -> p3.2xlarge; pool gpu-t4 -> gpu-v100")
    assert "capacity_type on-demand -> None" in found and "max_batch_size 32 -> 1" in found
    assert "replicas" not in found and "scaling_target" not in found  # the HPA is servingopt's


def test_fields_servingopt_did_not_write_are_not_compared() -> None:
    """Batching off: servingopt wrote no batch size, whatever the env says now."""
    unbatched = replace(APPLIED, max_batch_size=None)
    meta = {"config": unbatched.to_dict()}
    assert overwritten_fields(meta, replace(APPLIED, max_batch_size=8)) == ""
