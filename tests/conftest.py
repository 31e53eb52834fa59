"""Fixtures shared by every tier. The dev-cluster fixtures are defined here, once, so that
the integration and e2e tiers share one session cluster instead of starting two."""

import os

from hypothesis import settings

from servingopt.devcluster.pytest_plugin import (  # noqa: F401  (fixtures)
    admin_kubectl,
    custom_metrics,
    dev_cluster,
    developer_kubectl,
    keda,
    keda_crds,
    kubeconfig,
    kubectl,
    namespace,
    prometheus,
)

# Property tests are repeatable by default (CI gives the same verdict twice);
# HYPOTHESIS_PROFILE=explore draws new examples on every run.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
