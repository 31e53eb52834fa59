"""KEDA's own CRDs, fetched from its Go module by hack/keda-crds.sh (cached by version)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def keda_crds_dir() -> Path:
    """The directory with KEDA's CRD YAML files (fetched on first use)."""
    script = ROOT / "hack" / "keda-crds.sh"
    out = subprocess.run([str(script)], check=True, capture_output=True, text=True, timeout=600)
    return Path(out.stdout.strip().splitlines()[-1])
