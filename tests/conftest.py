"""Fixtures shared by every tier. The dev-cluster fixtures are defined here, once, so that
the integration and e2e tiers share one session cluster instead of starting two."""

from servingopt.devcluster.pytest_plugin import (  # noqa: F401  (fixtures)
    admin_kubectl,
    dev_cluster,
    developer_kubectl,
    kubeconfig,
    kubectl,
    namespace,
    prometheus,
)
