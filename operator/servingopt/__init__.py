"""servingopt: make ML model serving cheap without breaking its latency SLO."""

__version__ = "0.1.0"

API_GROUP = "servingopt.io"
API_VERSION = "v1alpha1"
FIELD_MANAGER = "servingopt"
