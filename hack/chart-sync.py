#!/usr/bin/env python3
"""Copies into the Helm chart what it shares with the kustomize install (CRDs, RBAC
rules, alerts, dashboard, default catalog and policy), so that deploy/ stays the one
source. `--check` exits 1 naming each copy that differs (run in `make test`).

    hack/chart-sync.py            # write the copies
    hack/chart-sync.py --check    # exit 1 when a copy is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy/helm/servingopt"
FILES = {
    "files/rbac.yaml": "deploy/operator/rbac.yaml",
    "files/tenant-rbac.yaml": "deploy/operator/tenant-rbac.yaml",
    "files/read-only-cluster-role.yaml": "deploy/overlays/recommend-only/read-only-cluster-role.yaml",
    "files/namespaced-role.yaml": "deploy/overlays/namespaced/role.yaml",
    "files/prometheusrule.yaml": "deploy/monitoring/prometheusrule.yaml",
    "files/dashboard.json": "deploy/monitoring/dashboard.json",
    "files/default-instancecatalog.yaml": "deploy/catalog/default-instancecatalog.yaml",
    "files/default-servingpolicy.yaml": "deploy/policy/default-servingpolicy.yaml",
}


def copies() -> dict[Path, Path]:
    out = {CHART / dst: ROOT / src for dst, src in FILES.items()}
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        out[CHART / "crds" / crd.name] = crd
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    wanted = copies()
    stale = [
        dst
        for dst, src in wanted.items()
        if not dst.exists() or dst.read_bytes() != src.read_bytes()
    ]
    extra = [p for p in (CHART / "crds").glob("*.yaml") if p not in wanted]
    if check:
        for path in [*stale, *extra]:
            print(
                f"stale chart copy {path.relative_to(ROOT)}: run hack/chart-sync.py",
                file=sys.stderr,
            )
        return 1 if stale or extra else 0
    for dst in stale:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(wanted[dst].read_bytes())
        print(f"wrote {dst.relative_to(ROOT)}")
    for path in extra:
        path.unlink()
        print(f"removed {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
