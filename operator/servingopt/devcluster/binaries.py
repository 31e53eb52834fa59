"""Finding the control-plane binaries built by hack/build-controlplane.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BIN_DIR_ENV = "SERVINGOPT_BIN_DIR"
NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    prometheus: Path | None
    prometheus_adapter: Path | None = None
    keda_operator: Path | None = None
    keda_metrics_apiserver: Path | None = None

    @property
    def bin_dir(self) -> Path:
        return self.kubectl.parent


def build_script() -> Path | None:
    """hack/build-controlplane.sh of the source checkout this package runs from, if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        script = parent / "hack" / "build-controlplane.sh"
        if script.is_file():
            return script
    return None


def resolve_bin_dir(build: bool = True) -> Path:
    """$SERVINGOPT_BIN_DIR, else the dir the build script prints (building what is missing)."""
    env = os.environ.get(BIN_DIR_ENV)
    if env:
        return Path(env)
    script = build_script()
    if script is None:
        raise FileNotFoundError(
            f"no control-plane binaries: set {BIN_DIR_ENV} or run from a source checkout"
        )
    if not build:
        raise FileNotFoundError(f"set {BIN_DIR_ENV} or run {script}")
    # The script logs progress on stderr (left on the terminal) and prints the dir last.
    out = subprocess.run(["bash", str(script)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def find_binaries(bin_dir: Path | None = None) -> Binaries:
    d = bin_dir or resolve_bin_dir()
    missing = [n for n in NAMES if not os.access(d / n, os.X_OK)]
    if missing:
        raise FileNotFoundError(f"missing in {d}: {', '.join(missing)}")
    prom = os.environ.get("SERVINGOPT_PROMETHEUS") or shutil.which("prometheus")
    adapter = d / "prometheus-adapter"
    keda = {n: d / n for n in ("keda-operator", "keda-metrics-apiserver")}
    keda_ok = {n: p if os.access(p, os.X_OK) else None for n, p in keda.items()}
    return Binaries(
        etcd=d / "etcd",
        kube_apiserver=d / "kube-apiserver",
        kube_controller_manager=d / "kube-controller-manager",
        kube_scheduler=d / "kube-scheduler",
        kubectl=d / "kubectl",
        kwok=d / "kwok",
        prometheus=Path(prom) if prom else None,
        prometheus_adapter=adapter if os.access(adapter, os.X_OK) else None,
        keda_operator=keda_ok["keda-operator"],
        keda_metrics_apiserver=keda_ok["keda-metrics-apiserver"],
    )
