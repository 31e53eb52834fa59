"""A status that differs only in its ranked alternatives is not written."""

from __future__ import annotations

from servingopt.controller.status import status_differs

LIVE = {
    "observedGeneration": 1,
    "recommendation": {"pool": "gpu-t4", "maxReplicas": 2},
    "alternatives": [{"instanceType": "g5.xlarge", "rejected": "costs $0.269/h more (+36%)"}],
}


def test_reordered_alternatives_alone_are_not_written() -> None:
    reordered = {**LIVE, "alternatives": [{"instanceType": "g4dn.xlarge", "rejected": "stay"}]}
    assert not status_differs(LIVE, reordered)


def test_anything_else_is_written_with_the_alternatives() -> None:
    changed = {**LIVE, "recommendation": {"pool": "gpu-t4", "maxReplicas": 3}}
    assert status_differs(LIVE, changed)
    assert status_differs({}, LIVE)  # the first status carries them
