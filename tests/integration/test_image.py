"""The operator image, built from the top-level Dockerfile by buildah (no Docker engine:
`make image`, hack/build-image.sh) on a locally made Debian base, and run: the CLI
answers, its CRDs are the repository's, `run` without credentials exits 6 in one line,
and the image holds no pip or compiler and runs as a numeric non-root user."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def buildah(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["buildah", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def image() -> str:
    try:
        info = buildah("info", check=False)
    except FileNotFoundError:
        pytest.fail("buildah not installed: `make system-deps` installs it")
    if info.returncode != 0:  # e.g. no user namespaces or storage here: say exactly why
        pytest.skip(f"buildah cannot run on this machine: {info.stderr.strip()}")
    done = subprocess.run(
        [str(ROOT / "hack/build-image.sh")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    print(done.stderr.strip().splitlines()[-1])  # "built ... in N s: SIZE"
    return done.stdout.strip()


@pytest.fixture
def container(image: str) -> Iterator[str]:
    name = buildah("from", "--quiet", image).stdout.strip()
    yield name
    buildah("rm", name, check=False)


def run_in(
    container: str, *argv: str, mounts: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    volumes = [f"--volume={m}" for m in mounts]
    return buildah("run", "--isolation=chroot", *volumes, container, "--", *argv, check=False)


def test_the_cli_runs_and_its_crds_are_the_repositorys(container: str) -> None:
    help_ = run_in(container, "servingopt", "--help")
    assert help_.returncode == 0 and "recommend" in help_.stdout, help_.stderr
    check = run_in(
        container,
        "servingopt",
        "crds",
        "--check",
        "--dir",
        "/crds",
        mounts=(f"{ROOT / 'crds'}:/crds:ro",),
    )
    assert check.returncode == 0, check.stderr
    run = run_in(container, "servingopt", "run")
    assert run.returncode == 6, run.stderr  # the operator's imports load; no credentials
    assert run.stderr.count("no usable Kubernetes credentials") == 1


def test_the_image_is_slim_unprivileged_and_labelled(image: str, container: str) -> None:
    inspected = json.loads(buildah("inspect", "--type", "image", image).stdout)
    config = inspected["OCIv1"]["config"]
    assert config["User"] == "65532:65532"
    labels = config["Labels"]
    import servingopt

    assert labels["org.opencontainers.image.version"] == servingopt.__version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    probe = run_in(
        container,
        "sh",
        "-c",
        "id -u; python3 -m pip --version 2>&1; for t in pip pip3 gcc cc; do command -v $t; done",
    )
    lines = probe.stdout.split("\n")
    assert lines[0] == "65532"
    assert "No module named pip" in probe.stdout
    assert not any(line.endswith(("/pip", "/pip3", "/gcc", "/cc")) for line in lines), probe.stdout
