"""Integration tests run against a real local control plane (servingopt.devcluster):
etcd, kube-apiserver, controller-manager, scheduler and kwok fake node pools."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
