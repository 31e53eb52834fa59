"""`servingopt dev-cluster` starts and stops clusters without leaving a process behind:
detached (down from another process), foreground (Ctrl-C) and a killed launcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from servingopt.devcluster import DevCluster, wait_until
from servingopt.devcluster.process import ProcessRecord, is_alive

COMPONENTS = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
WARM_START_BUDGET_S = 20.0


@pytest.fixture
def cli_env(dev_cluster: DevCluster, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "SERVINGOPT_BIN_DIR": str(dev_cluster.binaries.bin_dir)}
    yield env
    # Whatever a failed test left running, stop it.
    for state in tmp_path.glob("*/state.json"):
        DevCluster.load(state.parent.name, tmp_path).down()


def _cli(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "servingopt.devcluster", *args, "--state-root", str(root)]


def _records(root: Path, name: str) -> list[ProcessRecord]:
    raw = json.loads((root / name / "state.json").read_text())
    return [ProcessRecord.from_json(r) for r in raw["processes"].values()]


def _all_gone(records: list[ProcessRecord], timeout: float = 15) -> None:
    wait_until(lambda: not any(is_alive(r) for r in records), timeout, "every process to exit")


def _start_foreground(root: Path, env: dict[str, str], name: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        _cli(root, "up", "--name", name, "--nodes-per-pool", "1"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # the last start-up line says how to stop it
        if "Ctrl-C stops it" in line:
            return proc
    raise AssertionError(f"foreground cluster never became ready (exit {proc.wait()})")


def test_detached_cluster_is_managed_from_other_processes(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    up = subprocess.run(
        _cli(tmp_path, "up", "--detach", "--name", "det", "--nodes-per-pool", "1"),
        env=cli_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    kubeconfig = tmp_path / "det" / "kubeconfig"
    assert f"export KUBECONFIG={kubeconfig}" in up.stdout

    status = subprocess.run(_cli(tmp_path, "status", "--name", "det", "-o", "json"),
                            env=cli_env, capture_output=True, text=True, check=True)  # fmt: skip
    info = json.loads(status.stdout)
    assert set(info["components"]) == COMPONENTS
    assert all(c["alive"] for c in info["components"].values())
    assert info["startupSeconds"] < WARM_START_BUDGET_S

    env_out = subprocess.run(_cli(tmp_path, "env", "--name", "det"), env=cli_env,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert env_out.splitlines()[0] == f"export KUBECONFIG={kubeconfig}"
    # eval'd, it puts the cluster's own kubectl and this servingopt first on PATH
    shell = f"{env_out}\ncommand -v kubectl servingopt; kubectl get nodes -o name | wc -l"
    found = subprocess.run(["bash", "-c", shell], env=cli_env, capture_output=True, text=True)
    kubectl, servingopt, nodes = found.stdout.split()
    bin_dir = json.loads((tmp_path / "det" / "state.json").read_text())["binDir"]
    assert Path(kubectl).parent == Path(bin_dir), found.stderr
    assert Path(servingopt).parent == Path(sys.executable).parent
    assert int(nodes) > 0
    again = subprocess.run(_cli(tmp_path, "up", "-d", "--name", "det"), env=cli_env,
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 1 and "already running" in again.stderr

    records = _records(tmp_path, "det")
    subprocess.run(_cli(tmp_path, "down", "--name", "det"), env=cli_env, check=True)
    _all_gone(records, timeout=1)  # down returns only once everything has exited
    assert not (tmp_path / "det").exists()


def test_ctrl_c_on_a_foreground_cluster_stops_everything(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    proc = _start_foreground(tmp_path, cli_env, "fg")
    records = _records(tmp_path, "fg")
    assert {r.name for r in records} == COMPONENTS
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    _all_gone(records, timeout=1)
    assert not (tmp_path / "fg").exists()


def test_a_killed_launcher_takes_its_cluster_with_it(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    proc = _start_foreground(tmp_path, cli_env, "killed")
    records = _records(tmp_path, "killed")
    started = time.monotonic()
    proc.kill()  # SIGKILL: no atexit, no signal handler; only the kernel can clean up
    proc.wait()
    _all_gone(records, timeout=10)
    assert time.monotonic() - started < 10
    # The stale state dir is cleaned up by `down`, which finds nothing left to stop.
    subprocess.run(_cli(tmp_path, "down", "--name", "killed"), env=cli_env, check=True)
    assert not (tmp_path / "killed").exists()
