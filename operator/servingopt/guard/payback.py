"""Whether a change pays for its own rollout. Pure.

A change that rolls the pods is not free: while it rolls, every new pod runs beside
the old ones for one start-up (node provisioning, then model load) before it serves,
and a change the model got wrong costs a rollback, which rolls the pods once more.
:func:`payback` prices both and weighs them against the saving over the policy's
horizon (``guardrails.paybackHorizonSeconds``)::

    surge     = new $/h x (provisioning + start-up) / 3600
    p_worse   = exp(-(current / new - 1) / e)
    risk      = p_worse x current $/h x (provisioning + start-up) / 3600
    pays      = (current - new) $/h x horizon / 3600 > surge + risk

``e`` is how wrong the model has been: the planner's ``model_error`` (a high quantile
of the relative capacity error its learning measured), :data:`PRIOR_MODEL_ERROR`
without evidence. ``current / new - 1`` is the error that would wipe the saving out
(the new configuration needing that much more than predicted costs what runs now);
relative errors are taken as exponential with mean ``e``, so ``p_worse`` is the
chance of at least that error. A rollback returns to the current configuration, so
its surge is priced at the current $/h. A change that does not roll the pods (HPA
bounds, target or behavior only) costs nothing to roll out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The model's relative error assumed before any has been measured (profiles declared
#: 15-40 % optimistic are common; the Balanced policy keeps 20 % headroom).
PRIOR_MODEL_ERROR = 0.2
#: Errors below this are taken as this (a model is never exactly right).
MIN_MODEL_ERROR = 0.02


@dataclass(frozen=True)
class Payback:
    """The saving of a change over the horizon against what its rollout costs ($)."""

    saving_hourly: float
    horizon_s: float
    surge_cost: float
    risk_cost: float
    p_worse: float

    @property
    def saving(self) -> float:
        """What the change saves over the horizon."""
        return self.saving_hourly * self.horizon_s / 3600.0

    @property
    def rollout_cost(self) -> float:
        return self.surge_cost + self.risk_cost

    @property
    def pays(self) -> bool:
        """Whether the saving over the horizon exceeds the rollout's cost (a free
        rollout pays whenever the change saves anything)."""
        return self.saving > self.rollout_cost

    def text(self) -> str:
        hours = self.horizon_s / 3600.0
        return (
            f"saves ${self.saving:.2f} over {hours:g} h against a rollout costing "
            f"${self.rollout_cost:.2f} (surge ${self.surge_cost:.2f}, risk "
            f"${self.risk_cost:.2f} at {self.p_worse:.0%} chance of a worse configuration)"
        )


def p_worse(current_hourly: float, new_hourly: float, model_error: float | None) -> float:
    """Chance that the new configuration turns out no cheaper than the current one."""
    if new_hourly <= 0.0:
        return 0.0
    wipe_out = current_hourly / new_hourly - 1.0
    if wipe_out <= 0.0:
        return 1.0
    error = PRIOR_MODEL_ERROR if model_error is None else model_error
    error = max(error, MIN_MODEL_ERROR) if math.isfinite(error) else PRIOR_MODEL_ERROR
    return math.exp(-wipe_out / error)


def payback(
    *,
    current_hourly: float,
    new_hourly: float,
    rolls_pods: bool,
    horizon_s: float,
    startup_s: float,
    provisioning_s: float,
    model_error: float | None,
) -> Payback:
    """The change's saving over ``horizon_s`` against its rollout's cost (see the
    module docs). ``provisioning_s``: how long a node of the new configuration takes
    to become ready; ``startup_s``: how long a pod takes to serve once placed."""
    saving = current_hourly - new_hourly
    if not rolls_pods:
        return Payback(saving, horizon_s, 0.0, 0.0, 0.0)
    roll_h = max(startup_s + provisioning_s, 0.0) / 3600.0
    surge = max(new_hourly, 0.0) * roll_h
    chance = p_worse(current_hourly, new_hourly, model_error)
    risk = chance * max(current_hourly, 0.0) * roll_h
    return Payback(saving, horizon_s, surge, risk, chance)
