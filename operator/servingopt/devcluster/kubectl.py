"""A thin kubectl wrapper and kubeconfig writer for the dev cluster and its tests."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
Manifest = str | dict[str, Any] | Iterable[dict[str, Any]]


class KubectlError(RuntimeError):
    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)} failed ({returncode}): {stderr.strip()}")
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


@dataclass(frozen=True)
class Kubectl:
    binary: Path
    kubeconfig: Path
    namespace: str | None = None

    def in_namespace(self, namespace: str) -> Kubectl:
        return replace(self, namespace=namespace)

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), f"--kubeconfig={self.kubeconfig}"]
        if self.namespace:
            argv.append(f"--namespace={self.namespace}")
        argv.extend(args)
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise KubectlError(list(args), proc.returncode, proc.stdout, proc.stderr)
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply(
        self,
        manifest: Manifest,
        *,
        server_side: bool = False,
        field_manager: str | None = None,
        force_conflicts: bool = False,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        args = ["apply", "-f", "-"]
        if server_side:
            args.append("--server-side")
        if force_conflicts:
            args.append("--force-conflicts")
        if field_manager:
            args.append(f"--field-manager={field_manager}")
        return self.run(*args, input=to_yaml(manifest), check=check)

    def create(self, manifest: Manifest, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("create", "-f", "-", input=to_yaml(manifest), check=check)


def to_yaml(manifest: Manifest) -> str:
    if isinstance(manifest, str):
        return manifest
    if isinstance(manifest, dict):
        return yaml.safe_dump(manifest, sort_keys=False)
    return yaml.safe_dump_all(list(manifest), sort_keys=False)


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1
) -> T:
    """Polls `check` until it returns something truthy; raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # a component not up yet fails in many ways; keep polling
            last_error = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}") from last_error
        time.sleep(interval)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path,
    *,
    cluster: str,
    server: str,
    ca: Path,
    user: str,
    cert: Path,
    key: Path,
    namespace: str = "default",
) -> Path:
    """A self-contained kubeconfig (certificates embedded), readable by its owner only."""
    context = f"{user}@{cluster}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
            }
        ],
        "contexts": [
            {"name": context, "context": {"cluster": cluster, "user": user, "namespace": namespace}}
        ],
        "current-context": context,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path
