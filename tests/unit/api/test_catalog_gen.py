"""The default InstanceCatalog: built from the price table, consistent with the dev cluster."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml

from servingopt.api import InstanceCatalog
from servingopt.api.catalog_gen import (
    DEFAULT_SPOT_DISCOUNT,
    build_catalog,
    default_catalog,
    main,
    packaged_csv,
    pool_names,
    read_rows,
    render,
)
from servingopt.api.validation import load_one

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "deploy" / "catalog" / "default-instancecatalog.yaml"
SHARED_CSV = ROOT.parent / "shared" / "data" / "aws-us-east-1-instances.csv"
DEV_POOLS = ROOT / "operator" / "servingopt" / "devcluster" / "pools.yaml"
HEADER = "instance_type,family,vcpus,memory_gib,gpu_model,gpu_count,gpu_memory_gib,"
HEADER += "on_demand_usd_per_hour\n"


def shipped() -> InstanceCatalog:
    catalog: InstanceCatalog = load_one(SHIPPED, InstanceCatalog)
    return catalog


def test_shipped_catalog_is_the_generator_output() -> None:
    doc = build_catalog(read_rows(packaged_csv().splitlines()))
    assert SHIPPED.read_text() == render(doc), (
        "deploy/catalog is stale: run `python -m servingopt.api.catalog_gen "
        "> deploy/catalog/default-instancecatalog.yaml`"
    )
    assert shipped() == default_catalog()
    assert shipped().metadata.name == "default"


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="shared data set not present")
def test_packaged_table_is_the_published_data_set() -> None:
    assert packaged_csv() == SHARED_CSV.read_text()


def test_every_row_of_the_table_is_in_the_catalog_at_its_price() -> None:
    rows = list(csv.DictReader(io.StringIO(packaged_csv())))
    types = shipped().by_name()
    assert len(types) == len(rows)
    for row in rows:
        entry = types[row["instance_type"]]
        assert entry.on_demand_hourly == float(row["on_demand_usd_per_hour"])
        assert entry.vcpu == float(row["vcpus"])
        assert entry.memory_gi_b == float(row["memory_gib"])
        if int(row["gpu_count"]):
            assert entry.gpu is not None
            assert entry.gpu.model == row["gpu_model"]
            assert entry.gpu.count == int(row["gpu_count"])
            assert entry.gpu.memory_gi_b * entry.gpu.count == float(row["gpu_memory_gib"])
        else:
            assert entry.gpu is None


def test_pools_named_as_the_dev_cluster_expects() -> None:
    pools = {t.name: t.pool for t in shipped().spec.instance_types}
    assert pools["c6i.xlarge"] == "cpu-c6i"
    assert pools["c6i.2xlarge"] == "cpu-c6i-2x"
    assert pools["g4dn.xlarge"] == "gpu-t4"
    assert pools["g5.xlarge"] == "gpu-a10g"
    assert pools["p3.2xlarge"] == "gpu-v100"
    assert len(set(pools.values())) == len(pools), "one pool per instance type"


@pytest.mark.skipif(not DEV_POOLS.exists(), reason="dev cluster pools not present")
def test_dev_cluster_nodes_match_catalog_selectors() -> None:
    types = shipped().by_name()
    for pool in yaml.safe_load(DEV_POOLS.read_text())["pools"]:
        entry = types[pool["instanceType"]]
        assert entry.pool == pool["name"]
        assert entry.vcpu == pool["vcpus"]
        if "gpu" in pool:
            assert entry.node_labels["nvidia.com/gpu.product"] == pool["gpu"]["product"]


def test_accelerated_types_are_tainted_and_labelled() -> None:
    for entry in shipped().spec.instance_types:
        if entry.gpu is None:
            assert entry.taints == [] and entry.node_labels == {}
            continue
        taint = entry.taints[0]
        assert (taint.key, taint.value, taint.effect) == (
            entry.gpu.resource_name,
            "true",
            "NoSchedule",
        )
        if entry.gpu.resource_name == "nvidia.com/gpu":
            assert entry.node_labels["nvidia.com/gpu.product"]
    gpu_count = sum(
        t.gpu is not None and t.gpu.resource_name == "nvidia.com/gpu"
        for t in shipped().spec.instance_types
    )
    assert gpu_count == 12


def test_spot_prices_are_declared_estimates() -> None:
    catalog = shipped()
    source = catalog.spec.price_source or ""
    assert "NOT measured" in source
    assert f"{round(DEFAULT_SPOT_DISCOUNT * 100)} % discount" in source
    assert "2024-2025" in source
    for entry in catalog.spec.instance_types:
        expected = round(entry.on_demand_hourly * (1 - DEFAULT_SPOT_DISCOUNT), 4)
        assert entry.spot_hourly == expected


def test_size_suffixes_follow_the_family_reference_size() -> None:
    table = HEADER + "".join(
        f"{name},gpu,8,32,V100,1,16,1.0\n" for name in ("p9.2xlarge", "p9.8xlarge", "p9.large")
    )
    names = pool_names(read_rows(table.splitlines()))
    assert names == {
        "p9.2xlarge": "gpu-v100",
        "p9.8xlarge": "gpu-v100-8x",
        "p9.large": "gpu-v100-large",
    }


def test_two_types_in_one_pool_are_refused() -> None:
    table = HEADER + "g4dn.xlarge,gpu,4,16,T4,1,16,0.5\ng4ad.xlarge,gpu,4,16,T4,1,16,0.4\n"
    with pytest.raises(ValueError, match="one pool must have one instance type"):
        pool_names(read_rows(table.splitlines()))


def test_unknown_gpu_models_get_a_derived_pool() -> None:
    table = HEADER + "x1.xlarge,gpu,4,16,H100 SXM,1,80,9.0\n"
    doc = build_catalog(read_rows(table.splitlines()), spot_discount=None)
    entry = doc["spec"]["instanceTypes"][0]
    assert entry["pool"] == "gpu-h100-sxm"
    assert "spotHourly" not in entry
    assert "No spot prices" in doc["spec"]["priceSource"]


@pytest.mark.parametrize("discount", [0.0, 1.0, -0.1])
def test_spot_discount_must_be_a_fraction(discount: float) -> None:
    with pytest.raises(ValueError):
        build_catalog(read_rows(packaged_csv().splitlines()), spot_discount=discount)


def test_command_line_rebuilds_a_catalog_from_a_user_table(tmp_path: Path) -> None:
    table = tmp_path / "prices.csv"
    table.write_text(HEADER + "c6i.xlarge,compute,4,8,,0,0,0.12\n")
    out = tmp_path / "catalog.yaml"
    argv = ["--csv", str(table), "--name", "mine", "--no-spot", "-o", str(out)]
    assert main(argv) == 0
    catalog = load_one(out, InstanceCatalog)
    assert catalog.metadata.name == "mine"
    assert catalog.by_name()["c6i.xlarge"].on_demand_hourly == 0.12
    assert catalog.by_name()["c6i.xlarge"].spot_hourly is None


def test_command_line_reports_a_bad_table(tmp_path: Path) -> None:
    table = tmp_path / "prices.csv"
    table.write_text("instance_type,vcpus\nc6i.xlarge,4\n")
    assert main(["--csv", str(table)]) == 2


def test_catalog_doc_lists_every_pool_at_its_prices() -> None:
    doc = (ROOT / "docs" / "catalog.md").read_text()
    for t in shipped().spec.instance_types:
        row = f"| `{t.pool}` | {t.name} |"
        assert row in doc, f"docs/catalog.md lacks {t.name}"
        line = next(ln for ln in doc.splitlines() if ln.startswith(row))
        assert line.endswith(f"| {t.on_demand_hourly:g} | {t.spot_hourly:g} |"), line
