"""`servingopt validate` and `servingopt crds` as a user runs them."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from servingopt.cli import EXIT_INVALID_INPUT, EXIT_OK, main

ROOT = Path(__file__).resolve().parents[2]
INVALID = ROOT / "tests" / "fixtures" / "invalid"
DEFAULT_CATALOG = ROOT / "deploy" / "catalog" / "default-instancecatalog.yaml"
SERVINGOPT_KINDS = {"ModelServing", "ServingPolicy", "InstanceCatalog"}


@dataclass(frozen=True)
class Fixture:
    path: Path
    expect_path: str
    expect_fragment: str
    server_reject: bool
    catalog: Path | None


def parse_fixture(path: Path) -> Fixture:
    header = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line.lstrip("# ").partition(": ")
        if sep and key in ("expect", "server", "catalog"):
            header[key] = value.strip()
    assert "expect" in header, f"{path.name}: no '# expect:' line"
    field_path, _, fragment = header["expect"].partition(": ")
    catalog = ROOT / header["catalog"] if "catalog" in header else None
    return Fixture(path, field_path, fragment, header.get("server") == "reject", catalog)


FIXTURES = [parse_fixture(p) for p in sorted(INVALID.glob("*.yaml"))]


def servingopt_documents() -> list[Path]:
    """Every sample and deploy file that holds servingopt kinds (not Deployments)."""
    files = sorted((ROOT / "samples").rglob("*.yaml")) + sorted((ROOT / "deploy").rglob("*.yaml"))
    kind = re.compile(r"^kind: (\w+)$", re.M)
    return [f for f in files if set(kind.findall(f.read_text())) & SERVINGOPT_KINDS]


def test_fixture_set_is_large_and_varied() -> None:
    assert len(FIXTURES) >= 25
    assert sum(f.server_reject for f in FIXTURES) >= 10
    assert len({f.expect_path for f in FIXTURES}) >= 25, "fixtures should hit distinct fields"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.path.stem for f in FIXTURES])
def test_validate_rejects_invalid_fixture(
    fixture: Fixture, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["validate", "-q", "-f", str(fixture.path)]
    if fixture.catalog:
        argv += ["--catalog", str(fixture.catalog)]
    assert main(argv) == EXIT_INVALID_INPUT
    lines = capsys.readouterr().out.splitlines()
    wanted = f": {fixture.expect_path}: " if fixture.expect_path else ": "
    hits = [ln for ln in lines if wanted in ln and fixture.expect_fragment in ln]
    assert hits, f"expected {fixture.expect_path!r} / {fixture.expect_fragment!r} in {lines}"


@pytest.mark.parametrize("fixture", [f for f in FIXTURES if f.catalog], ids=lambda f: f.path.stem)
def test_catalog_fixtures_are_valid_without_the_catalog(fixture: Fixture) -> None:
    # The problem lies in the catalog reference only; without --catalog they pass.
    assert main(["validate", "-q", "-f", str(fixture.path)]) == EXIT_OK


def test_server_reject_fixtures_are_applicable_objects() -> None:
    for fixture in (f for f in FIXTURES if f.server_reject):
        doc = yaml.safe_load(fixture.path.read_text())
        assert isinstance(doc, dict), fixture.path.name
        assert doc["apiVersion"] == "servingopt.io/v1alpha1", fixture.path.name
        assert doc["kind"] in SERVINGOPT_KINDS, fixture.path.name
        assert doc["metadata"]["name"], fixture.path.name
        assert "namespace" not in doc["metadata"], fixture.path.name


@pytest.mark.parametrize("path", servingopt_documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_validate_accepts_samples(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-f", str(path), "--catalog", str(DEFAULT_CATALOG)]) == EXIT_OK
    assert ": valid" in capsys.readouterr().out


def test_sample_set_covers_the_three_kinds() -> None:
    text = "".join(p.read_text() for p in servingopt_documents())
    assert text.count("kind: ModelServing") >= 3
    assert "kind: ServingPolicy" in text
    assert "kind: InstanceCatalog" in text


def test_validate_missing_file_fails(tmp_path: Path) -> None:
    assert main(["validate", "-f", str(tmp_path / "absent.yaml")]) == EXIT_INVALID_INPUT


def test_validate_refuses_an_invalid_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    sample = ROOT / "samples" / "modelservings" / "resnet50-classifier.yaml"
    bad_catalog = INVALID / "ic-spot-above-on-demand.yaml"
    assert main(["validate", "-f", str(sample), "--catalog", str(bad_catalog)]) == 2
    assert "--catalog" in capsys.readouterr().err


def test_crds_check_passes_on_the_repository() -> None:
    assert main(["crds", "--check", "--dir", str(ROOT / "crds")]) == EXIT_OK


def test_crds_check_fails_on_a_stale_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crds = tmp_path / "crds"
    shutil.copytree(ROOT / "crds", crds)
    target = crds / "servingopt.io_modelservings.yaml"
    target.write_text(target.read_text().replace("latencyP99Ms", "latencyP95Ms"))
    (crds / "servingopt.io_leftovers.yaml").write_text("{}\n")
    assert main(["crds", "--check", "--dir", str(crds)]) == 1
    err = capsys.readouterr().err
    assert "servingopt.io_modelservings.yaml: out of date" in err
    assert "servingopt.io_leftovers.yaml" in err


def test_crds_check_fails_when_a_file_is_missing(tmp_path: Path) -> None:
    assert main(["crds", "--check", "--dir", str(tmp_path)]) == 1


def test_crds_writes_what_check_accepts(tmp_path: Path) -> None:
    assert main(["crds", "--dir", str(tmp_path)]) == EXIT_OK
    assert main(["crds", "--check", "--dir", str(tmp_path)]) == EXIT_OK
