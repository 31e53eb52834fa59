"""Fixtures of the controller's pure parts: the default catalog, a sample spec, a Deployment."""

from __future__ import annotations

from typing import Any

import pytest
from ctl_fixtures import load_catalog, load_resnet, user_deployment

from servingopt.api import InstanceCatalog, ModelServing


@pytest.fixture(scope="session")
def catalog() -> InstanceCatalog:
    return load_catalog()


@pytest.fixture(scope="session")
def resnet() -> ModelServing:
    return load_resnet()


@pytest.fixture
def deployment() -> dict[str, Any]:
    return user_deployment()
