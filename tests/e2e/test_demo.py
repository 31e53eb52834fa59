"""`servingopt demo` end to end: a fresh dev cluster, the twin and the operator.

The demo must exit 0 only when the loop really closed; the second test makes reality
(the twin's ground truth) far slower than declared on T4s, so the operator's move
breaks the SLO and the demo must say so and exit non-zero.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def demo(*args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-c",
        "import sys; from servingopt.cli import main; sys.exit(main())",
        "demo",
        f"--name=e2e-demo-{os.getpid()}",
        *args,
    ]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    print(proc.stdout[-6000:], proc.stderr[-3000:], sep="\n")
    return proc


def test_demo_closes_the_loop() -> None:
    proc = demo()
    assert proc.returncode == 0
    out = proc.stdout
    assert "verdict: LOOP CLOSED" in out
    assert "gpu-v100 -> " in out
    assert "stopping the dev cluster" in out
    pods = out.split("$ kubectl get deploy,hpa,pods -o wide", 1)[1].split("ModelServing status")[0]
    assert "gpu-v100" not in pods.split("pod/", 1)[1]  # no pod left on the V100 pool


def test_demo_fails_when_reality_breaks_the_slo() -> None:
    proc = demo("--truth=gpu-t4=12,gpu-a10g=12", "--timeout=150")
    assert proc.returncode == 1
    assert "verdict: LOOP CLOSED" not in proc.stdout
    assert "SLO" in proc.stdout
