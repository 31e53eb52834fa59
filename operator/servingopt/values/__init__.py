"""The ground floor: values every layer passes, next to the API (``servingopt.api``).

Pure (standard library, numpy and ``servingopt.api`` only). What the operator runs
(:class:`ServingConfig`), what the planner proposes (:class:`Proposal`), what it
observes (:class:`Observation`, :class:`RunningConfig`), what a metric source measures
(:class:`MetricsSample`, :class:`MetricHistory`) and what is learned between plans
(:class:`ProfileCorrection`). ``kube/`` and ``metrics/`` import these, never the
guard or the planner.
"""

from .autoscaler import AutoscalerState
from .config import Proposal, ServingConfig, canonical_behavior, held_target
from .correction import ProfileCorrection
from .metrics import MetricHistory, MetricsSample
from .mix import SpotShare, split_replicas
from .observation import HISTORY_SECONDS, CorrectionKey, FloatArray, Observation, RunningConfig

__all__ = [
    "HISTORY_SECONDS",
    "AutoscalerState",
    "CorrectionKey",
    "FloatArray",
    "MetricHistory",
    "MetricsSample",
    "Observation",
    "ProfileCorrection",
    "Proposal",
    "RunningConfig",
    "ServingConfig",
    "SpotShare",
    "canonical_behavior",
    "held_target",
    "split_replicas",
]
