"""Build an InstanceCatalog from a price table, so users can rebuild it for their prices.

The default catalog (``deploy/catalog/default-instancecatalog.yaml``) is this
module's output for the packaged table ``data/aws-us-east-1-instances.csv``
(AWS on-demand list prices, Linux, us-east-1, as published in 2024-2025)::

    python -m servingopt.api.catalog_gen > deploy/catalog/default-instancecatalog.yaml
    python -m servingopt.api.catalog_gen --csv my-prices.csv --name mine --no-spot

CSV header: ``instance_type,family,vcpus,memory_gib,gpu_model,gpu_count,
gpu_memory_gib,on_demand_usd_per_hour`` (``gpu_memory_gib`` is the instance total).

Pools: one pool per instance type, because the nodeSelector servingopt writes
carries ``servingopt.io/pool`` and a pool must therefore have one size and one
price. Names are ``<stem>[-<size>]``: the stem says what the node offers
(``cpu-<series>`` for CPU types, ``gpu-<gpu model>`` for NVIDIA types, the
series for other accelerators) and the size suffix is omitted for the family's
reference size (the smallest size of at least ``xlarge``), ``-Nx`` for
``Nxlarge`` and ``-large`` for ``large``: c6i.xlarge -> ``cpu-c6i``,
c6i.2xlarge -> ``cpu-c6i-2x``, g4dn.xlarge -> ``gpu-t4``, p3.2xlarge ->
``gpu-v100``, p3.8xlarge -> ``gpu-v100-8x``.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .base import API_VERSION
from .instancecatalog import LABEL_GPU_PRODUCT, RESOURCE_GPU, InstanceCatalog

DEFAULT_CSV = "aws-us-east-1-instances.csv"
DEFAULT_REGION = "us-east-1"
DEFAULT_SPOT_DISCOUNT = 0.60
ON_DEMAND_SOURCE = (
    "On-demand: AWS list prices (USD per instance-hour, Linux, us-east-1) as published "
    "by AWS in 2024-2025."
)


def spot_assumption(discount: float) -> str:
    """The sentence that says where spot prices come from (they are not measured)."""
    pct = round(discount * 100)
    return (
        f"Spot: NOT measured. spotHourly is an estimate, the on-demand price less a fixed "
        f"{pct} % discount, of the order of the spot discounts AWS spot price history showed "
        f"for these families in us-east-1 in 2024-2025. Real spot prices move hourly; "
        f"override spotHourly with your own figures."
    )


@dataclass(frozen=True)
class Accelerator:
    """How pods land on an accelerator model: product label, resource and taint key."""

    product_label: str | None
    resource: str
    pool_stem: str | None  # None: use the instance series (e.g. inf2)


# NVIDIA product names as the GPU feature discovery labels them (nvidia.com/gpu.product).
ACCELERATORS: dict[str, Accelerator] = {
    "T4": Accelerator("Tesla-T4", RESOURCE_GPU, "gpu-t4"),
    "A10G": Accelerator("NVIDIA-A10G", RESOURCE_GPU, "gpu-a10g"),
    "L4": Accelerator("NVIDIA-L4", RESOURCE_GPU, "gpu-l4"),
    "V100": Accelerator("Tesla-V100-SXM2-16GB", RESOURCE_GPU, "gpu-v100"),
    "A100": Accelerator("NVIDIA-A100-SXM4-40GB", RESOURCE_GPU, "gpu-a100"),
    "Inferentia2": Accelerator(None, "aws.amazon.com/neuron", None),
    "Trainium": Accelerator(None, "aws.amazon.com/neuron", None),
}

_SIZE = re.compile(r"^(\d*)xlarge$")


@dataclass(frozen=True)
class Row:
    """One row of the price table."""

    name: str
    vcpu: float
    memory_gib: float
    gpu_model: str
    gpu_count: int
    gpu_memory_gib: float
    on_demand_hourly: float

    @property
    def series(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def size(self) -> str:
        return self.name.split(".", 1)[1] if "." in self.name else ""


def read_rows(lines: Iterable[str]) -> list[Row]:
    """Parse the CSV price table."""
    rows = []
    for raw in csv.DictReader(lines):
        rows.append(
            Row(
                name=raw["instance_type"].strip(),
                vcpu=float(raw["vcpus"]),
                memory_gib=float(raw["memory_gib"]),
                gpu_model=(raw.get("gpu_model") or "").strip(),
                gpu_count=int(raw.get("gpu_count") or 0),
                gpu_memory_gib=float(raw.get("gpu_memory_gib") or 0),
                on_demand_hourly=float(raw["on_demand_usd_per_hour"]),
            )
        )
    return rows


def _size_factor(size: str) -> float | None:
    """xlarge -> 1, 2xlarge -> 2, large -> 0.5; None for sizes without a factor (metal…)."""
    if size == "large":
        return 0.5
    match = _SIZE.match(size)
    if match is None:
        return None
    return float(match.group(1) or 1)


def _reference_sizes(rows: Sequence[Row]) -> dict[str, str]:
    """Per series: the smallest size of at least xlarge (its pool gets no suffix)."""
    best: dict[str, tuple[float, str]] = {}
    for row in rows:
        factor = _size_factor(row.size)
        if factor is None or factor < 1:
            continue
        if row.series not in best or factor < best[row.series][0]:
            best[row.series] = (factor, row.size)
    return {series: size for series, (_, size) in best.items()}


def _stem(row: Row) -> str:
    if not row.gpu_model or row.gpu_count == 0:
        return f"cpu-{row.series}"
    accel = ACCELERATORS.get(row.gpu_model)
    if accel is None:
        return "gpu-" + re.sub(r"[^a-z0-9]+", "-", row.gpu_model.lower()).strip("-")
    return accel.pool_stem or row.series


def _suffix(row: Row, reference: str | None) -> str:
    if row.size == reference:
        return ""
    if row.size == "large":
        return "-large"
    match = _SIZE.match(row.size)
    if match and match.group(1):
        return f"-{match.group(1)}x"
    return "-" + re.sub(r"[^a-z0-9]+", "-", row.size.lower()).strip("-")


def pool_names(rows: Sequence[Row]) -> dict[str, str]:
    """Instance type -> pool name (see the module docstring for the rule)."""
    refs = _reference_sizes(rows)
    names: dict[str, str] = {}
    for row in rows:
        names[row.name] = _stem(row) + _suffix(row, refs.get(row.series))
    taken: dict[str, str] = {}
    for type_name, pool in names.items():
        if pool in taken:
            raise ValueError(
                f"pool name {pool!r} would hold both {taken[pool]} and {type_name}; "
                "one pool must have one instance type"
            )
        taken[pool] = type_name
    return names


def _number(value: float) -> float | int:
    """Integral floats as ints, so the YAML reads `16` rather than `16.0`."""
    return int(value) if float(value).is_integer() else value


def instance_type_entry(row: Row, pool: str, spot_discount: float | None) -> dict[str, Any]:
    """The wire form of one catalog entry."""
    entry: dict[str, Any] = {
        "name": row.name,
        "pool": pool,
        "vcpu": _number(row.vcpu),
        "memoryGiB": _number(row.memory_gib),
    }
    if row.gpu_model and row.gpu_count > 0:
        accel = ACCELERATORS.get(row.gpu_model, Accelerator(None, RESOURCE_GPU, None))
        entry["gpu"] = {
            "model": row.gpu_model,
            "count": row.gpu_count,
            "memoryGiB": _number(round(row.gpu_memory_gib / row.gpu_count, 3)),
            "resourceName": accel.resource,
        }
    entry["onDemandHourly"] = row.on_demand_hourly
    if spot_discount is not None:
        entry["spotHourly"] = round(row.on_demand_hourly * (1 - spot_discount), 4)
    if row.gpu_model and row.gpu_count > 0:
        accel = ACCELERATORS.get(row.gpu_model, Accelerator(None, RESOURCE_GPU, None))
        if accel.product_label:
            entry["nodeLabels"] = {LABEL_GPU_PRODUCT: accel.product_label}
        entry["taints"] = [{"key": accel.resource, "value": "true", "effect": "NoSchedule"}]
    return entry


def build_catalog(
    rows: Sequence[Row],
    *,
    name: str = "default",
    region: str | None = DEFAULT_REGION,
    spot_discount: float | None = DEFAULT_SPOT_DISCOUNT,
    price_source: str | None = None,
) -> dict[str, Any]:
    """The catalog document (wire form) for ``rows``; validated against the model."""
    if spot_discount is not None and not 0 < spot_discount < 1:
        raise ValueError("spot discount must be between 0 and 1 (exclusive)")
    pools = pool_names(rows)
    if price_source is None:
        spot = spot_assumption(spot_discount) if spot_discount is not None else "No spot prices."
        price_source = f"{ON_DEMAND_SOURCE} {spot}"
    spec: dict[str, Any] = {"currency": "USD"}
    if region:
        spec["region"] = region
    spec["priceSource"] = price_source
    spec["instanceTypes"] = [instance_type_entry(r, pools[r.name], spot_discount) for r in rows]
    doc = {
        "apiVersion": API_VERSION,
        "kind": "InstanceCatalog",
        "metadata": {"name": name},
        "spec": spec,
    }
    InstanceCatalog.model_validate(doc)
    return doc


def packaged_csv() -> str:
    """Text of the price table shipped with servingopt."""
    return (resources.files("servingopt.api") / "data" / DEFAULT_CSV).read_text()


def default_catalog() -> InstanceCatalog:
    """The default catalog, built from the packaged price table."""
    return InstanceCatalog.model_validate(build_catalog(read_rows(packaged_csv().splitlines())))


def render(doc: dict[str, Any], source: str = f"the packaged {DEFAULT_CSV}") -> str:
    """YAML text with a header saying how it was made."""
    header = (
        f"# Generated by `python -m servingopt.api.catalog_gen` from {source}.\n"
        "# Edit prices freely or regenerate from your own CSV; see docs/catalog.md.\n"
        "# One pool per instance type: servingopt selects nodes by servingopt.io/pool.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m servingopt.api.catalog_gen",
        description="Build an InstanceCatalog from a CSV price table (default: the packaged "
        "AWS us-east-1 on-demand list prices).",
    )
    parser.add_argument("--csv", type=Path, help="price table (default: packaged table)")
    parser.add_argument("--name", default="default", help="metadata.name (default: default)")
    parser.add_argument("--region", default=DEFAULT_REGION, help="spec.region")
    spot = parser.add_mutually_exclusive_group()
    spot.add_argument(
        "--spot-discount",
        type=float,
        default=DEFAULT_SPOT_DISCOUNT,
        help="estimate spotHourly as on-demand x (1 - D) (default: %(default)s)",
    )
    spot.add_argument("--no-spot", action="store_true", help="offer no spot prices")
    parser.add_argument("--price-source", help="spec.priceSource text (default: generated)")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = args.csv.read_text() if args.csv else packaged_csv()
    try:
        doc = build_catalog(
            read_rows(text.splitlines()),
            name=args.name,
            region=args.region or None,
            spot_discount=None if args.no_spot else args.spot_discount,
            price_source=args.price_source,
        )
    except (ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = render(doc, args.csv.name) if args.csv else render(doc)
    if args.output:
        args.output.write_text(out)
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
