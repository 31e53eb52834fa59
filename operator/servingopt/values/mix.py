"""How a total replica count splits between on-demand and spot (pure).

One rule, used by the planner to price a spot mix and by the operator to place the
replicas the autoscaler asks for: at least ``on_demand_base`` on-demand and at most
``max_spot_percent`` of the total on spot (rounded in favour of on-demand). Because the
split is a function of the total alone, the share holds at every count the autoscaler
reaches, going up or down.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpotShare:
    """A policy's spot terms as applied to one workload."""

    max_spot_percent: int
    on_demand_base: int

    @property
    def mixed(self) -> bool:
        """Whether some replicas must run on-demand (else the workload is all spot)."""
        return self.max_spot_percent < 100 or self.on_demand_base > 0

    def split(self, total: int) -> tuple[int, int]:
        """(on-demand, spot) replicas for ``total``."""
        return split_replicas(total, self.max_spot_percent, self.on_demand_base)


def split_replicas(total: int, max_spot_percent: int, on_demand_base: int) -> tuple[int, int]:
    """(on-demand, spot) for ``total`` replicas: the on-demand part is the larger of the
    base and ``ceil(total * (100 - max%) / 100)``, never more than the total."""
    total = max(0, total)
    share_od = -(-total * (100 - max_spot_percent) // 100)  # integer ceil: no float drift
    on_demand = min(total, max(on_demand_base, share_od))
    return on_demand, total - on_demand
