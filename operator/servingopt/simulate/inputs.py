"""A :class:`~servingopt.simulate.world.Scenario` from files: the ModelServing, and
optionally the catalog, the ServingPolicy and the Deployment it starts from.

Read through the bounded reader (:mod:`servingopt.api.yamlio`); a file that cannot be
used raises ValueError naming the flag that gave it (``servingopt simulate`` prints
that line, ``servingopt bench`` skips the sample with it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from servingopt.api import InstanceCatalog, ModelServing, ServingPolicy

from .world import Scenario, initial_config_from_workload


def load_scenario(
    file: Path,
    catalog: Path | None = None,
    serving_policy: Path | None = None,
    workload: Path | None = None,
    **options: Any,
) -> Scenario:
    """The scenario of the files given; ValueError naming the flag when one is invalid."""
    from servingopt.api.catalog_gen import default_catalog

    serving = _load("", file, ModelServing)
    cat = _load("--catalog ", catalog, InstanceCatalog) if catalog else default_catalog()
    pol = (
        _load("--serving-policy ", serving_policy, ServingPolicy)
        if serving_policy
        else ServingPolicy()
    )
    scenario = Scenario(serving, cat, pol, **options)
    deployment = _target_deployment(workload, serving.spec.target_ref.name) if workload else None
    if workload and deployment is not None:
        try:
            initial = initial_config_from_workload(scenario, deployment)
        except (AttributeError, TypeError, IndexError, KeyError) as error:
            # the manifest's shape is the user's: a list where a mapping belongs, and so on
            raise ValueError(
                f"--workload {workload}: a Deployment servingopt cannot read ({error})"
            ) from None
        scenario = Scenario(serving, cat, pol, initial=initial, **options)
    return scenario


def _load(flag: str, path: Path, model: type[Any]) -> Any:
    from servingopt.api.validation import load_one

    try:
        return load_one(path, model)
    except ValueError as error:
        raise ValueError(f"{flag}{error}") from None


def _target_deployment(path: Path, wanted: str) -> dict[str, Any] | None:
    """The first Deployment of --workload (None: there is none); it must be the target."""
    from servingopt.api.yamlio import InputError, load_documents

    try:
        docs = load_documents(path)
    except InputError as error:
        raise ValueError(f"--workload {error}") from None
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Deployment"]
    if not found:
        return None
    metadata = found[0].get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if name != wanted:
        raise ValueError(
            f"--workload {path}: Deployment {name!r} is not the ModelServing's targetRef {wanted!r}"
        )
    return found[0]
