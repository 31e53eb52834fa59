"""Instance arithmetic: pods per node, nodes needed, and the cost of a replica count.

Vectorised over candidates.  A replica on a GPU type takes one whole GPU; on every
type it takes ``spec.resources`` CPU and memory (plus the response cache when on)
out of the node's allocatable (catalog size minus system reservation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from servingopt.api import InstanceType

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MIB_PER_GIB = 1024.0


def pods_per_node(itype: InstanceType, cpu_millicores: int, memory_mib: float) -> int:
    """How many replicas fit on one node of ``itype`` (0: none)."""
    cpu = (itype.vcpu - itype.system_reserved_cpu) * 1000.0
    mem = (itype.memory_gi_b - itype.system_reserved_memory_gi_b) * MIB_PER_GIB
    fit = min(math.floor(cpu / cpu_millicores), math.floor(mem / memory_mib))
    if itype.gpu is not None:
        fit = min(fit, itype.gpu.count)
    return max(fit, 0)


def fit_problem(itype: InstanceType, cpu_millicores: int, memory_mib: float) -> str:
    """Why a replica does not fit on a node of ``itype`` (for explanations)."""
    cpu = (itype.vcpu - itype.system_reserved_cpu) * 1000.0
    mem = (itype.memory_gi_b - itype.system_reserved_memory_gi_b) * MIB_PER_GIB
    if cpu_millicores > cpu:
        return f"pod requests {cpu_millicores}m CPU, node allocates {cpu:.0f}m"
    return f"pod requests {memory_mib:.0f} MiB, node allocates {mem:.0f} MiB"


def model_fits(itype: InstanceType, model_mib: int | None, pod_memory_mib: int) -> str | None:
    """None when the loaded model fits, else why not (GPU memory on GPU types)."""
    if model_mib is None:
        return None
    if itype.gpu is not None:
        gpu_mib = itype.gpu.memory_gi_b * MIB_PER_GIB
        if model_mib > gpu_mib:
            return f"model needs {model_mib} MiB, {itype.gpu.model} has {gpu_mib:.0f} MiB"
        return None
    if model_mib > pod_memory_mib:
        return f"model needs {model_mib} MiB, pod requests {pod_memory_mib} MiB"
    return None


@dataclass(frozen=True, eq=False)
class Pricing:
    """Per-candidate prices and packing, arrays of shape ``(N,)``."""

    on_demand_hourly: FloatArray
    spot_hourly: FloatArray  # NaN where spot is not offered
    pods_per_node: IntArray
    spot_interruptions_per_hour: FloatArray
    replacement_hours: FloatArray  # node provisioning + pod start-up
    memory_mib: FloatArray  # node memory, for pricing a memory share


@dataclass(frozen=True, eq=False)
class SpotMix:
    """Replica split and cost for a capacity choice, arrays of shape ``(N,)``."""

    on_demand_replicas: IntArray
    spot_replicas: IntArray
    nodes: IntArray
    hourly_cost: FloatArray  # node prices + interruption risk
    interruption_cost: FloatArray


def cost_on_demand(replicas: IntArray, pricing: Pricing) -> SpotMix:
    nodes = -(-replicas // pricing.pods_per_node)
    zero = np.zeros_like(replicas)
    return SpotMix(
        replicas, zero, nodes, nodes * pricing.on_demand_hourly, np.zeros(replicas.shape)
    )


def cost_spot_mix(
    replicas: IntArray, pricing: Pricing, max_spot_percent: int, on_demand_base: int
) -> SpotMix:
    """On-demand base (at least ``on_demand_base``, at least ``100 - max%``), spot for the rest.

    Interruptions are costed as lost capacity: each spot node is interrupted
    ``spotInterruptionsPerHour`` times per hour and its replicas are missing for the
    replacement time; that capacity is priced at the on-demand rate (what it costs to
    cover it).
    """
    # The operator splits with values.split_replicas; the same integer arithmetic here.
    share_od = -(-replicas * (100 - max_spot_percent) // 100)
    od = np.minimum(replicas, np.maximum(on_demand_base, share_od))
    spot = replicas - od
    ppn = pricing.pods_per_node
    nodes_od = -(-od // ppn)
    nodes_spot = -(-spot // ppn)
    risk = (
        nodes_spot
        * pricing.spot_interruptions_per_hour
        * pricing.replacement_hours
        * pricing.on_demand_hourly
    )
    spot_price = np.nan_to_num(pricing.spot_hourly, nan=np.inf)
    cost = nodes_od * pricing.on_demand_hourly + np.where(
        nodes_spot > 0, nodes_spot * spot_price, 0.0
    )
    return SpotMix(od, spot, nodes_od + nodes_spot, cost + risk, risk)
